"""XML ↔ plain data, for both dialects and both directions (client bodies, server answers).

Plain data is dicts (elements by name), lists and scalars. A dialect's ``Style``
says what differs: S3 Control writes maps as ``<entry><key/><value/></entry>``
inside a namespace and timestamps with milliseconds; COS has no namespace, names
some list items itself (``COSTag``: written from ``(name, value)`` pairs) and
repeats elements, which read back as lists.

Documents are written as text rather than through ElementTree: a 1,000-job
ListJobs page took 62 of its 71 ms building and serialising the element tree
(bench/serve.py). The text is byte for byte what ``ElementTree.tostring`` writes
(a property test holds it to that).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runner.jobs.errors import BadRequest


@dataclass(frozen=True)
class Style:
    """What one dialect's XML looks like."""

    namespace: str | None = None
    maps: frozenset[str] = field(default_factory=frozenset)  # <entry> maps, by element name
    millis: bool = False  # timestamps as 2024-01-02T03:04:05.000Z
    repeats: bool = False  # a repeated element reads as a list (else the last one counts)
    malformed: str = "the body is not XML"  # BadRequest's message for a body that is not XML


def text_of(value: Any, style: Style) -> str:
    """A scalar as the dialect writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
        if style.millis:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def escape(text: str) -> str:
    """Text as element content (what ElementTree escapes)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _add(out: list[str], name: str, value: Any, style: Style) -> None:
    """Append ``<name>value</name>``; None adds nothing."""
    if value is None:
        return
    if isinstance(value, dict) and name in style.maps and value:
        out.append(f"<{name}>")
        for key, inner in value.items():
            out.append("<entry>")
            _add(out, "key", str(key), style)
            _add(out, "value", text_of(inner, style), style)
            out.append("</entry>")
        out.append(f"</{name}>")
    elif isinstance(value, (dict, list)):
        inner_out: list[str] = []
        if isinstance(value, dict):
            for key, inner in value.items():
                _add(inner_out, key, inner, style)
        else:
            for item in value:
                if isinstance(item, tuple):  # (element name, value): COSTag and the like
                    _add(inner_out, item[0], item[1], style)
                else:
                    _add(inner_out, "member", item, style)
        out.append(f"<{name}>{''.join(inner_out)}</{name}>" if inner_out else f"<{name} />")
    else:
        text = escape(text_of(value, style))
        out.append(f"<{name}>{text}</{name}>" if text else f"<{name} />")


def document(root: str, fields: dict[str, Any], style: Style, *, declaration: bool = True) -> bytes:
    """``<?xml …?><root>fields</root>``, non-ASCII as character references."""
    out: list[str] = []
    for name, value in fields.items():
        _add(out, name, value, style)
    body = "".join(out)
    space = f' xmlns="{style.namespace}"' if style.namespace else ""
    prolog = '<?xml version="1.0" encoding="UTF-8"?>\n' if declaration else ""
    head = f"{prolog}<{root}{space}"
    text = f"{head}>{body}</{root}>" if body else f"{head} />"
    return text.encode("ascii", "xmlcharrefreplace")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def element_data(node: ET.Element, style: Style) -> Any:
    """An element as plain data: text, a list of members, a map of entries, or a dict."""
    children = list(node)
    if not children:
        return node.text or ""
    names = {_local(c.tag) for c in children}
    if names == {"member"}:
        return [element_data(c, style) for c in children]
    if names == {"entry"} and style.maps:
        found: dict[str, Any] = {}
        for entry in children:
            parts = {_local(p.tag): p.text or "" for p in entry}
            found[parts.get("key", "")] = parts.get("value", "")
        return found
    result: dict[str, Any] = {}
    for child in children:
        name, value = _local(child.tag), element_data(child, style)
        if style.repeats and name in result:
            previous = result[name]
            result[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[name] = value
    return result


def parse(body: bytes, style: Style) -> dict[str, Any]:
    """A body as data (the root's children); BadRequest when it is not XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadRequest(f"{style.malformed}: {exc}") from None
    found = element_data(root, style)
    return found if isinstance(found, dict) else {}


def repeated(value: Any) -> list[Any]:
    """A repeatable element's value as a list (one occurrence parses as a single value)."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]
