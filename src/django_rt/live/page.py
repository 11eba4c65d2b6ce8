"""One open page's live state: its regions, what they depend on, and how a change
turns into patch operations for its browser."""

from __future__ import annotations

import html as html_lib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest

from ..protocol import Marker, PatchKey, PatchOp
from .analysis import POSITIONAL
from .proxies import VIEW, Dependency
from .recorder import (
    LIST,
    Region,
    end_marker,
    evaluate_fresh,
    item_key,
    items_fit,
    start_marker,
    strip_markers,
    within,
)
from .render import render_new_items, render_template, rerender

PAGE = ""  # the index entry of reads outside any region

_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.I | re.S)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)

#: A placeholder the ``{% rt_script %}`` tag renders; replaced by the script in the
#: HTTP response, removed from what a join or a resync sends.
SCRIPT_PLACEHOLDER = "<!--django-rt:script-->"


@dataclass
class Changes:
    """One batch of database changes, as a page sees it."""

    #: ("app.model", "pk") -> the row as it is now, or None if it was deleted.
    instances: dict[tuple[str, str], Model | None] = field(default_factory=dict)
    #: Tables that had rows saved, added or deleted.
    tables: set[str] = field(default_factory=set)
    #: Runs a queryset (once per batch for all pages that show the same query).
    evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None
    _keys: dict[int, tuple[list[Any], list[str]]] = field(default_factory=dict)

    def keys(self, rows: list[Any]) -> list[str]:
        """The item keys of ``rows``, once per batch for rows that pages share."""
        known = self._keys.get(id(rows))
        if known is None or known[0] is not rows:
            known = self._keys[id(rows)] = (rows, [item_key(row.pk) for row in rows])
        return known[1]

    def dependencies(self) -> Iterable[Dependency]:
        for label, pk in self.instances:
            yield ("i", label, pk)
        for label in self.tables:
            yield ("t", label)


class NeedsRefresh(Exception):
    """The page shows something a re-render cannot fix (a deleted row outside a list):
    the view must run again."""


def morph_op(html: str) -> dict[str, Any]:
    body = _BODY.search(html)
    title = _TITLE.search(html)
    op: dict[str, Any] = {
        PatchKey.OP: PatchOp.MORPH,
        PatchKey.HTML: (body.group(1) if body else html).replace(SCRIPT_PLACEHOLDER, ""),
    }
    if title:
        op[PatchKey.TITLE] = html_lib.unescape(strip_markers(title.group(1)))
    return op


def _replace_span(html: str, region_id: str, inner: str) -> str:
    start, end = start_marker(region_id), end_marker(region_id)
    at = html.find(start)
    if at < 0:
        return html
    stop = html.find(end, at)
    return html[: at + len(start)] + inner + html[stop:]


