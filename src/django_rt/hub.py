"""The hub: one per process (per event loop), between the change feed and the pages.

It gathers a burst of committed changes, refetches each changed row once (one query
per model per batch), runs each distinct list query once for all the pages that show
it, and updates exactly the pages whose regions depend on a changed row or table,
found through an index of live pages kept here. Connections whose pages show the same
thing share one live page (an audience, see ``live/audience.py``): it is indexed once
and updated once per batch, and its ``patch`` frame is encoded once and handed to every
socket, without waiting for any.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Hashable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from django.apps import apps
from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, connections
from django.db.models import Manager, Model, Prefetch, QuerySet

from . import wire
from .broadcasting import BROADCAST_LABEL, decode
from .changes import DELETE, Change, committing, get_feed, needs_resync
from .conf import rt_settings
from .live import audience, reads
from .live.page import ANY, Changes, LivePage, NeedsRefresh, stale_op
from .live.proxies import ROW_KINDS, Dependency
from .protocol import Frame, Key, PatchKey, PatchOp, encode
from .sessions import SESSION_LABEL
from .workers import run_in_hub_thread

logger = logging.getLogger("django_rt")

C = TypeVar("C")
R = TypeVar("R")

#: Seconds between the tries of a batch that met a database error, and the longest
#: wait between two tries to update the pages that it left behind.
RETRY_DELAYS = (0.1, 0.5, 2.0)
MAX_RETRY_DELAY = 5.0

#: Seconds after a commit's thread updated pages during which the next commits leave
#: their pages to the hub's thread: a burst of commits (a loop of saves) is gathered
#: into few batches there, and its writer is not slowed by each update.
INLINE_QUIET = 0.01

#: Rows refetched by one query at most (a query's parameters are limited: SQLite's
#: default is 32,766, older builds' 999).
REFETCH_CHUNK = 500


class Client(Protocol):
    """What the hub needs of a page's connection (the consumer)."""

    page: LivePage | None

    async def send_patch(self, ops: list[dict[str, Any]]) -> None: ...

    def push_patch(self, ops: list[dict[str, Any]], text: str | None = None) -> None:
        """Queue a patch frame (``text``: the frame already encoded), without waiting."""
        ...

    def refresh(self) -> list[dict[str, Any]]:
        """Run the page's view again and render it (a deleted row must disappear)."""
        ...

    def own_page(self, before: str) -> tuple[LivePage | None, list[dict[str, Any]]]:
        """Run the connection's own view and render its own page (in a worker thread):
        the page, and the operations from ``before`` (what the browser shows) to it."""
        ...


def encode_patch(ops: list[dict[str, Any]]) -> str:
    """A ``patch`` frame as the socket sends it."""
    return encode({Key.TYPE: Frame.PATCH, Key.OPS: ops})


@dataclass
class Delivery:
    """A page's update for the connections that show it."""

    clients: list[Client]
    ops: list[dict[str, Any]]
    text: str | None  # the frame, encoded once for all of them
    dependencies: frozenset[Dependency]
    #: The page they show from now on (None: the one they showed).
    page: LivePage | None = None
    #: An audience key that no longer names ``page``.
    forget: Hashable | None = None
    #: They show no live page any more (they reload).
    leave: bool = False
    #: The page that was updated, when they go on showing it (``page`` is None).
    source: LivePage | None = None


class Members(Generic[C]):
    """Connections by name (a session, a broadcast audience)."""

    def __init__(self) -> None:
        self.by_name: dict[str, set[C]] = {}

    def add(self, name: str, member: C) -> None:
        self.by_name.setdefault(name, set()).add(member)

    def discard(self, name: str, member: C) -> None:
        members = self.by_name.get(name)
        if members is not None:
            members.discard(member)
            if not members:
                del self.by_name[name]

    def get(self, name: str) -> list[C]:
        return list(self.by_name.get(name, ()))

    def pop(self, name: str) -> set[C]:
        return self.by_name.pop(name, set())

    def __len__(self) -> int:
        return len(self.by_name)


class BroadcastClient(Protocol):
    """What the hub needs of a connection to hand it broadcast commands."""

    def receive_broadcast(self, commands: list[dict[str, Any]]) -> None:
        """Send ``commands`` to the page, without waiting."""
        ...


class SessionClient(Protocol):
    """What the hub needs of a connection to end it with its session."""

    def end_session(self) -> None:
        """The connection's session ended (on any process): close it, without waiting."""
        ...


#: What :func:`queryset_key` answers for a queryset whose rows depend on more than can
#: be compared (objects it holds, a custom iterable): it is never shared between pages.
UNSHARED = ("unshared",)


def queryset_key(queryset: QuerySet[Any]) -> tuple[Any, ...] | None:
    """What shapes a queryset's rows: its class, database, SQL and parameters, the kind
    of result (instances, ``values()``, ``values_list(flat=True)`` ...) and its
    prefetches, recursively. ``None`` for a query that can match nothing; ``UNSHARED``
    when equality cannot be proven. Two querysets with equal keys give equal rows, so
    their pages may share one evaluation. Computed once per queryset object: a page's
    querysets are asked again at every batch."""
    key = getattr(queryset, "_rt_key", False)
    if key is False:
        key = _compute_key(queryset)
        queryset._rt_key = key  # type: ignore[attr-defined]
    return key  # type: ignore[return-value]


