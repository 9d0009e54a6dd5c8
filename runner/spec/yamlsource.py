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
from yaml.error import Mark
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


def _construct_int(loader: Any, node: Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if len(text) > MAX_NUMBER_LENGTH:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number of {len(text)} characters is too long", node.start_mark
        )
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0)


# libyaml scans and composes in C, a tenth of the pure-Python loader's time. PyYAML's
# wheels carry it on every platform we know; where it is missing the pure loader does
# the same work, slower.
LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))


def _make_loader(base: type[Any]) -> type[Any]:
    class Loader(base):  # type: ignore[misc]
        """A safe loader with YAML 1.2-style implicit typing (see module docstring).

        libyaml refuses nesting beyond 1,000 levels itself, so its C recursion is bounded
        and MAX_DEPTH is checked while the node tree is walked; the pure-Python composer
        recurses in Python, so there the bound is checked while composing.
        """

        _depth = 0

        def compose_node(self, parent: Node | None, index: int) -> Node | None:
            self._depth += 1  # never called by libyaml's composer
            try:
                if self._depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise yaml.composer.ComposerError(
                        None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                    )
                return super().compose_node(parent, index)  # type: ignore[no-any-return]
            finally:
                self._depth -= 1

        # libyaml calls back into Python for every node; these replace the generic
        # Resolver's methods (there are no path resolvers here) with the least work.
        def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
            if kind is ScalarNode:
                if implicit[0]:
                    for tag, pattern in _IMPLICIT.get(value[:1], ()):
                        if pattern.match(value):
                            return tag
                return _STR_TAG
            return _SEQ_TAG if kind is SequenceNode else _MAP_TAG

        def descend_resolver(self, current_node: Node | None, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

    Loader.yaml_implicit_resolvers = {}
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+|0o[0-7]+)$"),
        list("-+0123456789"),
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?(?:0|[1-9][0-9]*)[eE][-+]?[0-9]+"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
    )
    Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
    # YAML 1.1 octal-looking scalars would otherwise be read back by the constructor.
    Loader.yaml_constructors = dict(yaml.SafeLoader.yaml_constructors)
    Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    return Loader


_Loader = _make_loader(yaml.CSafeLoader if LIBYAML else yaml.SafeLoader)
_PureLoader = _make_loader(yaml.SafeLoader)  # the fallback, tested beside libyaml
_IMPLICIT: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(found) for first, found in _Loader.yaml_implicit_resolvers.items()
}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_BOOLS = yaml.SafeLoader.bool_values
_COLLECTION_TAGS = frozenset({_SEQ_TAG, _MAP_TAG})


