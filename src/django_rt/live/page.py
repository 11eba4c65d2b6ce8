"""One open page's live state: its regions, what they depend on, and how a change
turns into patch operations for its browser."""

from __future__ import annotations

import datetime
import decimal
import functools
import html as html_lib
import re
import threading
import uuid
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db.models import Manager, Model, QuerySet
from django.http import HttpRequest

from ..protocol import Marker, PatchKey, PatchOp
from . import audience
from .analysis import POSITIONAL
from .diff import comparable, diff, parse, region_op
from .proxies import ROW_KINDS, VIEW, Dependency, label, own_columns_only
from .recorder import (
    LIST,
    Region,
    enclosing,
    end_marker,
    evaluate_fresh,
    item_key,
    items_fit,
    same_value,
    start_marker,
    strip_markers,
    within,
)
from .render import (
    VIEW_KEY,
    live_context_keys,
    render_new_items,
    render_template,
    rerender,
    stable_hash,
)

PAGE = ""  # the index entry of reads outside any region

#: A dependency on every table: what a page depends on when what its view read is
#: unknown (any change runs the view again).
ANY: Dependency = ("*",)

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
    #: Runs a queryset (once per batch for all pages that show the same query); its
    #: ``primary_keys(queryset)``, if it has one, the keys of the rows alone.
    evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None
    #: The saved rows not fetched yet, and what fetches them (:meth:`complete`): rows
    #: that only pages whose views run again show come from those views' contexts.
    unfetched: frozenset[tuple[str, str]] = frozenset()
    fetch: Callable[[], dict[tuple[str, str], Model | None]] | None = None
    _keys: dict[int, tuple[list[Any], list[str]]] = field(default_factory=dict)
    _hashes: dict[int, tuple[list[Any], dict[str, int]]] = field(default_factory=dict)
    _row_hashes: dict[int, tuple[Any, int]] = field(default_factory=dict)
    _fresh: dict[str, dict[str, Model]] = field(default_factory=dict)
    _changed_keys: frozenset[Dependency] | None = None

    def complete(self) -> None:
        """Fetch the rows not fetched yet (see :attr:`unfetched`)."""
        fetch, self.fetch = self.fetch, None
        if fetch is not None:
            self.instances.update(fetch())
            self.unfetched, self._changed_keys = frozenset(), None

    def changed_keys(self) -> frozenset[Dependency]:
        """What the batch changed, as far as it is known before its rows are fetched:
        each row and table (a saved row that turns out gone adds its ``("e", ...)``)."""
        if self._changed_keys is None:
            keys: set[Dependency] = {("i", model, pk) for model, pk in self.unfetched}
            keys.update(self.dependencies())
            self._changed_keys = frozenset(keys)
        return self._changed_keys

    def with_rows(self, rows: dict[tuple[str, str], Model]) -> Changes:
        """The batch with ``rows`` for its unfetched rows, for one page (see
        :meth:`LivePage.rerun`): its other pages do not see them."""
        return Changes(
            instances={**self.instances, **rows},
            tables=self.tables,
            evaluate=self.evaluate,
        )

    def keys(self, rows: list[Any]) -> list[str]:
        """The item keys of ``rows``, once per batch for rows that pages share."""
        known = self._keys.get(id(rows))
        if known is None or known[0] is not rows:
            known = self._keys[id(rows)] = (rows, [item_key(row.pk) for row in rows])
        return known[1]

    def row_hash(self, row: Any) -> int:
        """:func:`row_hash` of a refetched row, once per batch."""
        known = self._row_hashes.get(id(row))
        if known is None or known[0] is not row:
            known = self._row_hashes[id(row)] = (row, row_hash(row))
        return known[1]

    def hashes(self, rows: list[Any]) -> dict[str, int]:
        """Each row's :func:`row_hash` by item key, once per batch for shared rows."""
        known = self._hashes.get(id(rows))
        if known is None or known[0] is not rows:
            hashes = dict(zip(self.keys(rows), map(row_hash, rows), strict=True))
            known = self._hashes[id(rows)] = (rows, hashes)
        return known[1]

    def keys_of(self, queryset: QuerySet[Any]) -> list[str]:
        """The item keys of ``queryset``'s rows now, in order (once per batch)."""
        pks = self.primary_keys(queryset)
        known = self._keys.get(id(pks))
        if known is None or known[0] is not pks:
            # The same keys as at the query's last batch (most batches leave a list's
            # rows where they were): the same item keys, without encoding each again.
            last = getattr(queryset, "_rt_item_keys", None)
            if last is not None and last[0] == pks:
                keys = last[1]
            else:
                keys = [item_key(pk) for pk in pks]
                queryset._rt_item_keys = (list(pks), keys)  # type: ignore[attr-defined]
            known = self._keys[id(pks)] = (pks, keys)
        return known[1]

    def fresh_rows(self, model: str) -> dict[str, Model]:
        """The batch's refetched rows of ``model`` (a label) by item key (once per
        batch: every page with a list of them asks)."""
        rows = self._fresh.get(model)
        if rows is None:
            rows = self._fresh[model] = {
                item_key(pk): row
                for (table, pk), row in self.instances.items()
                if table == model and row is not None
            }
        return rows

    def primary_keys(self, queryset: QuerySet[Any]) -> list[Any]:
        """The primary keys of ``queryset``'s rows now, in order (once per batch)."""
        shared = getattr(self.evaluate, "primary_keys", None)
        if shared is not None:
            return cast(list[Any], shared(queryset))
        from ..hub import primary_keys

        return primary_keys(queryset)

    def dependencies(self) -> Iterable[Dependency]:
        for (model, pk), row in self.instances.items():
            yield ("i", model, pk)
            if row is None:  # what showed its key alone learns of it too
                yield ("e", model, pk)
        for model in self.tables:
            yield ("t", model)