_SHAREABLE_ITERABLES = {
    "ModelIterable",
    "ValuesIterable",
    "ValuesListIterable",
    "FlatValuesListIterable",
    "NamedValuesListIterable",
}


def _compute_key(queryset: QuerySet[Any]) -> tuple[Any, ...] | None:
    iterable = queryset._iterable_class
    if (
        queryset._known_related_objects  # type: ignore[attr-defined]
        or getattr(iterable, "__module__", "") != "django.db.models.query"
        or iterable.__name__ not in _SHAREABLE_ITERABLES
    ):
        return UNSHARED
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return None
    prefetches: list[Any] = []
    for lookup in queryset._prefetch_related_lookups:  # type: ignore[attr-defined]
        if isinstance(lookup, str):
            prefetches.append(lookup)
        elif isinstance(lookup, Prefetch) and type(lookup) is Prefetch:
            inner = None if lookup.queryset is None else queryset_key(lookup.queryset)
            if inner is UNSHARED:
                return UNSHARED
            prefetches.append(
                ("prefetch", lookup.prefetch_through, lookup.prefetch_to, lookup.to_attr, inner)
            )
        else:
            return UNSHARED
    return (
        type(queryset),
        queryset.db,
        sql,
        repr(params),
        iterable.__name__,
        queryset._fields,  # type: ignore[attr-defined]
        repr(getattr(queryset, "_fetch_mode", None)),
        tuple(prefetches),
    )


def primary_keys(queryset: QuerySet[Any]) -> list[Any]:
    """The primary keys of ``queryset``'s rows now, in order. Its keys query is
    compiled once per queryset (:class:`KeysQuery`): a page's querysets are asked at
    every batch."""
    keys = getattr(queryset, "_rt_keys", None)
    if keys is None:
        keys = queryset._rt_keys = KeysQuery(queryset)  # type: ignore[attr-defined]
    return keys()


class KeysQuery:
    """``queryset.values_list("pk", flat=True)``, its SQL compiled once and run afresh
    at each call, through the database connection's own cursor (its execute wrappers
    see it as they see any query) and the primary key's converters. Compiling a query
    costs more than running it; its SQL and parameters are fixed once the queryset is
    made, whatever the rows."""

    __slots__ = ("compiler", "converters", "params", "sql", "using")

    def __init__(self, queryset: QuerySet[Any]) -> None:
        keys = queryset.values_list("pk", flat=True)
        self.using = keys.db
        self.compiler = keys.query.get_compiler(using=self.using)
        try:
            self.sql, self.params = self.compiler.as_sql()
        except EmptyResultSet:
            self.sql, self.params = None, ()
            self.converters: dict[int, Any] = {}
            return
        self.converters = self.compiler.get_converters([self.compiler.select[0][0]])

    def __call__(self) -> list[Any]:
        if self.sql is None:
            return []  # a query that matches nothing
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, self.params)
            rows: Iterable[Any] = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        return [row[0] for row in rows]


#: Batches of at most this many rows of a model refetch through a compiled query
#: (:class:`RowsQuery`), one per number of rows; larger ones build their query.
COMPILED_ROWS = 16


class RowsQuery:
    """``model._base_manager.filter(pk__in=pks)`` for a number of keys, its SQL compiled
    once and run with each batch's keys, through the database connection's own cursor
    and the columns' converters, each row made as the ORM makes it
    (``Model.from_db``). Building a query costs more than running it: a lone change
    refetches its row at every save.

    A model whose query may not be that plain (a base manager of its own, whose
    ``get_queryset()`` may add conditions or change by call) is refetched through the
    ORM, as is a query whose parameters are not the keys alone."""

    __slots__ = ("compiler", "converters", "init", "model", "sql", "using")

    _compiled: ClassVar[dict[tuple[type[Model], int, str], RowsQuery | None]] = {}

    def __init__(self, model: type[Model], pks: list[Any], using: str) -> None:
        """Compiles the query for ``pks`` (raises ``ValueError`` if it is not plain)."""
        if type(model._base_manager).get_queryset is not Manager.get_queryset:
            raise ValueError(f"{model._meta.label}'s base manager makes its own query")
        queryset = model._base_manager.db_manager(using).filter(pk__in=pks)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        if list(params) != _key_parameters(model, pks, using) or (
            compiler.annotation_col_map or compiler.klass_info.get("related_klass_infos")
        ):
            raise ValueError(f"{model._meta.label}'s rows need their own query")
        fields = compiler.klass_info["select_fields"]
        columns = compiler.select[fields[0] : fields[-1] + 1]
        self.model, self.sql, self.using, self.compiler = model, sql, using, compiler
        self.init = [column[0].target.attname for column in columns]
        self.converters = compiler.get_converters([column[0] for column in columns])

    @classmethod
    def rows(cls, model: type[Model], pks: list[Any]) -> list[Model]:
        """The rows of ``model`` whose keys are ``pks`` (distinct), as they are now."""
        using = model._base_manager.db
        if len(pks) > COMPILED_ROWS:
            return list(model._base_manager.db_manager(using).filter(pk__in=pks))
        key = (model, len(pks), using)
        if key not in cls._compiled:
            try:
                cls._compiled[key] = cls(model, pks, using)
            except (ValueError, EmptyResultSet):
                cls._compiled[key] = None
        query = cls._compiled[key]
        if query is None:
            return list(model._base_manager.db_manager(using).filter(pk__in=pks))
        return query(pks)

    def __call__(self, pks: list[Any]) -> list[Model]:
        model = self.model
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, _key_parameters(model, pks, self.using))
            rows: Iterable[Any] = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        return [model.from_db(self.using, self.init, row) for row in rows]


