"""Render coarse, send fine: the patch operations between two renders of one part of a
page.

Whatever had to render again (a region, a list, the whole page after its view ran
again), the browser receives only what differs, at the smallest region that contains
the difference: the markers of both renders are parsed into trees of spans, and two
spans whose text outside their child regions is equal are compared child by child. A
span whose own text differs is sent whole; a keyed list sends the order of its keys
and the items that are new or changed; the page, when its own text differs, morphs.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field
from typing import Any

from ..protocol import Marker, PatchKey, PatchOp

# A form's CSRF token is masked anew on every render; any of them stays valid, so two
# renders that differ only there are the same to the browser.
_CSRF_VALUE = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*"')


def comparable(html: str) -> str:
    """``html`` with what differs between two renders of the same data left out."""
    return _CSRF_VALUE.sub(r'\1"', html) if "csrfmiddlewaretoken" in html else html


_MARKER = re.compile(rf"<!--/?{re.escape(Marker.START)}[^>]*?-->")
_START, _END = "<!--" + Marker.START, "<!--" + Marker.END


@dataclass
class Span:
    """A region (or list item) in a render: where its content starts and ends."""

    id: str
    start: int  # just after the start marker
    end: int = -1  # at the end marker
    children: list[Span] = field(default_factory=list)

    @property
    def is_list(self) -> bool:
        prefix = self.id + Marker.ITEM
        return bool(self.children) and all(
            child.id.startswith(prefix) and Marker.ITEM not in child.id[len(prefix) :]
            for child in self.children
        )

    def key(self, parent: Span) -> str:
        return self.id[len(parent.id) + len(Marker.ITEM) :]


def parse(html: str, root_id: str = "") -> Span:
    """The tree of marker spans of ``html`` (the content of region ``root_id``)."""
    root = Span(root_id, 0, len(html))
    stack = [root]
    for match in _MARKER.finditer(html):
        text = match.group()
        if text.startswith(_END):
            span_id = text[len(_END) : -3]
            if len(stack) > 1 and stack[-1].id == span_id:
                stack[-1].end = match.start()
                stack.pop()
        else:
            span = Span(text[len(_START) : -3], match.end())
            stack[-1].children.append(span)
            stack.append(span)
    for span in stack[1:]:  # unclosed: treat as running to the end
        span.end = len(html)
    return root


def _own_text(html: str, span: Span) -> tuple[list[str], list[str]]:
    """The span's text outside its children, in pieces, and its children's ids."""
    pieces, at = [], span.start
    for child in span.children:
        pieces.append(comparable(html[at : child.start]))
        at = child.end
    pieces.append(comparable(html[at : span.end]))
    return pieces, [child.id for child in span.children]


def diff(old_html: str, new_html: str, root_id: str = "") -> list[dict[str, Any]] | None:
    """Operations that turn the content ``old_html`` of region ``root_id`` into
    ``new_html``; ``None`` when the region's own text differs and it must be replaced
    whole (by the caller: a region op, or a morph for the page)."""
    old, new = parse(old_html, root_id), parse(new_html, root_id)
    return _diff(old_html, old, new_html, new)


def _diff(old_html: str, old: Span, new_html: str, new: Span) -> list[dict[str, Any]] | None:
    if comparable(old_html[old.start : old.end]) == comparable(new_html[new.start : new.end]):
        return []
    if old.is_list and new.is_list:
        return _diff_list(old_html, old, new_html, new)
    attributes: list[list[Any]] = []
    if _own_text(old_html, old) != _own_text(new_html, new):
        found = _attribute_changes(old_html, old, new_html, new)
        if found is None:
            return None
        attributes = found
    ops: list[dict[str, Any]] = []
    for old_child, new_child in zip(old.children, new.children, strict=True):
        ops += _diff_child(old_html, old_child, new_html, new_child)
    if attributes:
        # Last: the places count the elements of the children as they are now.
        ops.append({PatchKey.OP: PatchOp.ATTRS, PatchKey.ID: new.id, PatchKey.SET: attributes})
    return ops


_TAG = re.compile(r"""<(/?)([A-Za-z][^\t\n\f\r />]*)((?:[^>"']+|"[^"]*"|'[^']*')*)>""")
_ATTRIBUTE_VALUE = re.compile(
    r"""([^\t\n\f\r "'>/=]+)(?:[\t\n\f\r ]*=[\t\n\f\r ]*("[^"]*"|'[^']*'|[^\t\n\f\r "'=<>`]+))?"""
)
#: Elements that the browser puts where they are written: no implied parents or end tags,
#: no raw text. A region made of others is replaced whole when its attributes change.
_IN_PLACE = frozenset(
    [
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "br",
        "button",
        "cite",
        "code",
        "data",
        "del",
        "dfn",
        "div",
        "em",
        "i",
        "img",
        "input",
        "ins",
        "kbd",
        "label",
        "li",
        "mark",
        "meter",
        "output",
        "progress",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "time",
        "u",
        "var",
        "wbr",
    ]
)


def _attribute_changes(
    old_html: str, old: Span, new_html: str, new: Span
) -> list[list[Any]] | None:
    """The attribute values that differ between two renders of a region whose own text
    differs in nothing else: ``[place, tag, name, value]`` (what an ``attrs`` op sets),
    ``None`` when more than attribute values differ, or the browser might place its
    elements otherwise than written."""
    if not new.id or [c.id for c in old.children] != [c.id for c in new.children]:
        return None
    before, after = _tags(old_html, old), _tags(new_html, new)
    if before is None or after is None or len(before[0]) != len(after[0]):
        return None
    if before[1] != after[1]:  # the text between the tags
        return None
    changes: list[list[Any]] = []
    for (_, name, old_attrs), (place, new_name, new_attrs) in zip(before[0], after[0], strict=True):
        if name != new_name or [a for a, _ in old_attrs] != [a for a, _ in new_attrs]:
            return None
        for (attribute, old_value), (_, new_value) in zip(old_attrs, new_attrs, strict=True):
            if old_value != new_value:
                if place < 0:
                    return None  # an end tag's attributes: not something to set
                changes.append([place, name, attribute, new_value])
    return changes


def _tags(
    html: str, span: Span
) -> tuple[list[tuple[int, str, list[tuple[str, str]]]], list[str]] | None:
    """The region's own tags (outside its children): each tag's place among all the
    region's elements in document order (-1 for an end tag), its name and attributes;
    and its own text between them. ``None`` if an element is not one of ``_IN_PLACE``
    or an attribute is named twice."""
    own: list[tuple[int, str, list[tuple[str, str]]]] = []
    text: list[str] = []
    place = 0
    at = span.start
    children = iter(span.children)
    child = next(children, None)
    for match in _TAG.finditer(html, span.start, span.end):
        while child is not None and match.start() >= child.end:
            child = next(children, None)
        closing, name = match.group(1), match.group(2).lower()
        if name not in _IN_PLACE:
            return None
        inside = child is not None and child.start <= match.start() < child.end
        if not inside:
            attributes = [
                (attribute.lower(), html_lib.unescape((value or "").strip("\"'")))
                for attribute, value in _ATTRIBUTE_VALUE.findall(match.group(3))
            ]
            if len({attribute for attribute, _ in attributes}) != len(attributes):
                return None
            own.append((-1 if closing else place, name, attributes))
            text.append(_outside(html, span, at, match.start()))
            at = match.end()
        if not closing:
            place += 1
    text.append(_outside(html, span, at, span.end))
    return own, text


def _outside(html: str, span: Span, start: int, end: int) -> str:
    """``html[start:end]`` without what lies inside the span's children."""
    pieces, at = [], start
    for child in span.children:
        if child.end <= at or child.start >= end:
            continue
        pieces.append(html[at : max(at, child.start)])
        at = max(at, child.end)
    pieces.append(html[at:end] if at < end else "")
    return comparable("".join(pieces))


def _diff_child(old_html: str, old: Span, new_html: str, new: Span) -> list[dict[str, Any]]:
    inner = _diff(old_html, old, new_html, new)
    if inner is not None:
        return inner
    return [region_op(new.id, new_html[new.start : new.end])]


def region_op(region_id: str, html: str) -> dict[str, Any]:
    return {PatchKey.OP: PatchOp.REGION, PatchKey.ID: region_id, PatchKey.HTML: html}


def _diff_list(old_html: str, old: Span, new_html: str, new: Span) -> list[dict[str, Any]]:
    old_items = {child.key(old): child for child in old.children}
    keys = [child.key(new) for child in new.children]
    items: dict[str, str] = {}
    inner_ops: list[dict[str, Any]] = []
    for child, key in zip(new.children, keys, strict=True):
        before = old_items.get(key)
        if before is not None:
            ops = _diff(old_html, before, new_html, child)
            if ops is not None:
                inner_ops += ops
                continue
        items[key] = new_html[child.start : child.end]
    ops = []
    if items or keys != list(old_items):
        ops.append(
            {
                PatchKey.OP: PatchOp.LIST,
                PatchKey.ID: new.id,
                PatchKey.KEYS: keys,
                PatchKey.ITEMS: items,
            }
        )
    return ops + inner_ops