class LivePage:
    """The live state of one page: rendered with tracking, kept up to date."""

    def __init__(self, template: Any, context: dict[str, Any], request: HttpRequest | None) -> None:
        self.template = template
        self.context = context
        self.request = request
        self.lock = threading.Lock()
        self.html = ""
        self.regions: dict[str, Region] = {}
        self.index: dict[Dependency, set[str]] = {}
        self.registry: dict[Dependency, Any] = {}

    # rendering ---------------------------------------------------------------------

    def render(self, evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None) -> str:
        """Render the whole page again and start over with its regions (the rows it
        already shows keep their proxies, which hold the freshest copies)."""
        result = render_template(
            self.template, self.context, self.request, evaluate=evaluate, registry=self.registry
        )
        self.html = result.html
        self.regions = {}
        self.index = {}
        self.registry = result.registry
        for region in result.regions.values():
            self._add(region)
        for dependency in result.page_dependencies:
            self.index.setdefault(dependency, set()).add(PAGE)
        return self.html

    def dependencies(self) -> set[Dependency]:
        return set(self.index)

    def _add(self, region: Region) -> None:
        self.regions[region.id] = region
        for dependency in region.deps:
            self.index.setdefault(dependency, set()).add(region.id)

    def _drop(self, root_id: str) -> None:
        """Forget a region (or a list item) and every region nested in it."""
        for region_id in [rid for rid in self.regions if rid == root_id or within(root_id, rid)]:
            self._remove(region_id)

    def _remove(self, region_id: str) -> None:
        region = self.regions.pop(region_id, None)
        if region is None:
            return
        for dependency in region.deps:
            ids = self.index.get(dependency)
            if ids is not None:
                ids.discard(region_id)
                if not ids:
                    del self.index[dependency]

    # updates -----------------------------------------------------------------------

    def update(self, changes: Changes) -> list[dict[str, Any]]:
        """The patch operations that bring the browser up to date with ``changes``."""
        for (label, pk), row in changes.instances.items():
            proxy = self.registry.get(("i", label, pk))
            if proxy is None:
                continue
            if row is None:
                del self.registry[("i", label, pk)]
            else:
                proxy.rt_swap(row)
        hit: set[str] = set()
        gone: set[str] = set()
        for (label, pk), row in changes.instances.items():
            ids = self.index.get(("i", label, pk), set())
            hit |= ids
            if row is None:
                gone |= ids
        moved: dict[str, list[Any]] = {}  # list regions whose rows changed -> the rows
        for label in changes.tables:
            for region_id in self.index.get(("t", label), set()):
                if region_id == PAGE:
                    hit.add(PAGE)
                    continue
                region = self.regions.get(region_id)
                if region is None or region_id in hit:
                    continue
                rows = self._list_rows(region, changes)
                if rows is None:
                    hit.add(region_id)
                elif changes.keys(rows) != region.keys:
                    moved[region_id] = rows
        ops = self._move_rows(moved, hit, changes.evaluate)
        return ops + self._patch(hit, gone, changes.evaluate)

    def update_view(self) -> list[dict[str, Any]]:
        """The patch operations for what the view's own state changed (after an event)."""
        return self._patch(set(self.index.get(VIEW, ())), set(), None)

    def _list_rows(self, region: Region, changes: Changes) -> list[Any] | None:
        """For a keyed list region, its rows now, in page order; ``None`` for a region
        that a change to its table simply renders again."""
        if region.kind != LIST or region.queryset is None:
            return None
        queryset = object.__getattribute__(region.queryset, "_rt_queryset")
        rows = (changes.evaluate or evaluate_fresh)(queryset)  # shared by the batch's pages
        if len(set(changes.keys(rows))) != len(rows):
            return None  # two rows, one key: no longer a keyed list
        if getattr(region.node, "is_reversed", False):
            return rows[::-1]
        return rows

    def _move_rows(
        self,
        moved: dict[str, list[Any]],
        hit: set[str],
        evaluate: Callable[[QuerySet[Any]], list[Any]] | None,
    ) -> list[dict[str, Any]]:
        """Insert, remove and move the rows of list regions, rendering new rows only.

        A list whose items depend on their position, that becomes empty or stops being
        empty, or that sits inside another region being rendered again, is rendered
        again whole instead (added to ``hit``).
        """
        ops: list[dict[str, Any]] = []
        for region_id, rows in moved.items():
            region = self.regions[region_id]
            inside_hit = any(
                other in self.regions and self.regions[other].contains(region_id) for other in hit
            )
            if inside_hit or getattr(region.node, POSITIONAL, True) or not rows or not region.keys:
                hit.add(region_id)
                continue
            new, nested = render_new_items(region, rows, self.request, self.registry, evaluate)
            fresh = [new.items[key] for key in new.keys if key not in region.items]
            if not items_fit(region.node, fresh, nested):
                hit.add(region_id)  # a new row would not read as an item where it goes
                continue
            for key in set(region.keys) - set(new.keys):
                self._drop(f"{region_id}{Marker.ITEM}{key}")
            added = {key: new.items[key] for key in new.keys if key not in region.items}
            self._remove(region_id)
            self._add(new)
            for child in nested.values():
                self._add(child)
            self._splice(new)
            ops.append(
                {
                    PatchKey.OP: PatchOp.LIST,
                    PatchKey.ID: region_id,
                    PatchKey.KEYS: new.keys,
                    PatchKey.ITEMS: added,
                }
            )
        return ops

    def _patch(
        self,
        hit: set[str],
        gone: set[str],
        evaluate: Callable[[QuerySet[Any]], list[Any]] | None,
    ) -> list[dict[str, Any]]:
        if PAGE in hit:
            return self._morph(evaluate)
        hit = {region_id for region_id in hit if region_id in self.regions}  # not moved away
        if not hit:
            return []
        roots = [
            rid
            for rid in hit
            if not any(self.regions[other].contains(rid) for other in hit if other in self.regions)
        ]
        if any(rid in gone for rid in roots):
            raise NeedsRefresh
        ops = []
        for region_id in sorted(roots, key=lambda rid: (rid.count("."), rid)):
            region = self.regions.get(region_id)
            if region is None:
                continue
            new, nested = rerender(region, self.request, self.registry, evaluate)
            if new is None:
                return self._morph(evaluate)
            self._drop(region_id)
            self._add(new)
            for child in nested.values():
                self._add(child)
            op = self._op(region, new)
            if op is not None:
                ops.append(op)
                self._splice(new)
        return ops

    def _splice(self, region: Region) -> None:
        """Put a region's new output into what its ancestors (and the page) remember."""
        self.html = _replace_span(self.html, region.id, region.html)
        for ancestor in self.regions.values():
            if not ancestor.contains(region.id):
                continue
            ancestor.html = _replace_span(ancestor.html, region.id, region.html)
            for key, item in ancestor.items.items():
                ancestor.items[key] = _replace_span(item, region.id, region.html)

    @staticmethod
    def _op(old: Region, new: Region) -> dict[str, Any] | None:
        if old.kind == LIST and new.kind == LIST and old.keys and new.keys:
            changed = {key: html for key, html in new.items.items() if old.items.get(key) != html}
            if not changed and old.keys == new.keys:
                return None
            return {
                PatchKey.OP: PatchOp.LIST,
                PatchKey.ID: new.id,
                PatchKey.KEYS: new.keys,
                PatchKey.ITEMS: changed,
            }
        if new.html == old.html:
            return None
        return {PatchKey.OP: PatchOp.REGION, PatchKey.ID: new.id, PatchKey.HTML: new.html}

    def _morph(self, evaluate: Callable[[QuerySet[Any]], list[Any]] | None) -> list[dict[str, Any]]:
        before = self.html
        after = self.render(evaluate or evaluate_fresh)
        return [] if after == before else [morph_op(after)]