def row_hash(row: Any, depth: int = 2) -> int:
    """A hash of what a row holds: its fields, annotations, ``to_attr`` lists and
    prefetched rows (not the related objects it has cached, which are followed as rows
    of their own). Two copies of a row hash alike when a template would show them alike."""
    return hash(_fingerprint(row, depth))


def _fingerprint(value: Any, depth: int) -> Any:
    if isinstance(value, Model):
        if depth <= 0:
            return ("m", label(value), value.pk)
        items = []
        for name, item in value.__dict__.items():
            if name == "_prefetched_objects_cache":
                item = {key: list(qs) for key, qs in item.items()}
            elif name.startswith("_"):
                continue
            items.append((name, _fingerprint(item, depth - 1)))
        return ("m", label(value), tuple(items))
    if isinstance(value, list | tuple):
        return tuple(_fingerprint(item, depth) for item in value)
    if isinstance(value, dict):
        return tuple((key, _fingerprint(item, depth)) for key, item in value.items())
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


#: Values compared by equality when the view computes its context again.
_PLAIN = (
    str,
    int,
    float,
    bool,
    bytes,
    type(None),
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
)


class NeedsRefresh(Exception):
    """The page shows something a re-render cannot fix (a deleted row outside a list):
    the view must run again."""


#: What a template may find in a view's attributes and still read through a proxy.
_VIEW_OWN = frozenset({"request", "args", "kwargs"})
_MOST_TRACKED = 10_000


def _tracked_context(context: dict[str, Any]) -> bool:
    """Whether a template can reach the rows of ``context`` only through the proxies
    (``render.wrap_context``): each value is a row, a queryset, a manager or a plain
    value, or a list, tuple or dict of them; the view's attributes (but its request)
    the same, or lists, tuples and dicts of plain values. A row inside anything else (a
    form, a page of a paginator, an object of the view's own) is read unseen."""
    budget = [_MOST_TRACKED]
    for key, value in context.items():
        if key == VIEW_KEY:
            attributes = getattr(value, "__dict__", {})
            for name, attribute in attributes.items():
                if name in _VIEW_OWN or name.startswith(("rt_", "_rt")):
                    continue
                if not isinstance(attribute, Model | QuerySet | Manager) and not _tracked(
                    attribute, 0, budget, rows=False
                ):
                    return False
        elif not _tracked(value, 0, budget):
            return False
    return True


def _tracked(value: Any, depth: int, budget: list[int], rows: bool = True) -> bool:
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(value, _PLAIN) or (rows and isinstance(value, Model | QuerySet | Manager)):
        return True
    kind = type(value)
    if depth >= 4:
        return False
    if kind is list or kind is tuple:
        return all(_tracked(item, depth + 1, budget, rows) for item in value)
    if kind is dict:
        return all(
            isinstance(key, _PLAIN) and _tracked(item, depth + 1, budget, rows)
            for key, item in value.items()
        )
    return False


def stale_op(error: Exception) -> dict[str, Any]:
    """Tells the browser that its page could not be updated and may show old data."""
    message = f"live update failed: {type(error).__name__}"
    if settings.DEBUG:
        message += f": {error}"
    return {PatchKey.OP: PatchOp.STALE, PatchKey.MESSAGE: message}


def morph_op(html: str) -> dict[str, Any]:
    title = _TITLE.search(html)
    op: dict[str, Any] = {
        PatchKey.OP: PatchOp.MORPH,
        PatchKey.HTML: _body(html).replace(SCRIPT_PLACEHOLDER, ""),
    }
    if title:
        op[PatchKey.TITLE] = html_lib.unescape(strip_markers(title.group(1)))
    return op


_HEAD = re.compile(r"<head\b[^>]*>(.*?)</head\s*>", re.I | re.S)
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
_SCRIPT_TYPE = re.compile(r"""\btype\s*=\s*["']?\s*([^"'\s>]*)""", re.I)
_JAVASCRIPT = {"", "module", "text/javascript", "application/javascript", "text/ecmascript"}


