"""YAML text to plain data, remembering where every key and item stood.

PyYAML's safe loader alone is not enough for specs people edit by hand:

- it keeps the last of two equal keys in a mapping and says nothing, so a
  repeated ``priority:`` would silently win; here it is an error;
- it forgets positions, and errors must name file, line and column; here the
  composed node tree is walked by hand and every path gets its position;
- YAML 1.1 reads ``ON``/``off``/``yes`` as booleans and ``012`` as octal, so
  ``legalHold: {status: ON}`` would arrive as ``True``. Resolution here follows
  the YAML 1.2 core schema for booleans, and a number written with a leading
  zero stays text (its meaning differs between YAML versions; the text loses
  nothing). Timestamps are not resolved either: pydantic parses ISO strings.

Parsing is pure: it takes text and returns data, positions and errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.spec.errors import SpecError

Path = tuple[str | int, ...]

# A bound on nodes built per document: aliases can expand a small file into an
# enormous tree ("billion laughs"); no real spec comes near this.
_MAX_NODES = 200_000
# Bounds on what hostile text can make us do: composing and building are recursive
# (500 levels ran out of stack), and int() of thousands of digits is refused by Python
# (and quadratic before that). A spec nests a dozen levels and its numbers fit 64 bits.
MAX_DEPTH = 64
MAX_NUMBER_LENGTH = 40


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style implicit typing (see module docstring), and a bound
    on nesting checked while composing, before any recursion can run deep."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+|0o[0-7]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:0|[1-9][0-9]*)[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
# YAML 1.1 octal-looking scalars would otherwise be read back by the constructor.
_Loader.yaml_constructors = dict(yaml.SafeLoader.yaml_constructors)


def _construct_int(loader: yaml.SafeLoader, node: Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    if len(text) > MAX_NUMBER_LENGTH:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number of {len(text)} characters is too long", node.start_mark
        )
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})


@dataclass
class YamlDocument:
    """One YAML document of a file: its data and where each path stood."""

    file: str
    index: int
    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path) -> tuple[int, int]:
        """Line and column of ``path``, or of its nearest ancestor that exists."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (1, 1)

    def error(self, path: Path, message: str) -> SpecError:
        """An error located at ``path`` of this document."""
        line, column = self.locate(path)
        return SpecError(self.file, line, column, format_path(path), message)


def format_path(path: Path) -> str:
    """``("spec", "dependsOn", 0, "job")`` as ``spec.dependsOn[0].job``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class _Builder:
    def __init__(self, loader: _Loader, doc: YamlDocument) -> None:
        self.loader = loader
        self.doc = doc
        self.errors: list[SpecError] = []
        self.nodes = 0
        self.stack: set[int] = set()

    def _err(self, node: Node, path: Path, message: str) -> None:
        mark = node.start_mark
        self.errors.append(
            SpecError(self.doc.file, mark.line + 1, mark.column + 1, format_path(path), message)
        )

    def build(self, node: Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise _TooLarge(node)
        if id(node) in self.stack:
            self._err(node, path, "an alias refers to itself (recursive YAML is not allowed)")
            return None
        if isinstance(node, ScalarNode):
            try:
                return self.loader.construct_object(node)
            except yaml.YAMLError as exc:
                self._err(node, path, f"cannot read value: {_problem(exc)}")
                return None
        if node.tag not in _COLLECTION_TAGS:
            self._err(node, path, f"unsupported YAML tag {node.tag}")
            return None
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = []
                for i, child in enumerate(node.value):
                    self.doc.positions.setdefault((*path, i), _pos(child))
                    items.append(self.build(child, (*path, i)))
                return items
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self.stack.discard(id(node))
        self._err(node, path, f"unsupported YAML node {node.tag}")
        return None

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        own: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = {**self._merge_sources(value_node, path), **merged}
                continue
            if not isinstance(key_node, ScalarNode):
                self._err(key_node, path, "a mapping key must be a plain string")
                continue
            resolved = self.loader.resolve(  # type: ignore[no-untyped-call]
                ScalarNode, key_node.value, (True, False)
            )
            if key_node.style is None and resolved not in (_STR_TAG, _MERGE_TAG):
                # Keys are strings, as Kubernetes reads its resources: `1:` or `true:` as a
                # key is a slip more often than not, and quoting says what is meant.
                self._err(
                    key_node,
                    (*path, str(key_node.value)),
                    f'a mapping key must be a string: write it quoted, "{key_node.value}"',
                )
                continue
            # Keys keep their text: `2024: x` in tags is the key "2024", not an int.
            key = str(key_node.value)
            if key in first_seen:
                self._err(
                    key_node,
                    (*path, key),
                    f"key {key!r} repeated in one mapping (first at line {first_seen[key]}); "
                    "YAML would keep only the last one",
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.doc.positions[(*path, key)] = _pos(key_node)
            own[key] = self.build(value_node, (*path, key))
        return {**merged, **own}

    def _merge_sources(self, node: Node, path: Path) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        result: dict[str, Any] = {}
        # Earlier sources win over later ones in a YAML merge list.
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                self._err(source, path, "a merge key (<<) takes a mapping or a list of mappings")
                continue
            result.update(self._mapping(source, path))
        return result


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def _pos(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return f"{context}: {problem}" if context else str(problem)


def parse_yaml(file: str, text: str) -> tuple[list[YamlDocument], list[SpecError]]:
    """Parse every document of ``text``; empty documents are skipped."""
    documents: list[YamlDocument] = []
    errors: list[SpecError] = []
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problem = f"character #x{exc.character:04x} is not allowed in YAML"
        return [], [SpecError(file, line, column, "", problem)]
    try:
        for index in _document_indexes():
            if not loader.check_node():
                break
            node = loader.get_node()
            if node is None:
                continue
            doc = YamlDocument(file=file, index=index, data=None)
            doc.positions[()] = _pos(node)
            builder = _Builder(loader, doc)
            try:
                doc.data = builder.build(node, ())
            except _TooLarge as exc:
                line, column = _pos(exc.node)
                errors.append(
                    SpecError(
                        file, line, column, "", f"document expands to over {_MAX_NODES} nodes"
                    )
                )
                continue
            errors.extend(builder.errors)
            if doc.data is not None:
                documents.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        errors.append(SpecError(file, line, column, "", f"YAML syntax error: {_problem(exc)}"))
    except yaml.YAMLError as exc:
        errors.append(SpecError(file, 1, 1, "", f"YAML error: {_problem(exc)}"))
    finally:
        loader.dispose()
    return documents, errors


def _document_indexes() -> Iterator[int]:
    index = 0
    while True:
        yield index
        index += 1
