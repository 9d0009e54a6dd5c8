"""The one XML writer and reader of both dialects, held to ElementTree as the oracle."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from runner.dialects import cos, s3control, xml
from runner.jobs.errors import BadRequest


def _tree_document(root: str, fields: dict[str, Any], style: xml.Style) -> bytes:
    """The document as ElementTree writes it."""

    def add(parent: ET.Element, name: str, value: Any) -> None:
        if value is None:
            return
        element = ET.SubElement(parent, name)
        if isinstance(value, dict) and name in style.maps and value:
            for key, inner in value.items():
                entry = ET.SubElement(element, "entry")
                ET.SubElement(entry, "key").text = str(key)
                ET.SubElement(entry, "value").text = xml.text_of(inner, style)
        elif isinstance(value, dict):
            for key, inner in value.items():
                add(element, key, inner)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, tuple):
                    add(element, item[0], item[1])
                else:
                    add(element, "member", item)
        else:
            element.text = xml.text_of(value, style)

    element = ET.Element(root, xmlns=style.namespace) if style.namespace else ET.Element(root)
    for name, value in fields.items():
        add(element, name, value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element)


_names = st.sampled_from(["JobId", "Jobs", "Priority", "UserMetadata", "Tags", "Key", "COSTag"])
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.datetimes(timezones=st.just(UTC)),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(st.one_of(inner, st.tuples(_names, inner)), max_size=3),
        st.dictionaries(_names, inner, max_size=3),
    ),
    max_leaves=12,
)
STYLES = {"s3control": s3control.STYLE, "cos": cos.STYLE}


@pytest.mark.parametrize("dialect", sorted(STYLES))
@given(fields=st.dictionaries(_names, _values, max_size=4))
@example(fields={"JobId": None, "UserMetadata": {"JobId": ""}})  # an empty map value: <value />
@example(fields={"UserMetadata": {"": "x", "k": None}})
@example(fields={"TagSet": [("COSTag", {"Key": "a&b", "Value": "<é>"})]})
def test_documents_are_written_as_elementtree_writes_them(
    dialect: str, fields: dict[str, Any]
) -> None:
    style = STYLES[dialect]
    assert xml.document("Root", fields, style) == _tree_document("Root", fields, style)


def test_a_request_body_has_no_declaration_when_asked() -> None:
    assert xml.document("CreateJobRequest", {"A": 1}, cos.STYLE, declaration=False) == (
        b"<CreateJobRequest><A>1</A></CreateJobRequest>"
    )


def test_timestamps_follow_the_dialect() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert xml.text_of(moment, s3control.STYLE) == "2024-01-02T03:04:05.678Z"
    assert xml.text_of(moment, cos.STYLE) == "2024-01-02T03:04:05Z"


def test_reading_members_maps_and_repeats() -> None:
    body = (
        b'<R xmlns="urn:x"><L><member>a</member><member>b</member></L>'
        b"<UserMetadata><entry><key>k</key><value>v</value></entry></UserMetadata>"
        b"<T>1</T><T>2</T></R>"
    )
    assert xml.parse(body, s3control.STYLE) == {
        "L": ["a", "b"],
        "UserMetadata": {"k": "v"},
        "T": "2",  # S3 Control: the last of a repeated element counts
    }
    assert xml.parse(body, cos.STYLE)["T"] == ["1", "2"]  # COS repeats elements
    assert xml.repeated("x") == ["x"]
    assert xml.repeated("") == []
    assert xml.repeated(["x"]) == ["x"]


@pytest.mark.parametrize("dialect", sorted(STYLES))
def test_a_body_that_is_not_xml_is_a_bad_request(dialect: str) -> None:
    with pytest.raises(BadRequest, match="the body is not XML"):
        xml.parse(b"<unclosed", STYLES[dialect])