def _key_parameters(model: type[Model], pks: list[Any], using: str) -> list[Any]:
    """The parameters ``filter(pk__in=pks)`` passes the database: each key prepared
    as the lookup prepares it."""
    field, connection = model._meta.pk, connections[using]
    return [
        field.get_db_prep_value(field.get_prep_value(pk), connection, prepared=True) for pk in pks
    ]


class QueryCache:
    """Runs each distinct query once per batch, whichever page asks first. Only
    querysets equal in everything that shapes their rows share a result; the tables
    that the evaluation read (prefetches, subqueries) count as read by every page that
    the result serves."""

    def __init__(self) -> None:
        self.results: dict[tuple[Any, ...], tuple[list[Any], frozenset[reads.Read]]] = {}
        self.keys: dict[tuple[Any, ...], tuple[list[Any], frozenset[reads.Read]]] = {}
        self.queries = 0

    def primary_keys(self, queryset: QuerySet[Any]) -> list[Any]:
        """The primary keys of ``queryset``'s rows, in order: one query per batch for
        equal querysets, of the keys alone."""
        return self._once(self.keys, queryset, primary_keys)

    def __call__(self, queryset: QuerySet[Any]) -> list[Any]:
        return self._once(self.results, queryset, lambda queryset: list(queryset.all()))

    def _once(
        self,
        results: dict[tuple[Any, ...], tuple[list[Any], frozenset[reads.Read]]],
        queryset: QuerySet[Any],
        run: Callable[[QuerySet[Any]], list[Any]],
    ) -> list[Any]:
        key = queryset_key(queryset)
        if key is None:
            return []
        cached = results.get(key) if key is not UNSHARED else None
        if cached is None:
            with reads.collect() as tables:
                found = run(queryset)
            self.queries += 1
            if key is UNSHARED:
                return found
            cached = results[key] = (found, frozenset(tables))
        else:
            reads.note(cached[1])
        return cached[0]


#: A row's content and existence: the rows index keeps a row while either is indexed.
_OTHER_ROW_KIND = {"i": "e", "e": "i"}