def _executable_scripts(html: str) -> list[str]:
    """The inline scripts a browser runs (not ``json_script`` data): once run, a change
    to them cannot reach the page but by a reload."""
    found = []
    for attributes, content in _SCRIPT.findall(html):
        kind = _SCRIPT_TYPE.search(attributes)
        if (kind.group(1).lower() if kind else "") in _JAVASCRIPT:
            found.append(strip_markers(content))
    return found


def _part(pattern: re.Pattern[str], html: str) -> str:
    match = pattern.search(html)
    return match.group(1) if match else ""


def page_patch(before: str, after: str) -> list[dict[str, Any]]:
    """The operations from one render of a whole page to the next: the head's title and
    other elements (a ``<style>``, a ``<meta>``) on their own, the body region by region
    while its own text is unchanged, else morphed; a reload when a script that already
    ran would differ."""
    if comparable(before) == comparable(after):
        return []
    if _executable_scripts(before) != _executable_scripts(after):
        return [{PatchKey.OP: PatchOp.RELOAD}]
    ops: list[dict[str, Any]] = []
    head_before, head_after = comparable(_part(_HEAD, before)), comparable(_part(_HEAD, after))
    if head_before != head_after:
        head: dict[str, Any] = {PatchKey.OP: PatchOp.HEAD}
        title_before, title_after = _part(_TITLE, head_before), _part(_TITLE, head_after)
        if title_before != title_after:
            head[PatchKey.TITLE] = html_lib.unescape(strip_markers(title_after))
        if _TITLE.sub("", head_before) != _TITLE.sub("", head_after):
            head[PatchKey.HTML] = strip_markers(head_after)
        ops.append(head)
    body = diff(_body(before), _body(after))
    return ops + ([morph_op(after)] if body is None else body)


def resync_patch(before: str, after: str, missed: AbstractSet[str] | None) -> list[dict[str, Any]]:
    """What brings a browser that showed ``before``, except the regions ``missed``
    (``None``: unknown), to ``after``: :func:`page_patch`, plus the top-level regions that
    hold a missed one, whole (the browser still has their markers); a morph when that is
    not enough."""
    if missed is None:
        return [morph_op(after)]
    ops = page_patch(before, after)
    if any(op[PatchKey.OP] in (PatchOp.MORPH, PatchOp.RELOAD) for op in ops):
        return ops
    body = _body(after)
    tops = {span.id: body[span.start : span.end] for span in parse(body).children}
    roots = {_TOP.split(region_id, maxsplit=1)[0] for region_id in missed}
    if roots & missed or not roots <= tops.keys():
        # A top-level region the browser lost (nothing to address), or one the page no
        # longer has: only the whole body will do.
        return [morph_op(after)]

    def inside_a_root(op: dict[str, Any]) -> bool:
        region_id = str(op.get(PatchKey.ID, ""))
        return any(region_id == root or within(root, region_id) for root in roots)

    return [region_op(root, tops[root]) for root in sorted(roots)] + [
        op for op in ops if not inside_a_root(op)
    ]


_TOP = re.compile(rf"[.{re.escape(Marker.ITEM)}]")


def _body(html: str) -> str:
    match = _BODY.search(html)
    return match.group(1) if match else html


#: What every region's start marker begins with: a region's output without it holds no
#: region of its own.
_NESTED = f"<!--{Marker.START}"


def _item_of(region: Region, nested_id: str) -> str | None:
    """The key of the item of list ``region`` that region ``nested_id`` is in (item
    keys hold no ``.``, see ``recorder.item_key``), if it is one of the list's."""
    prefix = region.id + Marker.ITEM
    if not nested_id.startswith(prefix):
        return None
    key = nested_id[len(prefix) :].split(".", 1)[0]
    return key if key in region.items else None


def _replace_span(html: str, region_id: str, inner: str) -> str:
    start, end = start_marker(region_id), end_marker(region_id)
    at = html.find(start)
    if at < 0:
        return html
    stop = html.find(end, at)
    return html[: at + len(start)] + inner + html[stop:]


F = TypeVar("F", bound=Callable[..., Any])


