"""Parameter overrides from SAM CLI's configuration file, read as SAM CLI reads them.

`samconfig.toml` (or `samconfig.yaml`/`.yml`) beside the template holds settings per
environment and command: `[default.local_invoke.parameters]`, `[default.global.parameters]`...
A command takes `parameter_overrides` from its own section, else from `global`; what the
command line gives wins over both.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from ..errors import TemplateError, one_line
from .loader import parse_parameter_overrides

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python 3.10)
    import tomli as tomllib

__all__ = ["CONFIG_NAMES", "SamConfig", "read_samconfig"]

CONFIG_NAMES = ("samconfig.toml", "samconfig.yaml", "samconfig.yml")


class SamConfig:
    """A SAM CLI configuration file: its path and what it holds."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc

    def parameter_overrides(self, command: str, env: str = "default") -> tuple[dict[str, str], str]:
        """(the overrides for `command` in `env`, the section they came from ('' if none)).

        `command` as SAM CLI names its sections: local_invoke, local_start_api, ...
        Example: read_samconfig(Path(".")).parameter_overrides("local_invoke")
        """
        settings = self.doc.get(env)
        if settings is None:
            return {}, ""
        if not isinstance(settings, dict):
            raise TemplateError("must be a table of commands", env, str(self.path))
        for section in (command, "global"):
            table = settings.get(section, {})
            params = table.get("parameters", {}) if isinstance(table, dict) else None
            if not isinstance(params, dict):
                raise TemplateError(
                    "must be a table", f"{env}.{section}.parameters", str(self.path)
                )
            if "parameter_overrides" in params:
                where = f"{env}.{section}.parameters.parameter_overrides"
                try:
                    return parse_parameter_overrides(params["parameter_overrides"]), where
                except TemplateError as e:
                    raise TemplateError(e.problem, where, str(self.path)) from None
        return {}, ""


def read_samconfig(folder: Path) -> SamConfig | None:
    """The SAM CLI configuration file in `folder` (the template's), or None."""
    for name in CONFIG_NAMES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            raw = path.read_bytes()
            doc = tomllib.loads(raw.decode()) if name.endswith(".toml") else yaml.safe_load(raw)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
            raise TemplateError(f"cannot be read: {one_line(str(e))}", "", str(path)) from None
        if not isinstance(doc, dict):
            raise TemplateError("must be a table of environments", "", str(path))
        return SamConfig(path, doc)
    return None
