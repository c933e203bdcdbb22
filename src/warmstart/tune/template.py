"""Write a chosen MemorySize into a SAM template, changing nothing else in the file.

The template is parsed only to find where things are (PyYAML's node marks give the exact
characters of a value); the edit is then made to the text, so comments, quoting, key order and
formatting all stay as the user wrote them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..sam import CfnLoader
from .runner import TuneError

__all__ = ["set_memory_size"]


def _mapping_get(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def set_memory_size(path: Path, resource: str, memory_mb: int) -> str:
    """Set `Properties.MemorySize` of a function resource in the template file; returns what it
    did ("changed 128 -> 512", "added", or "unchanged").

    Example: set_memory_size(Path("template.yaml"), "Hello", 512)
    """
    try:
        text = path.read_text()
        root = yaml.compose(text, Loader=CfnLoader)
    except (OSError, yaml.YAMLError) as e:
        raise TuneError(f"cannot edit {path}: {e}") from None
    if text.lstrip().startswith("{"):
        raise TuneError(f"{path} is JSON: set MemorySize: {memory_mb} by hand")
    resources = _mapping_get(root, "Resources") if root is not None else None
    found = _mapping_get(resources[1], resource) if resources else None
    if found is None:
        raise TuneError(f"{path} has no resource {resource!r}")
    _, res = found
    props = _mapping_get(res, "Properties")
    if props is None or not isinstance(props[1], yaml.MappingNode) or props[1].flow_style:
        raise TuneError(f"{resource} has no block-style Properties to edit; set it by hand")
    current = _mapping_get(props[1], "MemorySize")
    if current is not None:
        value = current[1]
        if not isinstance(value, yaml.ScalarNode) or value.tag != "tag:yaml.org,2002:int":
            raise TuneError(
                f"{resource}'s MemorySize is not a number (a parameter?): set it by hand"
            )
        if int(value.value) == memory_mb:
            return "unchanged"
        start, end = value.start_mark.index, value.end_mark.index
        path.write_text(text[:start] + str(memory_mb) + text[end:])
        return f"changed {value.value} -> {memory_mb}"
    # No MemorySize of its own (Globals or the default): add one as the first property, at the
    # indentation of the others.
    first_key = props[1].value[0][0]
    indent = first_key.start_mark.column
    line_start = text.rfind("\n", 0, first_key.start_mark.index) + 1
    line = " " * indent + f"MemorySize: {memory_mb}\n"
    path.write_text(text[:line_start] + line + text[line_start:])
    return "added"
