"""YAML parsing: positions, repeated keys, merge keys, YAML 1.2 typing, hostile input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runner.spec import yamlsource
from runner.spec.yamlsource import YamlDocument, format_path

Parse = Callable[[str, str], tuple[list[YamlDocument], list[Any]]]


@pytest.fixture(params=["libyaml", "pure"])
def parse_yaml(request: pytest.FixtureRequest) -> Parse:
    """Every test runs on libyaml and on the pure-Python fallback."""
    if request.param == "libyaml":
        assert yamlsource.LIBYAML, "PyYAML without libyaml: validate runs ten times slower"
        return yamlsource.parse_yaml
    return lambda file, text: yamlsource.parse_yaml(file, text, pure=True)


def test_positions_of_keys_and_items(parse_yaml: Parse) -> None:
    docs, errors = parse_yaml("f.yaml", "a:\n  b: [x, {c: 1}]\n")
    assert errors == []
    doc = docs[0]
    assert doc.locate(("a", "b")) == (2, 3)
    assert doc.locate(("a", "b", 1, "c")) == (2, 11)
    assert doc.locate(("a", "missing", "deeper")) == (1, 1)


def test_repeated_key_is_an_error_naming_both_lines(parse_yaml: Parse) -> None:
    _, errors = parse_yaml("f.yaml", "a: 1\nb: 2\na: 3\n")
    assert [str(e) for e in errors] == [
        "f.yaml:3:1: a: key 'a' repeated in one mapping (first at line 1); "
        "YAML would keep only the last one"
    ]


def test_merge_keys_and_overrides(parse_yaml: Parse) -> None:
    docs, errors = parse_yaml("f.yaml", "x: &x {p: 1, q: 2}\ny:\n  <<: *x\n  q: 3\n")
    assert errors == []
    assert docs[0].data["y"] == {"p": 1, "q": 3}


def test_yaml_1_2_scalars(parse_yaml: Parse) -> None:
    docs, _ = parse_yaml("f.yaml", "a: ON\nb: no\nc: 012\nd: true\ne: 0x10\nf: 1.5\ng: ~\nh: 10\n")
    assert docs[0].data == {
        "a": "ON",
        "b": "no",
        "c": "012",
        "d": True,
        "e": 16,
        "f": 1.5,
        "g": None,
        "h": 10,
    }


def test_multi_document_and_empty_documents(parse_yaml: Parse) -> None:
    docs, errors = parse_yaml("f.yaml", "---\n---\na: 1\n---\nb: 2\n...\n")
    assert errors == []
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]


def test_unsafe_tags_are_refused(parse_yaml: Parse) -> None:
    _, errors = parse_yaml("f.yaml", "a: !!python/object/apply:os.system ['true']\n")
    assert len(errors) == 1
    assert errors[0].line == 1


def test_alias_bomb_is_bounded(parse_yaml: Parse) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    _, errors = parse_yaml("bomb.yaml", "\n".join(lines) + "\n")
    assert any("expands to over" in e.message for e in errors)


def test_format_path() -> None:
    assert format_path(("spec", "dependsOn", 0, "job")) == "spec.dependsOn[0].job"
    assert format_path(()) == ""


def test_nesting_is_bounded_below_and_beyond_libyamls_own_limit(parse_yaml: Parse) -> None:
    for depth in (65, 999, 1001, 100_000):
        _, errors = parse_yaml("deep.yaml", "a: " + "[" * depth + "]" * depth + "\n")
        assert [e.message for e in errors] == ["nested deeper than 64 levels"], depth
        assert errors[0].line == 1
    docs, errors = parse_yaml("ok.yaml", "a: " + "[" * 63 + "]" * 63 + "\n")
    assert errors == []
    assert docs[0].data["a"] is not None


def test_a_control_character_is_located_after_multibyte_text(parse_yaml: Parse) -> None:
    _, errors = parse_yaml("f.yaml", 'a: b\nc: "éé\x07"\n')
    assert [(e.line, e.column, e.message) for e in errors] == [
        (2, 7, "character #x0007 is not allowed in YAML")
    ]