class Hub:
    """Routes changes from the feed to the pages of one event loop."""

    _hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()

    @classmethod
    def current(cls) -> Hub:
        loop = asyncio.get_running_loop()
        hub = cls._hubs.get(loop)
        if hub is None:
            hub = cls._hubs[loop] = cls(loop)
        return hub

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: The connections whose pages are indexed (they have joined).
        self.clients: dict[Client, None] = {}
        #: Every live page, and the connections that show it (more than one: an
        #: audience); the page of each audience key that joining pages may share.
        self.members: dict[LivePage, set[Client]] = {}
        self.cohorts: dict[Hashable, LivePage] = {}
        #: The same pages by the prefix of their key (what joining pages look them up
        #: by before they render), and the pages whose update is being computed.
        self.prefixes: dict[Hashable, dict[LivePage, None]] = {}
        self.busy: dict[LivePage, int] = {}
        self.showing: dict[Client, LivePage] = {}
        self.joining: dict[Client, list[Change]] = {}
        #: The live pages by what they depend on, and what each one is indexed by:
        #: an audience's page once, however many connections show it.
        self.index: dict[Dependency, set[LivePage]] = {}
        self.indexed: dict[LivePage, frozenset[Dependency]] = {}
        #: The rows some page depends on, by model: a change to a whole table (a
        #: statement that wrote rows nobody named) reaches them too.
        self.rows: dict[str, set[str]] = {}
        self.pending: list[Change] = []
        self.sessions: Members[SessionClient] = Members()  # session_hash() -> connections
        #: Broadcast audiences (a view class, a group) -> this process's connections.
        self.audiences: Members[BroadcastClient] = Members()  # session_hash() -> connections
        self.flushing: asyncio.Task[None] | None = None
        #: Pages that failed on a database error, and the task that updates them once
        #: the database answers again.
        self.retrying: set[Client] = set()
        self.recovering: asyncio.Task[None] | None = None
        #: Held while a batch's pages are computed (in the hub's thread, or in the
        #: thread that committed it: see :meth:`_update_at_once`); and while ``busy``
        #: changes (it is counted from both).
        self.working = threading.Lock()
        self.gate = threading.Lock()
        self.loop_thread = threading.get_ident()
        self.inline_ended: float | None = None  # time.monotonic() when one last ended
        self.unsubscribe = get_feed().subscribe(self.receive)
        weakref.finalize(self, self.unsubscribe)

    # connections -------------------------------------------------------------------

    def attach(self, client: Client) -> None:
        """Start buffering changes for a page that is about to render."""
        self.joining[client] = []

    async def ready(self, client: Client, share: bool = True) -> None:
        """The page has rendered: index it, apply what changed meanwhile, then let it
        join the audience that shows the same, if any."""
        backlog = self.joining.pop(client, [])
        self.reindex(client)
        if backlog:
            await self.process(backlog, only={client})
        if share and client in self.clients:
            self.share(client)

    def detach(self, client: Client) -> None:
        self.joining.pop(client, None)
        self._member(client, None)
        self.clients.pop(client, None)

    # audiences ---------------------------------------------------------------------

    def _member(self, client: Client, page: LivePage | None) -> None:
        """Record that ``client`` shows ``page`` (None: no page any more)."""
        old = self.showing.pop(client, None)
        if old is not None and old is not page:
            members = self.members.get(old)
            if members is not None:
                members.discard(client)
                if not members:
                    del self.members[old]
                    self._uncohort(old.audience, old)
                    self._index(old, frozenset())
        if page is not None:
            self.showing[client] = page
            self.members.setdefault(page, set()).add(client)

    def shared(self, page: LivePage | None) -> bool:
        """Whether more than one connection shows ``page``."""
        return page is not None and len(self.members.get(page, ())) > 1

    def share(self, client: Client) -> bool:
        """Let ``client`` show the page of its audience instead of its own, when that
        page shows the same HTML now; else its page becomes its audience's."""
        page = client.page
        key = page.audience if page is not None else None
        if page is None or key is None:
            return False
        existing = self.cohorts.get(key)
        if existing is None or existing is page or existing not in self.members:
            self._cohort(page)
            return False
        if existing in self.busy or not existing.lock.acquire(blocking=False):
            return False  # being updated: its frame would not reach this connection
        try:
            if existing.html != page.html or not existing.audience_holds():
                return False
        finally:
            existing.lock.release()
        self.move(client, existing)
        return True

    def _cohort(self, page: LivePage) -> None:
        """``page`` is the one its audience's new pages share."""
        key = page.audience
        if key is None:
            return
        old = self.cohorts.get(key)
        if old is not None and old is not page:
            self._uncohort(key, old)
        self.cohorts[key] = page
        self.prefixes.setdefault(key[0], {})[page] = None  # type: ignore[index]

    def _uncohort(self, key: Hashable | None, page: LivePage) -> None:
        if key is None or self.cohorts.get(key) is not page:
            return
        del self.cohorts[key]
        pages = self.prefixes.get(key[0])  # type: ignore[index]
        if pages is not None:
            pages.pop(page, None)
            if not pages:
                del self.prefixes[key[0]]  # type: ignore[index]

    def audience_page(self, page: LivePage) -> LivePage | None:
        """The live page of ``page``'s audience, for a page that has not rendered: its
        view ran, and what it read of its request is what the audience's page read,
        or less (``page.audience_parts`` and its request are set). It shows what
        ``page`` would render, whenever no update of it is under way."""
        request = page.request
        if page.audience_parts is None or request is None or not page._shareable():
            return None
        read = audience.reads(request)
        if read is None or audience.ALL_META in read:
            return None
        start = audience.prefix(request, *page.audience_parts, page.context_dependencies)
        for candidate in self.prefixes.get(start, ()):
            known = candidate.audience_reads
            if known is None or not read <= known or candidate in self.busy:
                continue
            same = (start, audience.values(request, known)) == candidate.audience
            if same and candidate.audience_holds() and candidate in self.members:
                return candidate
        return None

    def adopt(self, client: Client, page: LivePage) -> None:
        """``client`` joined showing ``page``, its audience's (see
        :meth:`audience_page`): nothing rendered, nothing to catch up on."""
        self.joining.pop(client, None)
        self.move(client, page)

    def move(self, client: Client, page: LivePage) -> None:
        """``client`` shows ``page`` from now on."""
        client.page = page
        self.reindex(client)

    def reindex(self, client: Client, new: frozenset[Dependency] | None = None) -> None:
        """``client`` shows ``client.page``, indexed by what it depends on now (``new``:
        its dependencies, computed already)."""
        page = client.page
        if self.showing.get(client) is not page:
            self._member(client, page)
        self.clients[client] = None
        if page is not None:
            self._index(page, page.dependencies() if new is None else new)

    def _index(self, page: LivePage, new: frozenset[Dependency]) -> None:
        """Index ``page`` by ``new`` (nothing: it leaves the index)."""
        old = self.indexed.get(page, frozenset())
        if old is new or old == new:
            if new:
                self.indexed[page] = new
            return
        for dependency in old - new:
            self._unindex(dependency, page)
        for dependency in new - old:
            pages = self.index.get(dependency)
            if pages is None:
                pages = self.index[dependency] = set()
                if dependency[0] in ROW_KINDS:
                    self.rows.setdefault(dependency[1], set()).add(dependency[2])
            pages.add(page)
        if new:
            self.indexed[page] = new
        else:
            self.indexed.pop(page, None)

    def _unindex(self, dependency: Dependency, page: LivePage) -> None:
        pages = self.index.get(dependency)
        if pages is not None:
            pages.discard(page)
            if not pages:
                del self.index[dependency]
                kind = dependency[0]
                if kind in ROW_KINDS and (_OTHER_ROW_KIND[kind], *dependency[1:]) not in self.index:
                    pks = self.rows.get(dependency[1])
                    if pks is not None:
                        pks.discard(dependency[2])
                        if not pks:
                            del self.rows[dependency[1]]

    # sessions ----------------------------------------------------------------------

    def watch_session(self, client: SessionClient, session: str) -> None:
        """End ``client`` when the session whose :func:`~django_rt.sessions.session_hash`
        is ``session`` ends."""
        self.sessions.add(session, client)

    def unwatch_session(self, client: SessionClient, session: str) -> None:
        self.sessions.discard(session, client)

    def _end_session(self, change: Change) -> None:
        for client in self.sessions.pop(change.pk):
            client.end_session()

    # changes -----------------------------------------------------------------------

    def receive(self, changes: Sequence[Change]) -> None:
        """Feed subscriber: any thread."""
        if self.loop.is_closed():
            return
        if committing() and self._update_at_once(changes):
            return
        # A fresh context: the publisher's (a request's, a worker thread's) must not
        # leak into the hub's task.
        self.loop.call_soon_threadsafe(self._enqueue, list(changes), context=contextvars.Context())

    def _update_at_once(self, changes: Sequence[Change]) -> bool:
        """In the thread that committed ``changes``, before its commit returns: update
        their pages here, without a thread hop, when the hub is idle (no batch under
        way or waiting, no page joining or failing, none updated here in the last
        ``INLINE_QUIET`` seconds), at most ``INLINE_UPDATE_PAGES`` pages are affected,
        and none of them runs its view again (the commit takes a few regions' renders,
        not a view's queries). Returns whether it did: else the hub's thread takes the
        batch, as any other."""
        most = rt_settings.INLINE_UPDATE_PAGES
        if (
            not most
            or (
                self.inline_ended is not None
                and time.monotonic() - self.inline_ended < INLINE_QUIET
            )
            or threading.get_ident() == self.loop_thread
            or self.pending
            or self.flushing is not None
            or self.busy
            or self.joining
            or self.retrying
            or needs_resync(changes)
            # A deleted row that a page itself shows runs its view again.
            or any(change.kind == DELETE or change.model in self._MESSAGES for change in changes)
        ):
            return False
        if not self.working.acquire(blocking=False):
            return False  # a batch is being computed: this one follows it
        try:
            # A fresh context, as the hub's task has: what the committing code collects
            # (its reads, its request's) must not see the pages' queries.
            return contextvars.Context().run(self._update_here, changes, most)
        except Exception:  # the commit must not fail for its pages: the loop tries again
            logger.exception("django-rt: updating pages in the committing thread failed")
            return False
        finally:
            self.inline_ended = time.monotonic()
            self.working.release()

    def _update_here(self, changes: Sequence[Change], most: int) -> bool:
        pages = self.affected_pages(changes)
        if len(pages) > most or self.flushing is not None or self.busy:
            return False
        groups = {page: list(members) for page in pages if (members := self.members.get(page))}
        if not groups:
            return True  # no page shows them
        locked: list[LivePage] = []
        try:
            for page in groups:
                # Not waiting: this thread may hold it (a view run again for a page
                # saves a row), or another thread renders the page (a resync).
                if not page.lock.acquire(blocking=False):
                    return False
                locked.append(page)
            batch = self._batch(changes)
            if any(page.failed is not None or page.reruns_for(batch) for page in groups):
                return False
            self._hold(groups)
            try:
                self._update(changes, groups, self._ready, batch=batch, held=True)
            finally:
                self._unhold(groups)
        finally:
            for page in locked:
                page.lock.release()
        return True

    def _ready(self, delivery: Delivery) -> None:
        """Any thread: hand a page's update to the loop, which sends it."""
        self.loop.call_soon_threadsafe(self._deliver, delivery)

    def _hold(self, groups: Iterable[LivePage]) -> None:
        """Mark pages whose update is being computed (no joining page adopts them)."""
        with self.gate:
            for page in groups:
                self.busy[page] = self.busy.get(page, 0) + 1

    def _unhold(self, groups: Iterable[LivePage]) -> None:
        with self.gate:
            for page in groups:
                count = self.busy.get(page, 0) - 1
                if count > 0:
                    self.busy[page] = count
                else:
                    self.busy.pop(page, None)

    def _exclusive(self, function: Callable[..., R], *args: Any) -> R:
        """In the hub's thread: ``function(*args)``, alone (see :attr:`working`)."""
        with self.working:
            return function(*args)

    # broadcasts ----------------------------------------------------------------------

    def join_audiences(self, client: BroadcastClient, names: Iterable[str]) -> None:
        """Deliver to ``client`` what is broadcast to any of ``names``."""
        for name in names:
            self.audiences.add(name, client)

    def leave_audiences(self, client: BroadcastClient, names: Iterable[str]) -> None:
        for name in names:
            self.audiences.discard(name, client)

    def _deliver_broadcast(self, change: Change) -> None:
        message = decode(change)
        if message is None:
            logger.warning("django-rt: a malformed broadcast message was dropped")
            return
        audience, commands = message
        for client in self.audiences.get(audience):
            client.receive_broadcast(commands)

    def messages(self, changes: list[Change]) -> list[Change]:
        """Act on django-rt's own messages in ``changes`` (a session that ended, a
        broadcast); the other changes, returned, are the database's."""
        rows = []
        for change in changes:
            act = self._MESSAGES.get(change.model)
            if act is None:
                rows.append(change)
                continue
            try:
                act(self, change)
            except Exception:  # one broken connection must not cost the others
                logger.exception("django-rt: acting on a %s message failed", change.model)
        return rows

    _MESSAGES: ClassVar[dict[str, Callable[[Hub, Change], None]]] = {
        SESSION_LABEL: _end_session,
        BROADCAST_LABEL: _deliver_broadcast,
    }

    def _enqueue(self, changes: list[Change]) -> None:
        changes = self.messages(changes)
        self.pending.extend(changes)
        if self.flushing is None:
            # Started at once (where Python can), not after whatever else the loop has
            # ready: a lone change reaches the hub's thread without waiting its turn.
            flushing = _started(self.loop, self._flush())
            self.flushing = None if flushing.done() else flushing

    async def _flush(self) -> None:
        try:
            # A lone change goes at once; changes that come while a batch is processed
            # make the next batch together (an extra wait is optional).
            if rt_settings.COALESCE_SECONDS:
                await asyncio.sleep(rt_settings.COALESCE_SECONDS)
            while self.pending:
                batch, self.pending = self.pending, []
                for backlog in self.joining.values():
                    backlog.extend(batch)
                await self._process_or_fail(batch)
        finally:
            self.flushing = None

    async def _process_or_fail(self, batch: Sequence[Change]) -> None:
        """Process a batch; a database that does not answer is tried again a few times,
        then the affected pages are told that they may show old data, and resync as soon
        as the database answers again."""
        for delay in (*RETRY_DELAYS, None):
            try:
                await self.process(batch)
                return
            except DatabaseError as error:
                if delay is None:
                    logger.exception("django-rt: %d changes failed, database errors", len(batch))
                    self.fail(self.affected(batch), error)
                    return
                logger.warning("django-rt: database error (%s); retrying in %s s", error, delay)
                await asyncio.sleep(delay)
            except Exception as error:
                logger.exception("django-rt: processing %d changes failed", len(batch))
                self.fail(self.affected(batch), error)
                return

    def fail(self, clients: set[Client], error: Exception) -> None:
        """These pages could not be updated: tell them, and update them whole once it
        works again (on the next change, or when the database answers again)."""
        ops = [stale_op(error)]
        text = encode_patch(ops)
        for client in clients:
            if client.page is not None:
                client.page.failed = error
                self.reindex(client)
            self._push(client, ops, text)
        if isinstance(error, DatabaseError):
            self._retry(clients)

    def _retry(self, clients: set[Client]) -> None:
        self.retrying |= clients
        if self.recovering is None:
            self.recovering = self.loop.create_task(self._recover())

    async def _recover(self) -> None:
        delay = RETRY_DELAYS[0]
        try:
            while self.retrying:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                clients, self.retrying = self.retrying & set(self.clients), set()
                updates, failing = await self._refreshing(self._groups(clients))
                self.retrying |= failing
        finally:
            self.recovering = None

    def _groups(self, clients: Iterable[Client]) -> dict[LivePage, list[Client]]:
        """The pages of ``clients``, each with every connection that shows it."""
        groups: dict[LivePage, list[Client]] = {}
        for client in clients:
            page = client.page
            if page is not None and page not in groups:
                groups[page] = list(self.members.get(page) or (client,))
        return groups

    def _refresh(self, groups: dict[LivePage, list[Client]]) -> tuple[list[Delivery], set[Client]]:
        """In the hub's thread: run the views of pages again (failed ones, or all after
        the feed lost changes). Returns the deliveries and the connections whose database
        still does not answer."""
        updates: list[Delivery] = []
        failing: set[Client] = set()
        for page, members in groups.items():
            with page.lock:
                before = page.html
                try:
                    ops = _leader(page, members).refresh()
                except DatabaseError:
                    failing.update(members)
                    continue
                except Exception:
                    logger.exception("django-rt: updating a page failed")
                    continue
                updates += self._settle(page, members, before, ops)
        return updates, failing

    def _push(self, client: Client, ops: list[dict[str, Any]], text: str | None = None) -> None:
        """Queue a patch for ``client``'s socket, without waiting for it."""
        if not ops:
            return
        try:
            push = getattr(client, "push_patch", None)
            if push is not None:
                push(ops, text)
            else:
                self.loop.create_task(self._send(client, ops))
        except Exception:  # one broken connection must not cost the others
            logger.exception("django-rt: sending a patch failed")

    async def _send(self, client: Client, ops: list[dict[str, Any]]) -> None:
        try:
            await client.send_patch(ops)
        except Exception:  # one broken connection must not cost the others
            logger.exception("django-rt: sending a patch failed")

    def affected_pages(self, changes: Sequence[Change]) -> set[LivePage]:
        """The live pages that depend on any of ``changes``."""
        index = self.index
        pages: set[LivePage] = set(index.get(ANY, ()))
        for change in changes:
            pages.update(index.get(("t", change.model), ()))
            if change.pk:
                pages.update(index.get(("i", change.model, change.pk), ()))
                # Its existence too: a saved row may turn out gone (its key changed).
                pages.update(index.get(("e", change.model, change.pk), ()))
            else:  # any of the rows pages show: each may be gone
                for pk in tuple(self.rows.get(change.model, ())):
                    pages.update(index.get(("i", change.model, pk), ()))
                    pages.update(index.get(("e", change.model, pk), ()))
        return pages

    def affected(self, changes: Sequence[Change]) -> set[Client]:
        """The connections whose pages depend on any of ``changes``."""
        clients: set[Client] = set()
        for page in self.affected_pages(changes):
            clients.update(self.members.get(page, ()))
        return clients

    async def process(self, changes: Sequence[Change], only: set[Client] | None = None) -> None:
        if needs_resync(changes):
            # The feed may have lost changes: every page runs its view again.
            clients = set(self.clients) if only is None else set(self.clients) & only
            _, failing = await self._refreshing(self._groups(clients))
            if failing:
                self._retry(failing)
            return
        pages = self.affected_pages(changes)
        if only is not None:
            pages &= {self.showing.get(client) for client in only}
        if not pages:
            return

        groups = {page: list(self.members[page]) for page in pages if page in self.members}
        self._hold(groups)
        try:
            # In the hub's thread, page after page: each frame leaves as soon as it is
            # computed (_ready), not after the batch's last page.
            await run_in_hub_thread(self._exclusive, self._update, changes, groups, self._ready)
            await asyncio.sleep(0)  # the last deliveries scheduled from the thread
        finally:
            self._unhold(groups)

    async def _refreshing(
        self, groups: dict[LivePage, list[Client]]
    ) -> tuple[list[Delivery], set[Client]]:
        """:meth:`_refresh` in the hub's thread, and the deliveries."""
        self._hold(groups)
        try:
            updates, failing = await run_in_hub_thread(self._exclusive, self._refresh, groups)
            for delivery in updates:
                self._deliver(delivery)
        finally:
            self._unhold(groups)
        return updates, failing

    def _deliver(self, delivery: Delivery) -> None:
        """On the loop: hand a page's update to its connections."""
        if delivery.forget is not None and delivery.page is not None:
            self._uncohort(delivery.forget, delivery.page)
        connected = self.clients
        # Disconnected while the update was computed: nothing to do.
        clients = [client for client in delivery.clients if client in connected]
        target = None if delivery.leave else delivery.page or delivery.source
        if delivery.leave or delivery.page is not None:
            showing = self.showing
            for client in clients:
                if client.page is target and showing.get(client) is target:
                    continue  # an update of the page it shows: a thousand sockets, no work
                client.page = target
                self._member(client, target)
        if target is not None and target in self.members:
            # Once for the page, however many connections show it.
            self._index(target, delivery.dependencies)
            if isinstance(target.failed, DatabaseError):
                self._retry(set(clients))
        if delivery.ops:
            if delivery.text is not None:
                clients = _write_at_once(clients, delivery.text)
            for client in clients:
                self._push(client, delivery.ops, delivery.text)
        page = delivery.page
        if (
            page is not None
            and page.audience is not None
            and page in self.members
            and page.audience not in self.cohorts
        ):
            self._cohort(page)

    def _update(
        self,
        changes: Sequence[Change],
        groups: dict[LivePage, list[Client]] | Iterable[Client],
        ready: Callable[[Delivery], None] | None = None,
        batch: Changes | None = None,
        held: bool = False,
    ) -> list[Delivery]:
        """In the hub's thread: refetch once, then update each page once for all the
        connections that show it (``groups``: by page, see :meth:`_groups`); ``ready``
        hears of each page's update as soon as it is computed. ``batch``: the batch of
        ``changes`` (:meth:`_batch`), if made already; ``held``: the pages' locks are
        held already."""
        if not isinstance(groups, dict):
            groups = self._groups(groups)
        if batch is None:
            batch = self._batch(changes)
        # Pages that run their views again for this batch take the rows from the
        # contexts their views compute (see LivePage.rerun): fetched only for the
        # others, or where a context does not hold them.
        if batch.fetch is not None and not all(page.reruns_for(batch) for page in groups):
            batch.complete()
        deliveries = []
        for page, members in groups.items():
            with nullcontext() if held else page.lock:
                before = page.html
                try:
                    try:
                        ops = page.update(batch)
                    except NeedsRefresh:
                        try:
                            ops = _leader(page, members).refresh()
                        finally:
                            page.refreshing = None
                except Exception as error:
                    # The page must not silently show old data: it is told, and updated
                    # whole once it renders again.
                    logger.exception("django-rt: updating a page failed")
                    page.failed = error
                    ops = [stale_op(error)]
                settled = self._settle(page, members, before, ops)
            for delivery in settled:
                deliveries.append(delivery)
                if ready is not None:
                    ready(delivery)
        return deliveries

    def _settle(
        self, page: LivePage, members: list[Client], before: str, ops: list[dict[str, Any]]
    ) -> list[Delivery]:
        """The deliveries of a page's update (with its lock held): one for all the
        connections that show it, while the page still renders alike for all of them;
        else the one whose request the page renders with keeps it, and each other one
        gets its own page, its own view run again (the update read what the audience
        did not account for: the user, a header)."""
        text = encode_patch(ops) if ops else None
        owner = _owner(page, members)
        if page.failed is not None and page.audience is not None:
            # Its audience shows the same old data: all of them are told, and stay
            # together (none joins it meanwhile) until it renders again.
            return [Delivery(members, ops, text, page.dependencies(), source=page)]
        if page.audience_holds() or (len(members) == 1 and members[0] is owner):
            return [Delivery(members, ops, text, page.dependencies(), source=page)]
        if owner is None and len(members) == 1 and page.audience is None:
            # Never shared (a test's stand-in connection, a page without a request).
            return [Delivery(members, ops, text, page.dependencies(), source=page)]
        forget = page.find_audience()
        deliveries = []
        if owner is not None:
            deliveries.append(Delivery([owner], ops, text, page.dependencies(), page, forget))
        for client in members:
            if client is owner:
                continue
            try:
                own, own_ops = client.own_page(before)
            except Exception:
                logger.exception("django-rt: rendering a page of its own failed")
                own, own_ops = None, [{PatchKey.OP: PatchOp.RELOAD}]
            own_text = encode_patch(own_ops) if own_ops else None
            if own is None:  # it reloads, and shows nothing live until then
                deliveries.append(Delivery([client], own_ops, own_text, frozenset(), leave=True))
            else:
                deliveries.append(Delivery([client], own_ops, own_text, own.dependencies(), own))
        return deliveries

    def _batch(self, changes: Sequence[Change]) -> Changes:
        """The batch that updates pages for ``changes``: the rows known (deleted), and
        those to fetch once a page needs them."""
        wanted, known = self._wanted(changes)
        batch = Changes(instances=known, evaluate=QueryCache())
        batch.tables = {change.model for change in changes}
        if wanted:
            batch.unfetched = frozenset((label, pk) for label, pks in wanted.items() for pk in pks)
            batch.fetch = functools.partial(self._fetch, wanted)
        return batch

    def _wanted(
        self, changes: Sequence[Change]
    ) -> tuple[dict[str, set[str]], dict[tuple[str, str], Model | None]]:
        """The rows of a batch to fetch, by label, and the ones known without a query
        (deleted: None)."""
        wanted: dict[str, set[str]] = {}
        rows: dict[tuple[str, str], Model | None] = {}
        for change in changes:
            if not change.pk:  # any of the table's rows: the ones pages show
                for pk in tuple(self.rows.get(change.model, ())):
                    wanted.setdefault(change.model, set()).add(pk)
                    rows.pop((change.model, pk), None)
                continue
            # A row no page shows yet is fetched too when a page's query reads its
            # table: with it, a list that it enters needs the keys of its query alone.
            # A row whose key alone a page shows, to know whether it is still there (a
            # saved row may be gone: an update changed its key).
            shown = ("i", change.model, change.pk) in self.index or (
                "e",
                change.model,
                change.pk,
            ) in self.index
            if not shown and (change.kind == DELETE or ("t", change.model) not in self.index):
                continue
            if change.kind == DELETE:
                rows[(change.model, change.pk)] = None
                wanted.get(change.model, set()).discard(change.pk)
            else:
                wanted.setdefault(change.model, set()).add(change.pk)
                rows.pop((change.model, change.pk), None)
        return {label: pks for label, pks in wanted.items() if pks}, rows

    def _fetch(self, wanted: dict[str, set[str]]) -> dict[tuple[str, str], Model | None]:
        """The rows ``wanted`` names (by label) as they are now; None for one that is
        gone."""
        rows: dict[tuple[str, str], Model | None] = {}
        for label, pks in wanted.items():
            model = apps.get_model(label)
            listed = sorted(pks)
            found: dict[str, Model] = {}
            for start in range(0, len(listed), REFETCH_CHUNK):  # within any database's limits
                chunk = listed[start : start + REFETCH_CHUNK]
                found.update((str(row.pk), row) for row in RowsQuery.rows(model, chunk))
            for pk in pks:
                rows[(label, pk)] = found.get(pk)
        return rows


