"""Environment variables given for a run, over what the template says: SAM's `--env-vars` file.

The file is SAM CLI's: `{"Parameters": {"VAR": "value"}, "HelloFunction": {"VAR": "value"}}`.
"Parameters" applies to every function, a function's own object (by logical id or FunctionName)
on top of it. Unlike SAM CLI, which silently ignores a variable the template does not declare,
such a variable is added (pointing a function at a local DynamoDB is what it is for) and a line
says so: on AWS the template would have to declare it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import WarmstartError, one_line, shown
from .spec import FunctionSpec

__all__ = [
    "ALL_FUNCTIONS",
    "EnvVarsError",
    "apply_env_vars",
    "read_env_vars",
    "with_variables",
]

log = logging.getLogger("warmstart")

ALL_FUNCTIONS = "Parameters"  # SAM CLI's key for variables of every function


class EnvVarsError(WarmstartError):
    """An environment variables file that cannot be used."""


def read_env_vars(path: str | Path) -> dict[str, dict[str, str]]:
    """The variables of a SAM `--env-vars` file, checked: a JSON object of objects of scalars.

    Example: read_env_vars("env.json") -> {"Parameters": {"TABLE": "local"}}
    """
    where = f"--env-vars {path}"
    try:
        doc = json.loads(Path(path).read_bytes())
    except OSError as e:
        raise EnvVarsError(f"{where}: cannot read it: {e.strerror}") from None
    except ValueError as e:
        raise EnvVarsError(f"{where}: not JSON: {one_line(str(e))}") from None
    if not isinstance(doc, dict):
        raise EnvVarsError(f"{where}: must be a JSON object of functions (got {shown(doc)})")
    out: dict[str, dict[str, str]] = {}
    for target, variables in doc.items():
        if not isinstance(variables, dict):
            raise EnvVarsError(
                f"{where}: {one_line(target)} must be an object of variables "
                f"(got {shown(variables)})"
            )
        out[target] = {}
        for name, value in variables.items():
            if isinstance(value, (dict, list)) or value is None:
                raise EnvVarsError(
                    f"{where}: {one_line(target)}.{one_line(name)} must be text, a number or "
                    f"a boolean (got {shown(value)})"
                )
            # As SAM CLI writes them: JSON's true and false, numbers as they read.
            out[target][name] = json.dumps(value) if isinstance(value, bool) else str(value)
    return out


def with_variables(
    given: Mapping[str, Mapping[str, str]], variables: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """`given` with `variables` for every function, over anything else given for any of them
    (the command line's --env over an --env-vars file).

    Example: with_variables({"Fn": {"A": "1"}}, {"A": "2"})["Fn"] == {"A": "2"}
    """
    return {key: {**values, **variables} for key, values in {ALL_FUNCTIONS: {}, **given}.items()}


def apply_env_vars(
    specs: Iterable[FunctionSpec], given: Mapping[str, Mapping[str, str]]
) -> list[FunctionSpec]:
    """The functions with the variables given for them (see the module's docstring).

    Example: apply_env_vars(specs, {"Parameters": {"AWS_ENDPOINT_URL": "http://localhost:8000"}})
    """
    specs = list(specs)
    if not given:
        return specs
    names = {ALL_FUNCTIONS}
    out = []
    for spec in specs:
        own = [k for k in (spec.logical_id, spec.name) if k and k in given]
        names.update(own)
        variables = {**given.get(ALL_FUNCTIONS, {})}
        for key in reversed(own):  # the logical id wins over the FunctionName
            variables.update(given[key])
        if not variables:
            out.append(spec)
            continue
        added = sorted(set(variables) - set(spec.environment))
        if added:
            log.info(
                "%s: variables the template does not declare are added: %s (on AWS the "
                "template must declare them)",
                spec.name,
                ", ".join(added),
            )
        out.append(spec.replace(environment={**spec.environment, **variables}))
    unknown = sorted(set(given) - names)
    if unknown:
        log.warning(
            "--env-vars: no function is named %s; those variables are not used",
            ", ".join(one_line(u) for u in unknown),
        )
    return out
