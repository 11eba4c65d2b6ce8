"""The hub: one per process (per event loop), between the change feed and the pages.

It gathers a burst of committed changes, refetches each changed row once (one query
per model per batch), runs each distinct list query once for all the pages that show
it, and updates exactly the pages whose regions depend on a changed row or table,
found through an index kept here. Each affected page gets one ``patch`` frame per
batch.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

from django.apps import apps
from django.core.exceptions import EmptyResultSet
from django.db.models import Model, QuerySet

from .changes import DELETE, Change, get_feed
from .conf import rt_settings
from .live.page import Changes, LivePage, NeedsRefresh
from .live.proxies import Dependency
from .sessions import SESSION_LABEL
from .workers import run_in_hub_thread

logger = logging.getLogger("django_rt")


class Client(Protocol):
    """What the hub needs of a page's connection (the consumer)."""

    page: LivePage | None

    async def send_patch(self, ops: list[dict[str, Any]]) -> None: ...

    def refresh(self) -> list[dict[str, Any]]:
        """Run the page's view again and render it (a deleted row must disappear)."""
        ...


class SessionClient(Protocol):
    """What the hub needs of a connection to end it with its session."""

    def end_session(self) -> None:
        """The connection's session ended (on any process): close it, without waiting."""
        ...


def sql_key(queryset: QuerySet[Any]) -> tuple[str, str, str] | None:
    """What identifies a query: its database, SQL and parameters (``None`` for a query
    that can match nothing). Compiled once per queryset object: a page's querysets are
    asked again at every batch."""
    key = getattr(queryset, "_rt_sql_key", False)
    if key is False:
        try:
            sql, params = queryset.query.sql_with_params()
            key = (queryset.db, sql, repr(params))
        except EmptyResultSet:
            key = None
        queryset._rt_sql_key = key  # type: ignore[attr-defined]
    return key  # type: ignore[return-value]


