"""Reading a template file: UTF-8 text, YAML with CloudFormation's short tags, or JSON.

A template is input like any other: its size, its nesting and what its YAML aliases expand to are
bounded (an alias bomb is refused before it is expanded), map keys are text and appear once, and
every problem is one line saying where it is.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from ..errors import TemplateError
from .values import describe

__all__ = ["MAX_BYTES", "MAX_DEPTH", "CfnLoader", "read_template"]

MAX_BYTES = 1024 * 1024  # CloudFormation's limit for a template body (in S3)
MAX_DEPTH = 50  # real templates stay within a dozen levels; Python's recursion does not go far
MAX_ALIAS_VALUES = 100_000  # values YAML aliases may add to the template, expanded
SHORT_TAGS = frozenset(
    {
        "Ref",
        "Condition",
        "And",
        "Base64",
        "Cidr",
        "Equals",
        "FindInMap",
        "GetAZs",
        "GetAtt",
        "If",
        "ImportValue",
        "Join",
        "Length",
        "Not",
        "Or",
        "Select",
        "Split",
        "Sub",
        "ToJsonString",
        "Transform",
    }
)
_MERGE = "tag:yaml.org,2002:merge"


def _line(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads `!Ref X`, `!GetAtt A.B`, `!Sub ...` as their long forms, nests at
    most MAX_DEPTH levels, and takes every map key as its text, once."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.depth = 0
        self.aliased = False

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliased = True
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise TemplateError(
                    f"nested more than {MAX_DEPTH} levels deep",
                    _line(self.peek_event().start_mark),  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise TemplateError(f"must be a map (got a {node.id})", _line(node.start_mark))
        first: dict[str, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = _key(key_node)
            if key in first:
                raise TemplateError(
                    f"{key!r} appears twice in this map (first on line "
                    f"{first[key].start_mark.line + 1})",
                    _line(key_node.start_mark),
                )
            first[key] = key_node
        self.flatten_mapping(node)  # `<<: *base` merges, as SafeLoader does
        return {_key(k): self.construct_object(v, deep=deep) for k, v in node.value}


def _key(node: Any) -> str:
    # CloudFormation's keys are text: `Off:` names a resource Off, `8080:` a key "8080".
    if not isinstance(node, yaml.ScalarNode) or node.tag.startswith("!"):
        kind = "a tagged value" if isinstance(node, yaml.ScalarNode) else f"a {node.id}"
        raise TemplateError(f"a map key must be text (got {kind})", _line(node.start_mark))
    return str(node.value)


def _short_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if suffix not in SHORT_TAGS:
        raise TemplateError(f"!{suffix} is not a CloudFormation function", _line(node.start_mark))
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


def _text(loader: CfnLoader, node: yaml.Node) -> str:
    """Dates stay as written: CloudFormation has no date type."""
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _integer(loader: CfnLoader, node: yaml.Node) -> int:
    try:
        return SafeConstructor.construct_yaml_int(loader, node)  # type: ignore[arg-type]
    except ValueError:
        raise TemplateError(
            f"the number {describe(str(node.value))} has too many digits", _line(node.start_mark)
        ) from None


def _refused(loader: CfnLoader, node: yaml.Node) -> None:
    raise TemplateError(
        f"{node.tag.replace('tag:yaml.org,2002:', '!!')} values have no place in a template",
        _line(node.start_mark),
    )


CfnLoader.add_multi_constructor("!", _short_tag)
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", _text)
CfnLoader.add_constructor("tag:yaml.org,2002:int", _integer)
for _tag in ("binary", "set", "omap", "pairs"):
    CfnLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refused)


def _check_aliases(root: yaml.Node) -> None:
    """Refuse what aliases would expand past the bounds, without expanding it.

    PyYAML shares an aliased value rather than copying it, so a billion laughs loads at once;
    it is walking the expanded tree that never ends. Each node's expanded size and depth are
    computed once here (iteratively), and a node that contains its own alias is a cycle.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            depth[id(node)] = 1 + max((depth[id(c)] for c in children), default=0)
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise TemplateError(
                "a YAML alias refers to a value that contains it", _line(node.start_mark)
            )
        open_.add(id(node))
        stack.append((node, True))
        stack += [(c, False) for c in children if id(c) not in size]
    if size[id(root)] - len(size) > MAX_ALIAS_VALUES:
        raise TemplateError(
            f"YAML aliases expand the template by more than {MAX_ALIAS_VALUES:,} values"
        )
    if depth[id(root)] > MAX_DEPTH:
        raise TemplateError(f"YAML aliases nest the template more than {MAX_DEPTH} levels deep")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _yaml(text: str) -> Any:
    try:
        loader = CfnLoader(text)  # checks every character first
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count("\n") + 1
        char = chr(e.character) if isinstance(e.character, int) else e.character
        raise TemplateError(f"character {char!r} is not allowed in YAML", f"line {line}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if loader.aliased:
            _check_aliases(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(str(e.problem or e.context).split())
        raise TemplateError(
            f"is not a valid template: {problem}", _line(mark) if mark else ""
        ) from None
    except yaml.YAMLError as e:
        raise TemplateError(f"is not a valid template: {' '.join(str(e).split())}") from None
    finally:
        loader.dispose()


def _json(text: str) -> Any:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise TemplateError(f"{k!r} appears twice in one JSON object")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise TemplateError(f"{name} is not a JSON value")

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise TemplateError(
            f"is not a valid template: {e.msg}", f"line {e.lineno}, column {e.colno}"
        ) from None
    except RecursionError:
        raise TemplateError(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:  # a number of more digits than Python converts
        raise TemplateError(f"is not a valid template: {e}") from None


def _check_values(data: Any) -> None:
    """Nesting, and text that cannot go into a file name or an environment: NUL characters and
    lone surrogates (which escapes in quoted YAML and JSON can make)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, level = stack.pop()
        if level > MAX_DEPTH:
            raise TemplateError(f"nested more than {MAX_DEPTH} levels deep", where)
        if isinstance(value, dict):
            for k, v in value.items():
                _check_text(k, where)
                stack.append((v, f"{where}.{k}" if where else k, level + 1))
        elif isinstance(value, list):
            stack += [(v, f"{where}[{i}]", level + 1) for i, v in enumerate(value)]
        elif isinstance(value, str):
            _check_text(value, where)


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise TemplateError(f"{describe(text)} contains a NUL character", where)
    try:
        text.encode()
    except UnicodeEncodeError as e:
        raise TemplateError(
            f"{describe(text)} contains {text[e.start]!r}, which is not a character", where
        ) from None


def read_template(path: Path) -> Any:
    """The template's data (maps, lists, text, numbers) or a TemplateError saying where.

    Example: read_template(Path("template.yaml"))["Resources"]
    """
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise TemplateError("is a folder, not a template file")
        if not stat.S_ISREG(info.st_mode):
            raise TemplateError("is not a regular file")
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise TemplateError(f"cannot read it: {e.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise TemplateError("is larger than 1 MB, CloudFormation's limit for a template")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TemplateError("is UTF-16 text: save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TemplateError(
            f"is not UTF-8 text (byte 0x{raw[e.start]:02x})", f"line {line}"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise TemplateError("contains a NUL character: is it a text file?", f"line {line}")
    json_ = path.suffix == ".json" or text.lstrip().startswith("{")
    data = _json(text) if json_ else _yaml(text)
    _check_values(data)
    return data