def _activated(method: F) -> F:
    """Run a method of the page with the page's activation (see ``LivePage.activate``),
    counting what it reads of its request (see ``audience.py``)."""

    @functools.wraps(method)
    def run(self: LivePage, *args: Any, **kwargs: Any) -> Any:
        with self.activate(), audience.recording(self.request):
            return method(self, *args, **kwargs)

    return cast(F, run)


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
        self._dependencies: frozenset[Dependency] | None = None  # of the index's keys
        self.registry: dict[Dependency, Any] = {}
        self._context_dependencies: frozenset[Dependency] = frozenset()
        #: What the render read outside any region (the page renders whole for it).
        self.page_reads: frozenset[Dependency] = frozenset()
        #: Why the last update failed, until the page renders again: the browser was
        #: told (``stale``), and any change runs the view again and morphs the page.
        self.failed: Exception | None = None
        #: Entered around every render and update of the page, in whatever thread runs
        #: it: what its request had active (``middleware.Activation.active``: its
        #: language, time zone). Pages whose ``activate`` differ render differently.
        self.activate: Callable[[], AbstractContextManager[Any]] = nullcontext
        #: What pages must have alike, besides what their requests read, to share this
        #: page (see ``audience.py``: the view, the template, the activation); None:
        #: never shared. The audience key, and what the request had read when it was
        #: computed (:meth:`find_audience`).
        self.audience_parts: tuple[Hashable, ...] | None = None
        self.audience: Hashable | None = None
        self.audience_reads: frozenset[str] | None = None
        #: The connection whose request the page renders with, once the hub found it.
        self.owner: weakref.ref[Any] | None = None
        #: The batch whose changes to what the view read run the view again (see
        #: :meth:`rerun`), while that runs.
        self.refreshing: Changes | None = None
        #: The last :meth:`html_hash` and the HTML it hashed.
        self._hashed: tuple[str, str] | None = None

    @property
    def context_dependencies(self) -> frozenset[Dependency]:
        """What the view read while it computed the context (``get_context_data()``):
        a change to any of it means running the view again (see :meth:`rerun`). A row
        the view passed on unread (``("e", ...)``, see ``reads.ReadSet.passed``) counts
        by its existence while the template can reach it only through the proxies
        (:func:`_tracked_context`); else as a read of the row."""
        return self._context_dependencies

    @context_dependencies.setter
    def context_dependencies(self, dependencies: frozenset[Dependency]) -> None:
        if any(dependency[0] == "e" for dependency in dependencies) and not _tracked_context(
            self.context
        ):
            dependencies = frozenset(
                ("i", *dependency[1:]) if dependency[0] == "e" else dependency
                for dependency in dependencies
            )
        self._context_dependencies = dependencies

    # audiences ---------------------------------------------------------------------

    def find_audience(self) -> Hashable | None:
        """Compute the page's audience key from what its request has read so far;
        returns the key it had."""
        old = self.audience
        self.audience, self.audience_reads = None, None
        if self.audience_parts is not None and self.request is not None and self._shareable():
            self.audience_reads = audience.reads(self.request)
            self.audience = audience.audience_key(
                self.request, *self.audience_parts, self.context_dependencies
            )
        return old

    def audience_holds(self) -> bool:
        """Whether the page still renders alike for its whole audience: its request read
        nothing more than when its key was computed, and it shows no view state."""
        return (
            self.audience is not None
            and self._shareable()
            and audience.reads(self.request) == self.audience_reads
        )

    def _shareable(self) -> bool:
        return self.failed is None and VIEW not in self.index

    def html_hash(self) -> str:
        """``stable_hash()`` of the page's HTML, computed once for each HTML it has
        (each page that joins an audience's page compares it with its own)."""
        html, hashed = self.html, self._hashed
        if hashed is None or hashed[0] is not html:
            hashed = self._hashed = (html, stable_hash(html))
        return hashed[1]

    # rendering ---------------------------------------------------------------------

    @_activated
    def render(self, evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None) -> str:
        """Render the whole page again and start over with its regions (the rows it
        already shows keep their proxies, which hold the freshest copies)."""
        result = render_template(
            self.template,
            self.context,
            self.request,
            evaluate=evaluate,
            registry=self.registry,
            context_keys=self.context_keys,
            # Each connection puts its own token in (see ``audience.py``).
            csrf_token=audience.CSRF_PLACEHOLDER if self.request is not None else None,
        )
        self.html = result.html
        self.regions = {}
        self.index = {}
        self._dependencies = None
        self.registry = result.registry
        for region in result.regions.values():
            self._add(region)
        self.page_reads = result.page_dependencies
        for dependency in result.page_dependencies | self.context_dependencies:
            self.index.setdefault(dependency, set()).add(PAGE)
        return self.html

    def rerun(
        self,
        context: dict[str, Any],
        context_dependencies: Iterable[Dependency] = (),
        evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The view ran again and computed ``context``: render the page from it (fresh
        rows only) and send what differs. When it ran for a batch of changes (see
        :attr:`refreshing`) and computed the context it had (the same rows, querysets
        and values), the batch updates the page region by region instead."""
        batch, self.refreshing = self.refreshing, None
        if batch is not None and self.failed is None:
            batch = self._with_context_rows(batch, context)
        if batch is not None and self.failed is None and self._same_context(context, batch):
            self._read_by_view(frozenset(context_dependencies))
            try:
                return self.update(batch, context_read=True)
            except NeedsRefresh:
                pass  # a deleted row that only a whole render drops: below, from scratch
        self.context = context
        self.context_dependencies = frozenset(context_dependencies)
        self.registry = {}
        if self.failed is not None:
            # What the browser holds is unknown since the failure: send all of it.
            after = self.render(evaluate or evaluate_fresh)
            self.failed = None
            return [morph_op(after)]
        return self.rerender(evaluate)

    def _with_context_rows(self, batch: Changes, context: dict[str, Any]) -> Changes:
        """The batch with its saved rows taken from ``context``, which the view has just
        computed from the database as it is now, when the context holds every one of
        them (whole rows) and no list of the page shows them (a list's rows are its own
        query's); else the batch with its rows fetched."""
        if not batch.unfetched:
            return batch
        found: dict[tuple[str, str], Model] = {}
        for row in _rows_in(context.values(), 0):
            key = (label(row), str(row.pk))
            if key in batch.unfetched and key not in found and not row.get_deferred_fields():
                found[key] = row
        if len(found) == len(batch.unfetched) and not any(
            self._listed(model, pk) for model, pk in found
        ):
            return batch.with_rows(found)
        batch.complete()
        return batch

    def _listed(self, model: str, pk: str) -> bool:
        """Whether a list region of the page may show the row."""
        ids = self.index.get(("t", model), set()) | self.index.get(("i", model, pk), set())
        return any(
            (region := self.regions.get(region_id)) is not None and region.kind == LIST
            for region_id in ids
        )

    def _read_by_view(self, dependencies: frozenset[Dependency]) -> None:
        """What the view's ``get_context_data()`` read this time (it computed the same
        context): the page depends on it from now on, not on what it read before."""
        old = self.context_dependencies
        self.context_dependencies = dependencies
        dependencies = self.context_dependencies
        for dependency in old - dependencies - self.page_reads:
            ids = self.index.get(dependency)
            if ids is not None:
                ids.discard(PAGE)
                if not ids:
                    del self.index[dependency]
        for dependency in dependencies - old:
            self.index.setdefault(dependency, set()).add(PAGE)
        self._dependencies = None

    def _same_context(self, context: dict[str, Any], changes: Changes) -> bool:
        """Whether ``context``, computed again, renders as the page's own does once
        ``changes`` are applied: the same keys, the same rows (holding what the page's
        copies hold after the batch), equal querysets, equal plain values, and the same
        view object while no region shows its state (``get_context_data()`` may set it).
        Anything else (a form, a paginator's page) counts as different."""
        old = self.context
        if old.keys() != context.keys():
            return False
        for key in old:
            if key == "view" and old[key] is context[key] and VIEW not in self.index:
                continue
            if not self._same_value(old[key], context[key], changes, 0):
                return False
        return True

    def _same_value(self, old: Any, new: Any, changes: Changes, depth: int) -> bool:
        if depth > 3 or type(old) is not type(new):
            return False
        if isinstance(old, Model):
            if old.pk is None or old.pk != new.pk:
                return False
            dependency: Dependency = ("i", label(old), str(old.pk))
            if dependency[1:] in changes.instances:
                current = changes.instances[(dependency[1], dependency[2])]
            else:
                proxy = self.registry.get(dependency)
                current = old if proxy is None else object.__getattribute__(proxy, "_rt_wrapped")
            return current is not None and row_hash(current) == row_hash(new)
        if isinstance(old, QuerySet):
            from ..hub import UNSHARED, queryset_key

            key = queryset_key(old)
            return key is not None and key is not UNSHARED and key == queryset_key(new)
        if isinstance(old, list | dict) and old is new:
            return False  # changed in place or not: what it held is not known
        if isinstance(old, list | tuple):
            return len(old) == len(new) and all(
                self._same_value(a, b, changes, depth + 1) for a, b in zip(old, new, strict=True)
            )
        if isinstance(old, dict):  # in order: a template may iterate over it
            return list(old) == list(new) and all(
                self._same_value(old[key], new[key], changes, depth + 1) for key in old
            )
        if isinstance(old, _PLAIN):
            return bool(old == new)
        return False

    def rerender(
        self, evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Render the whole page again with fresh queries; the operations that bring the
        browser there: region by region where the page's own text is unchanged, a
        morph otherwise."""
        before = self.html
        return page_patch(before, self.render(evaluate or evaluate_fresh))

    def dependencies(self) -> frozenset[Dependency]:
        """What the page depends on: the same object until that changes (the hub keeps
        it for every connection that shows the page)."""
        if self.failed is not None:
            return frozenset(self.index) | {ANY}
        if self._dependencies is None:
            self._dependencies = frozenset(self.index)
        return self._dependencies

    @property
    def context_keys(self) -> frozenset[str]:
        return live_context_keys(self.context, self.context_dependencies - {ANY})

    def _add(self, region: Region) -> None:
        if region.kind == LIST and not region.hashes and region.queryset is not None:
            rows = _rendered_rows(region)
            if rows is not None:
                region.hashes = dict(zip(region.keys, map(row_hash, rows), strict=True))
        self.regions[region.id] = region
        for dependency in region.deps:
            if dependency not in self.index:
                self.index[dependency] = set()
                self._dependencies = None
            self.index[dependency].add(region.id)

    def _drop(self, root_id: str) -> None:
        """Forget a region (or a list item) and every region nested in it."""
        region = self.regions.get(root_id)
        if region is not None and region.kind != LIST and _NESTED not in region.html:
            self._remove(root_id)  # no marker in it: nothing nested to look for
            return
        nested = (root_id + ".", root_id + Marker.ITEM)
        for region_id in [rid for rid in self.regions if rid.startswith(nested)]:
            self._remove(region_id)
        self._remove(root_id)

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
                    self._dependencies = None

    # updates -----------------------------------------------------------------------

    @_activated
    def update(self, changes: Changes, context_read: bool = False) -> list[dict[str, Any]]:
        """The patch operations that bring the browser up to date with ``changes``.

        Raises :class:`NeedsRefresh` when the view must run again: it read a changed
        table while computing the context (unless ``context_read``: it ran again, and
        computed the same context), or the page shows a deleted row that no query of
        the page would drop.
        """
        if self.failed is not None:
            raise NeedsRefresh
        if not context_read and self.reruns_for(changes):
            self.refreshing = changes
            raise NeedsRefresh
        changes.complete()  # a page that follows the batch region by region reads its rows
        changed = set(changes.dependencies())
        deleted: set[Dependency] = set()
        for (model, pk), row in changes.instances.items():
            row_dependency: Dependency = ("i", model, pk)
            proxy = self.registry.get(row_dependency)
            if row is None:
                deleted.add(row_dependency)
                deleted.add(("e", model, pk))
            elif proxy is not None:
                if changes.row_hash(row) == row_hash(object.__getattribute__(proxy, "_rt_wrapped")):
                    # The same content (a table-wide change that left this row alone, a
                    # save that changed nothing): what shows it renders the same.
                    changed.discard(row_dependency)
                proxy.rt_swap(row)  # query rows are swapped again when their query runs
        hit: set[str] = set()
        lists: set[str] = set()
        for dependency in changed:
            for region_id in self.index.get(dependency, ()):
                if region_id == PAGE and context_read and dependency not in self.page_reads:
                    continue  # what the view read: it ran again, to the same context
                region = self.regions.get(region_id)
                if region is not None and (
                    _shows_same(region, dependency, changes.instances)
                    or _counts_same(region, dependency, changes)
                ):
                    continue
                if region_id == PAGE or region is None or not self._is_own_row(region, dependency):
                    hit.add(region_id)
                else:
                    lists.add(region_id)
        if PAGE in hit:
            if not context_read and any(PAGE in self.index.get(row, ()) for row in deleted):
                # The page itself showed a row that is gone: only the view knows what
                # it shows instead.
                self.refreshing = changes
                raise NeedsRefresh
            return self.rerender(changes.evaluate)
        lists -= hit
        ops, rendered = self._update_lists(lists, hit, changes, changed)
        hit = {rid for rid in hit if not any(within(item, rid) for item in rendered)}
        return ops + self._rerender_regions(hit, deleted, changes.evaluate)

    def reruns_for(self, changes: Changes) -> bool:
        """Whether the page's update for ``changes`` runs its view again (it failed
        before, or its view read what the batch changed): see :meth:`update`."""
        return (
            self.failed is not None
            or ANY in self.context_dependencies
            or not self.context_dependencies.isdisjoint(changes.changed_keys())
        )

    @_activated
    def update_view(self) -> list[dict[str, Any]]:
        """The patch operations for what the view's own state changed (after an event)."""
        return self._rerender_regions(set(self.index.get(VIEW, ())), set(), None)

    @staticmethod
    def _is_own_row(region: Region, dependency: Dependency) -> bool:
        """Whether a keyed list region learns of this change by running its query again:
        a change to its table, or to one of its own rows."""
        if region.kind != LIST or region.queryset is None:
            return False
        model = label(region.queryset.rt_model)
        if dependency[0] == "t":
            return True
        return dependency[1] == model and item_key(dependency[2]) in region.hashes

    def _list_rows(
        self, region: Region, changes: Changes
    ) -> tuple[list[str], dict[str, int], dict[str, Any]]:
        """A keyed list region's rows now, in page order: their item keys, the hash of
        each row's content by key, and the rows that may need rendering (new ones,
        changed ones) by key, with the page's proxies on the fresh copies.

        A query whose rows hold their own table's columns alone (no annotation, no
        related row, no prefetch) asks the database for its keys only: every other row
        is as the page has it, the batch's own rows were refetched. A row that enters
        the list without being one of them (another table changed what the query
        matches) is fetched with the whole query."""
        queryset = object.__getattribute__(region.queryset, "_rt_queryset")
        reversed_ = getattr(region.node, "is_reversed", False)
        if own_columns_only(queryset) and region.hashes:
            model = label(queryset.model)
            shared = changes.keys_of(queryset)  # the batch's: each page takes a copy
            keys = shared[::-1] if reversed_ else list(shared)
            known = region.hashes
            fresh = changes.fresh_rows(model)
            found: dict[str, Any] = {}
            if keys == region.keys and known.keys() == region.items.keys():
                # The same rows in the same order: the batch's own are the ones to look at.
                hashes = dict(known)
                for key, own in fresh.items():
                    if key in hashes:
                        found[key] = own
                        hashes[key] = changes.row_hash(own)
                return keys, hashes, found
            hashes = {}
            for key in keys:
                row = fresh.get(key)
                if row is not None:
                    found[key] = row
                    hashes[key] = changes.row_hash(row)
                elif key in known and key in region.items:
                    hashes[key] = known[key]
                else:
                    break  # a row that the batch did not refetch
            else:
                return keys, hashes, found
        rows = (changes.evaluate or evaluate_fresh)(queryset)  # shared by the batch's pages
        for row in rows:
            proxy = self.registry.get(("i", label(row), str(row.pk)))
            if proxy is not None:
                proxy.rt_swap(row)
        if reversed_:
            rows = rows[::-1]
        keys = changes.keys(rows)
        return keys, changes.hashes(rows), dict(zip(keys, rows, strict=False))

    def _update_lists(
        self,
        lists: set[str],
        hit: set[str],
        changes: Changes,
        changed: set[Dependency],
    ) -> tuple[list[dict[str, Any]], set[str]]:
        """Run the query of each list region again: insert, remove and move its rows,
        and render again the rows whose content changed (only those).

        A list whose items depend on their position, that becomes empty or stops being
        empty, or that sits inside another region being rendered again, is rendered
        again whole instead (added to ``hit``). Returns the operations and the ids of
        the items rendered again.
        """
        ops: list[dict[str, Any]] = []
        rendered: set[str] = set()
        for region_id in sorted(lists, key=_depth):
            region = self.regions.get(region_id)
            if region is None or self._inside(region_id, hit):
                continue
            keys, hashes, rows = self._list_rows(region, changes)
            if len(set(keys)) != len(keys):
                hit.add(region_id)  # no longer keyable: render it whole
                continue
            # Only the rows that came fresh may hash otherwise: the others' hashes are
            # the region's own (an unchanged list's are copied but for the batch's rows).
            again = {
                key for key in rows if key in region.items and region.hashes.get(key) != hashes[key]
            }
            if again:
                # An item whose own text (outside its regions) shows nothing of its row
                # but the key stays as it is: the regions in it that read the row are
                # hit by the change and render again on their own.
                kept = _items_kept(region, again, rows, changed)
                if kept:
                    region.hashes = {**region.hashes, **{key: hashes[key] for key in kept}}
                    again -= kept
            if keys == region.keys and not again:
                continue
            if getattr(region.node, POSITIONAL, True) or not keys or not region.keys:
                hit.add(region_id)
                continue
            new, nested = render_new_items(
                region,
                keys,
                rows,
                self.request,
                self.registry,
                changes.evaluate,
                again=again,
                context_keys=self.context_keys,
            )
            rendered_now = [
                new.items[key] for key in new.keys if key not in region.items or key in again
            ]
            if not items_fit(region.node, rendered_now, nested):
                hit.add(region_id)  # a new row would not read as an item where it goes
                continue
            new.hashes = hashes
            left = set(region.keys) - set(keys)
            for key in left | again:
                self._drop(f"{region_id}{Marker.ITEM}{key}")
            if left and not new.items_read_more:
                # Its items read their own rows alone: the rows that left are no longer
                # read (a later delete of one of them concerns the list no more).
                model = label(region.queryset.rt_model)
                new.deps = frozenset(
                    dep
                    for dep in new.deps
                    if not (dep[0] in ROW_KINDS and dep[1] == model and item_key(dep[2]) in left)
                )
            self._replace(region, new, nested)
            rendered |= {f"{region_id}{Marker.ITEM}{key}" for key in again}
            ops += _list_ops(region, new, again)
        return ops, rendered

    def _inside(self, region_id: str, hit: set[str]) -> bool:
        return any(other in self.regions and within(other, region_id) for other in hit)

    def _rerender_regions(
        self,
        hit: set[str],
        deleted: set[Dependency],
        evaluate: Callable[[QuerySet[Any]], list[Any]] | None,
    ) -> list[dict[str, Any]]:
        if PAGE in hit:
            return self.rerender(evaluate)
        hit = {region_id for region_id in hit if region_id in self.regions}  # not dropped
        roots = sorted((rid for rid in hit if not self._inside(rid, hit)), key=_depth)
        for region_id in roots:
            region = self.regions[region_id]
            for dependency in region.deps & deleted:
                if ("t", dependency[1]) not in region.deps:
                    # A deleted row that no query of this region drops: only the view
                    # knows what the page shows instead.
                    raise NeedsRefresh
        ops: list[dict[str, Any]] = []
        for region_id in roots:
            old = self.regions.get(region_id)
            if old is None:
                continue
            new, nested = rerender(
                old, self.request, self.registry, evaluate, context_keys=self.context_keys
            )
            if new is None:
                return ops + self.rerender(evaluate)
            self._drop(region_id)
            self._replace(old, new, nested)
            patch = diff(old.html, new.html, region_id)
            ops += [region_op(new.id, new.html)] if patch is None else patch
        return ops

    def _replace(self, old: Region, new: Region, nested: dict[str, Region]) -> None:
        self._remove(old.id)
        self._add(new)
        for child in nested.values():
            self._add(child)
        if new.html != old.html:
            self._splice(new)

    def _splice(self, region: Region) -> None:
        """Put a region's new output into what its ancestors (and the page) remember."""
        self.html = _replace_span(self.html, region.id, region.html)
        for ancestor_id in enclosing(region.id):
            ancestor = self.regions.get(ancestor_id)
            if ancestor is None:
                continue
            ancestor.html = _replace_span(ancestor.html, region.id, region.html)
            if not ancestor.items:
                continue
            key = _item_of(ancestor, region.id)
            keys = ancestor.items if key is None else (key,)
            for key in keys:
                ancestor.items[key] = _replace_span(ancestor.items[key], region.id, region.html)


def _shows_same(
    region: Region, dependency: Dependency, instances: Mapping[tuple[str, str], Any]
) -> bool:
    """Whether ``region`` read the changed row of ``dependency`` through plain fields
    alone, and the fresh copy of the row holds the values it showed: its output would
    not change (the rest it read is a dependency of its own)."""
    fresh: dict[str, Any] | None = None
    for row_dependency, name, value in region.values:
        if row_dependency != dependency:
            continue
        if fresh is None:
            row = instances.get((dependency[1], dependency[2]))
            if row is None:
                return False
            fresh = row.__dict__
        if name not in fresh or not same_value(fresh[name], value):
            return False
    return fresh is not None


def _counts_same(region: Region, dependency: Dependency, changes: Changes) -> bool:
    """Whether ``region`` read the changed table of ``dependency`` only to count rows,
    and each of the querysets it counted has as many rows now: its output would not
    change (a batch asks for each query's keys once, for all its pages)."""
    if dependency[0] != "t" or not region.counts:
        return False
    return all(len(changes.primary_keys(queryset)) == count for queryset, count in region.counts)


def _items_kept(
    region: Region, again: set[str], rows: dict[str, Any], changed: set[Dependency]
) -> set[str]:
    """The items of list ``region`` keyed in ``again`` (their rows' content changed)
    that need not render again: their own text read no content of their row (the
    list's reads, its items' own and not their regions', hold no ``("i", model, pk)``
    of theirs), and the row is one the batch changed, so what in them read it is hit
    (a row whose annotation changed because another row did is not)."""
    deps = region.deps
    kept = set()
    for key in again:
        row = rows.get(key)
        if row is None:
            continue
        dependency = ("i", label(row), str(row.pk))
        if dependency in changed and dependency not in deps:
            kept.add(key)
    return kept


def _list_ops(old: Region, new: Region, again: set[str]) -> list[dict[str, Any]]:
    """The operations from list region ``old`` to ``new``, where only the rows keyed in
    ``again`` rendered again: the new order and rows (or, when the order is the same,
    each changed row alone), and, for a row rendered again whose own text is unchanged,
    only its inner regions that differ (what :func:`diff` gives, without parsing the
    rows that did not render)."""
    items = {key: new.items[key] for key in new.keys if key not in old.items}
    inner: list[dict[str, Any]] = []
    for key in new.keys:
        if key not in again:
            continue
        item_id = f"{new.id}{Marker.ITEM}{key}"
        patch = diff(old.items[key], new.items[key], item_id)
        if patch is None:
            items[key] = new.items[key]
        else:
            inner += patch
    ops: list[dict[str, Any]] = []
    if new.keys == old.keys:
        # Nothing added, removed or moved: the rows that changed, each on its own (a
        # list op would carry every key).
        return [
            region_op(f"{new.id}{Marker.ITEM}{key}", html) for key, html in items.items()
        ] + inner
    if items or new.keys != old.keys:
        ops.append(
            {
                PatchKey.OP: PatchOp.LIST,
                PatchKey.ID: new.id,
                PatchKey.KEYS: new.keys,
                PatchKey.ITEMS: items,
            }
        )
    return ops + inner


def _rows_in(values: Iterable[Any], depth: int) -> Iterator[Model]:
    """The model instances among ``values`` and in their lists, tuples and dicts (as
    deep as :meth:`LivePage._same_value` compares them)."""
    for value in values:
        if isinstance(value, Model):
            if value.pk is not None:
                yield value
        elif depth < 3 and isinstance(value, list | tuple):
            yield from _rows_in(value, depth + 1)
        elif depth < 3 and isinstance(value, dict):
            yield from _rows_in(value.values(), depth + 1)


def _depth(region_id: str) -> tuple[int, str]:
    return (region_id.count(".") + region_id.count(Marker.ITEM), region_id)


def _rendered_rows(region: Region) -> list[Any] | None:
    """The rows a list region was rendered from, unwrapped, in page order."""
    from .proxies import unwrap

    cached = object.__getattribute__(region.queryset, "_rt_results")
    if cached is None:
        return None
    rows = [unwrap(row) for row in cached[1]]
    if getattr(region.node, "is_reversed", False):
        rows = rows[::-1]
    if [item_key(row.pk) for row in rows] != region.keys:
        return None
    return rows