class QueryCache:
    """Runs each distinct query once per batch, whichever page asks first."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, str, str], list[Any]] = {}
        self.queries = 0

    def __call__(self, queryset: QuerySet[Any]) -> list[Any]:
        key = sql_key(queryset)
        if key is None:
            return []
        rows = self.results.get(key)
        if rows is None:
            rows = self.results[key] = list(queryset.all())
            self.queries += 1
        return rows


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
        self.clients: dict[Client, set[Dependency]] = {}
        self.joining: dict[Client, list[Change]] = {}
        self.index: dict[Dependency, set[Client]] = {}
        self.pending: list[Change] = []
        self.sessions: dict[str, set[SessionClient]] = {}  # session_hash() -> connections
        self.flushing: asyncio.Task[None] | None = None
        self.unsubscribe = get_feed().subscribe(self.receive)
        weakref.finalize(self, self.unsubscribe)

    # connections -------------------------------------------------------------------

    def attach(self, client: Client) -> None:
        """Start buffering changes for a page that is about to render."""
        self.joining[client] = []

    async def ready(self, client: Client) -> None:
        """The page has rendered: index it, and apply what changed meanwhile."""
        backlog = self.joining.pop(client, [])
        self.reindex(client)
        if backlog:
            await self.process(backlog, only={client})

    def detach(self, client: Client) -> None:
        self.joining.pop(client, None)
        for dependency in self.clients.pop(client, set()):
            self._unindex(dependency, client)

    def reindex(self, client: Client) -> None:
        old = self.clients.get(client, set())
        new = client.page.dependencies() if client.page is not None else set()
        for dependency in old - new:
            self._unindex(dependency, client)
        for dependency in new - old:
            self.index.setdefault(dependency, set()).add(client)
        self.clients[client] = new

    def _unindex(self, dependency: Dependency, client: Client) -> None:
        clients = self.index.get(dependency)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.index[dependency]

    # sessions ----------------------------------------------------------------------

    def watch_session(self, client: SessionClient, session: str) -> None:
        """End ``client`` when the session whose :func:`~django_rt.sessions.session_hash`
        is ``session`` ends."""
        self.sessions.setdefault(session, set()).add(client)

    def unwatch_session(self, client: SessionClient, session: str) -> None:
        clients = self.sessions.get(session)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.sessions[session]

    def end_sessions(self, changes: list[Change]) -> list[Change]:
        """End the connections of the sessions that the feed says ended; the other
        changes, returned, are the database's."""
        rows = []
        for change in changes:
            if change.model != SESSION_LABEL:
                rows.append(change)
                continue
            for client in self.sessions.pop(change.pk, set()):
                try:
                    client.end_session()
                except Exception:  # one broken connection must not cost the others
                    logger.exception("django-rt: ending a session's connection failed")
        return rows

    # changes -----------------------------------------------------------------------

    def receive(self, changes: Sequence[Change]) -> None:
        """Feed subscriber: any thread."""
        if not self.loop.is_closed():
            # A fresh context: the publisher's (a request's, a worker thread's) must not
            # leak into the hub's task.
            self.loop.call_soon_threadsafe(
                self._enqueue, list(changes), context=contextvars.Context()
            )

    def _enqueue(self, changes: list[Change]) -> None:
        changes = self.end_sessions(changes)
        self.pending.extend(changes)
        if self.flushing is None:
            self.flushing = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(rt_settings.COALESCE_SECONDS)
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await self.process(batch)
                except Exception:
                    logger.exception("django-rt: processing %d changes failed", len(batch))
        finally:
            self.flushing = None

    def affected(self, changes: Sequence[Change]) -> set[Client]:
        clients: set[Client] = set()
        for change in changes:
            clients |= self.index.get(("t", change.model), set())
            clients |= self.index.get(("i", change.model, change.pk), set())
        return clients

    async def process(self, changes: Sequence[Change], only: set[Client] | None = None) -> None:
        for backlog in self.joining.values():
            backlog.extend(changes)
        clients = self.affected(changes)
        if only is not None:
            clients &= only
        if not clients:
            return
        updates = await run_in_hub_thread(self._update, changes, clients)
        for client, ops in updates:
            if client not in self.clients:
                continue  # disconnected while its update was computed
            self.reindex(client)
            if ops:
                try:
                    await client.send_patch(ops)
                except Exception:  # one broken connection must not cost the others
                    logger.exception("django-rt: sending a patch failed")

    def _update(
        self, changes: Sequence[Change], clients: set[Client]
    ) -> list[tuple[Client, list[dict[str, Any]]]]:
        """In a worker thread: refetch once, then update each page."""
        batch = Changes(instances=self._refetch(changes, clients), evaluate=QueryCache())
        batch.tables = {change.model for change in changes}
        updates = []
        for client in clients:
            page = client.page
            if page is None:
                continue
            with page.lock:
                try:
                    try:
                        ops = page.update(batch)
                    except NeedsRefresh:
                        ops = client.refresh()
                except Exception:
                    logger.exception("django-rt: updating a page failed")
                    continue
            updates.append((client, ops))
        return updates

    def _refetch(
        self, changes: Sequence[Change], clients: set[Client]
    ) -> dict[tuple[str, str], Model | None]:
        wanted: dict[str, set[str]] = {}
        rows: dict[tuple[str, str], Model | None] = {}
        for change in changes:
            if not change.pk or ("i", change.model, change.pk) not in self.index:
                continue
            if change.kind == DELETE:
                rows[(change.model, change.pk)] = None
                wanted.get(change.model, set()).discard(change.pk)
            else:
                wanted.setdefault(change.model, set()).add(change.pk)
                rows.pop((change.model, change.pk), None)
        for label, pks in wanted.items():
            model = apps.get_model(label)
            found = {str(row.pk): row for row in model._base_manager.filter(pk__in=pks)}
            for pk in pks:
                rows[(label, pk)] = found.get(pk)
        return rows