def _started(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """A task of ``coroutine`` that runs now until it first waits (Python 3.12 and
    newer); on Python 3.11 it starts at the loop's next turn."""
    if sys.version_info >= (3, 12):
        return asyncio.Task(coroutine, loop=loop, eager_start=True)
    return loop.create_task(coroutine)


def _write_at_once(clients: list[Client], text: str) -> list[Client]:
    """Hand the patch frame ``text`` that all of ``clients`` receive to the server's
    ``send`` of each connection that takes it at once (its ``writable_until``: open,
    nothing waiting, its access verdict fresh), one message for all, in one loop (or
    one frame's bytes for all, written to each socket's transport where the server
    lets django-rt read its state: ``wire.py``);
    returns the others, which get it through ``push_patch``. A thousand sockets then
    cost little more than a bare ASGI broadcast: each connection is asked one
    attribute, not the questions of ``push_patch``. A frame with the CSRF placeholder
    is made for each connection instead."""
    if audience.CSRF_PLACEHOLDER in text:
        return clients
    message = {"type": "websocket.send", "text": text}
    frame: bytes | None = None
    now = time.monotonic()
    rest = []
    write = wire.write
    for client in clients:
        if now < getattr(client, "writable_until", 0.0):
            direct = getattr(client, "direct", None)
            if direct is not None:
                if frame is None:
                    frame = wire.text_frame(text)
                if write(direct, frame):
                    continue
            client.write_message(message)  # type: ignore[attr-defined]
        else:
            rest.append(client)
    return rest


def _owner(page: LivePage, members: list[Client]) -> Client | None:
    """The connection whose request ``page`` renders with: what the page shows is
    right for it, whoever else it is shared with."""
    known: Client | None = page.owner() if page.owner is not None else None
    if (
        known is not None
        and known.page is page
        and getattr(known, "request", None) is page.request
        and known in members
    ):
        return known  # no Python loop over a thousand members on each update
    for client in members:
        if client.page is page and getattr(client, "request", None) is page.request:
            page.owner = weakref.ref(client)
            return client
    return None


def _leader(page: LivePage, members: list[Client]) -> Client:
    """The connection whose view runs again for a page that ``members`` show: its
    owner's, while it is there."""
    owner = _owner(page, members)
    if owner is not None:
        return owner
    for client in members:
        if client.page is page:
            return client
    return members[0]
