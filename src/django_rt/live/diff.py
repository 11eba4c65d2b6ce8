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
    if _own_text(old_html, old) != _own_text(new_html, new):
        return None
    ops: list[dict[str, Any]] = []
    for old_child, new_child in zip(old.children, new.children, strict=True):
        ops += _diff_child(old_html, old_child, new_html, new_child)
    return ops


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