@dataclass
class YamlDocument:
    """One YAML document of a file: its data and where each path stood."""

    file: str
    index: int
    data: Any
    # The mark where each path starts (line and column counted from 0), kept as
    # the composer made it: most are never asked for.
    positions: dict[Path, Mark] = field(default_factory=dict)
    # Every mapping key of the document, at any depth: a policy on keys (no credentials)
    # can look here first and walk the data only when one is suspect.
    keys: set[str] = field(default_factory=set)

    def locate(self, path: Path) -> tuple[int, int]:
        """Line and column of ``path``, or of its nearest ancestor that exists."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return (found.line + 1, found.column + 1)
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
    def __init__(self, loader: Any, doc: YamlDocument) -> None:
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
        if len(path) >= MAX_DEPTH:
            raise _TooDeep(node)
        if isinstance(node, ScalarNode):
            # The common tags directly; what the constructor would do, without its machinery.
            tag = node.tag
            if tag == _STR_TAG:
                return node.value
            if tag == _NULL_TAG:
                return None
            if tag == _BOOL_TAG and node.value.lower() in _BOOLS:
                return _BOOLS[node.value.lower()]
            try:
                if tag == _INT_TAG:
                    return _construct_int(self.loader, node)
                return self.loader.construct_object(node)
            except yaml.YAMLError as exc:
                self._err(node, path, f"cannot read value: {_problem(exc)}")
                return None
        if id(node) in self.stack:  # only a collection can contain itself
            self._err(node, path, "an alias refers to itself (recursive YAML is not allowed)")
            return None
        if node.tag not in _COLLECTION_TAGS:
            self._err(node, path, f"unsupported YAML tag {node.tag}")
            return None
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = []
                positions = self.doc.positions
                for i, child in enumerate(node.value):
                    where = (*path, i)
                    positions.setdefault(where, child.start_mark)
                    items.append(self.build(child, where))
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
        positions = self.doc.positions
        keys = self.doc.keys
        for key_node, value_node in node.value:
            tag = key_node.tag
            if tag == _MERGE_TAG:
                merged = {**self._merge_sources(value_node, path), **merged}
                continue
            if not isinstance(key_node, ScalarNode):
                self._err(key_node, path, "a mapping key must be a plain string")
                continue
            # Keys keep their text: `2024: x` in tags is the key "2024", not an int.
            key = key_node.value
            if tag != _STR_TAG and not key_node.style:
                # Keys are strings, as Kubernetes reads its resources: `1:` or `true:` as a
                # key is a slip more often than not, and quoting says what is meant. (libyaml
                # gives a plain scalar the style "", the pure-Python loader None.)
                self._err(
                    key_node,
                    (*path, key),
                    f'a mapping key must be a string: write it quoted, "{key}"',
                )
                continue
            child = (*path, key)
            if key in own:
                first = positions[child].line + 1
                self._err(
                    key_node,
                    child,
                    f"key {key!r} repeated in one mapping (first at line {first}); "
                    "YAML would keep only the last one",
                )
                continue
            positions[child] = key_node.start_mark
            keys.add(key)
            own[key] = self.build(value_node, child)
        return {**merged, **own} if merged else own

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


class _TooDeep(_TooLarge):
    pass


def _pos(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return f"{context}: {problem}" if context else str(problem)


def parse_yaml(
    file: str, text: str, *, pure: bool = False
) -> tuple[list[YamlDocument], list[SpecError]]:
    """Parse every document of ``text``; empty documents are skipped.

    ``pure`` parses without libyaml (the fallback where PyYAML lacks it).
    """
    documents: list[YamlDocument] = []
    errors: list[SpecError] = []
    loader_class = _PureLoader if pure or not LIBYAML else _Loader
    try:
        loader = loader_class(text)  # the pure reader checks every character here
    except yaml.reader.ReaderError as exc:
        return [], [_reader_error(file, text, exc, in_bytes=False)]
    try:
        for index in _document_indexes():
            if not loader.check_node():
                break
            node = loader.get_node()
            if node is None:
                continue
            doc = YamlDocument(file=file, index=index, data=None)
            doc.positions[()] = node.start_mark
            builder = _Builder(loader, doc)
            try:
                doc.data = builder.build(node, ())
            except _TooLarge as exc:
                line, column = _pos(exc.node)
                problem = (
                    f"nested deeper than {MAX_DEPTH} levels"
                    if isinstance(exc, _TooDeep)
                    else f"document expands to over {_MAX_NODES} nodes"
                )
                errors.append(SpecError(file, line, column, "", problem))
                continue
            errors.extend(builder.errors)
            if doc.data is not None:
                documents.append(doc)
    except yaml.reader.ReaderError as exc:
        errors.append(_reader_error(file, text, exc, in_bytes=loader_class is _Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = _problem(exc)
        # libyaml's own bound (1,000 levels) or ours in the pure composer: one message.
        if "maximum nesting depth" in problem or "nested deeper than" in problem:
            problem = f"nested deeper than {MAX_DEPTH} levels"
            errors.append(SpecError(file, line, column, "", problem))
        else:
            errors.append(SpecError(file, line, column, "", f"YAML syntax error: {problem}"))
    except yaml.YAMLError as exc:
        errors.append(SpecError(file, 1, 1, "", f"YAML error: {_problem(exc)}"))
    finally:
        loader.dispose()
    return documents, errors


def _reader_error(
    file: str, text: str, exc: yaml.reader.ReaderError, *, in_bytes: bool
) -> SpecError:
    # libyaml reports the offset in the UTF-8 text, the pure reader in characters.
    if in_bytes:
        before = text.encode("utf-8", "surrogatepass")[: exc.position].decode("utf-8", "replace")
    else:
        before = text[: exc.position]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    problem = f"character #x{exc.character:04x} is not allowed in YAML"
    return SpecError(file, line, column, "", problem)


def _document_indexes() -> Iterator[int]:
    index = 0
    while True:
        yield index
        index += 1
