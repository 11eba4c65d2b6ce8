"""The outbox feed: committed batches reach every process through a table.

A batch is written to ``django_rt_outbox`` in the transaction that made it, so a
rolled-back transaction writes nothing and a committed one is never lost; the process
that wrote it delivers it to its own pages at commit. A reader thread in every process
reads the rows that other processes wrote, from the last id it saw: it polls, and on
PostgreSQL it is woken by ``LISTEN``/``NOTIFY`` (the poll stays, slower, as a
fallback). Any database Django supports, no server of its own.

Ids are handed out at insert and become visible at commit, so a transaction that
commits after a later one leaves a gap for a while: the reader asks for the missing
ids again until ``GAP_SECONDS`` have passed (an id that never shows up belonged to a
rolled-back transaction).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Max, Q
from django.utils import timezone

from . import (
    RESYNC_ALL,
    Change,
    ChangeFeed,
    Subscriber,
    count,
    flag,
    migrating,
    name,
    publish_on_commit,
    seconds,
)
from .transport import Backoff, Subscribers, Worker, decode, encode, visible

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("django_rt")

#: Rows read in one query; more are read right after.
READ_BATCH = 500
#: The most missing ids a reader waits for at once (after a burst of rollbacks).
MAX_GAPS = 1000
#: Longest wait for a notification in one call, so that a stopping reader ends soon.
LISTEN_SLICE = 0.25


class DatabaseFeed(ChangeFeed):
    """Several processes, one database, no other server."""

    location_help = "a database alias of DATABASES (default: 'default')"
    options_spec = {
        # How often a reader looks for new rows.
        "POLL_SECONDS": seconds(0.1),
        # On PostgreSQL (with psycopg 3): wake readers with LISTEN/NOTIFY ...
        "LISTEN": flag(True),
        # ... and then look only this often in case a notification was missed.
        "LISTEN_POLL_SECONDS": seconds(2.0),
        "CHANNEL": name("django_rt_outbox"),
        # Rows older than this, or beyond the newest MAX_ROWS, are deleted ...
        "MAX_AGE_SECONDS": seconds(600),
        "MAX_ROWS": count(10_000),
        # ... by every reader, this often.
        "PRUNE_SECONDS": seconds(60),
        # How long a reader waits for the row of a transaction that committed late.
        "GAP_SECONDS": seconds(60),
        # Longest wait between two tries of a database that does not answer.
        "RETRY_MAX_SECONDS": seconds(5),
    }

    def __init__(self, location: str = "", options: Mapping[str, Any] | None = None) -> None:
        super().__init__(location, options)
        self.alias = location or DEFAULT_DB_ALIAS
        #: Marks the rows this instance writes: its reader skips them.
        self.origin = uuid.uuid4().hex
        #: Set once the reader has started (from the newest row at that time) and read.
        self.ready = threading.Event()
        self._subscribers = Subscribers(on_first=self._start, on_last=self._stop)
        self._reader = Worker("django-rt database feed", self._read)

    @classmethod
    def check_settings(cls, location: str, options: Mapping[str, Any]) -> list[str]:
        problems = super().check_settings(location, options)
        if location and location not in settings.DATABASES:
            problems.append(
                f"DJANGO_RT['CHANGE_FEED']['LOCATION'] {location!r} is not a database alias; "
                f"DATABASES has {', '.join(map(repr, settings.DATABASES))}."
            )
        return problems

    # writing ------------------------------------------------------------------------

    def record(self, changes: Sequence[Change], using: str) -> None:
        """Write the batch in the current transaction; deliver it to this process's
        subscribers once the transaction commits."""
        changes = visible(changes)
        if not changes:
            return
        if using != self.alias:  # another database's transaction: publish after it
            publish_on_commit(self.publish, changes, using)
            return
        if migrating.is_set() and not self._outbox_exists():
            # The migrate that creates the outbox writes before it exists (SQLite rebuilds
            # a table to alter it, a data migration saves rows): no reader can miss them.
            return
        self._write(changes)
        publish_on_commit(self._subscribers.deliver, changes, using)

    def _outbox_exists(self) -> bool:
        from ..models import OutboxEntry

        tables = connections[self.alias].introspection.table_names()
        return OutboxEntry._meta.db_table in tables

    def publish(self, changes: Sequence[Change]) -> None:
        """Write the batch now (its own transaction, unless one is open on the feed's
        database) and deliver it to this process's subscribers."""
        changes = visible(changes)
        if not changes:
            return
        try:
            self._write(changes)
        except DatabaseError:
            logger.exception("django-rt: the outbox cannot be written; other processes miss this")
        self._subscribers.deliver(changes)

    def _write(self, changes: Sequence[Change]) -> None:
        from ..models import OutboxEntry

        # bulk_create sends no signal: the outbox's own rows must not be published.
        OutboxEntry.objects.using(self.alias).bulk_create(
            [OutboxEntry(created=timezone.now(), origin=self.origin, changes=encode(changes))]
        )
        connection = connections[self.alias]
        if connection.vendor == "postgresql" and self.options["LISTEN"]:
            # Sent at commit, and not at all on rollback; one per transaction.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, '')", [self.options["CHANNEL"]])

    def prune(self) -> int:
        """Delete the rows older than ``MAX_AGE_SECONDS`` or beyond the newest
        ``MAX_ROWS`` (never the newest row: a reader's position stays in the table).
        Returns how many were deleted."""
        from ..models import OutboxEntry

        rows = OutboxEntry.objects.using(self.alias)
        newest = rows.aggregate(newest=Max("id"))["newest"]
        if newest is None:
            return 0
        bound = newest - self.options["MAX_ROWS"]
        cutoff = timezone.now() - timedelta(seconds=self.options["MAX_AGE_SECONDS"])
        old = rows.filter(created__lt=cutoff).aggregate(old=Max("id"))["old"]
        if old is not None:
            bound = max(bound, old)
        bound = min(bound, newest - 1)
        if not rows.filter(id__lte=bound).exists():
            return 0
        # A raw DELETE: QuerySet.delete() would send post_delete for every row.
        connection = connections[self.alias]
        table = connection.ops.quote_name(OutboxEntry._meta.db_table)
        column = connection.ops.quote_name("id")
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE {column} <= %s", [bound])
            return int(cursor.rowcount)

    # reading ------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(subscriber)

    def _start(self) -> None:
        self.ready.clear()
        self._reader.start()

    def _stop(self) -> None:
        self._reader.stop(timeout=0)  # the unsubscriber may be an event loop: no wait

    def close(self) -> None:
        self._reader.stop()

    def _read(self, stop: threading.Event) -> None:
        backoff = Backoff(self.options["RETRY_MAX_SECONDS"])
        position: _Position | None = None
        wakeup: _Wakeup | None = None
        listen_at = 0.0  # when to try LISTEN (again)
        listen_backoff = Backoff(self.options["RETRY_MAX_SECONDS"], first=0.5)
        prune_at = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    if position is None:
                        position = _Position(self._newest())
                    while self._poll(position) and not stop.is_set():
                        pass
                    self.ready.set()
                    if time.monotonic() >= prune_at:
                        prune_at = time.monotonic() + self.options["PRUNE_SECONDS"]
                        self.prune()
                    backoff.reset()
                except DatabaseError as error:
                    logger.warning("django-rt: the outbox cannot be read (%s); retrying", error)
                    connections[self.alias].close()
                    stop.wait(backoff.next())
                    continue
                if wakeup is None and time.monotonic() >= listen_at and self._listens():
                    try:
                        wakeup = _Wakeup(self.alias, self.options["CHANNEL"])
                        listen_backoff.reset()
                        continue  # look once more: a notification may have gone by
                    except Exception as error:
                        logger.warning("django-rt: LISTEN failed (%s); polling", error)
                        listen_at = time.monotonic() + listen_backoff.next()
                if wakeup is None:
                    stop.wait(self.options["POLL_SECONDS"])
                    continue
                try:
                    wakeup.wait(stop, self.options["LISTEN_POLL_SECONDS"])
                except Exception as error:
                    logger.warning("django-rt: the LISTEN connection failed (%s); polling", error)
                    wakeup.close()
                    wakeup = None
                    listen_at = time.monotonic() + listen_backoff.next()
        finally:
            if wakeup is not None:
                wakeup.close()
            connections[self.alias].close()

    def _listens(self) -> bool:
        if not self.options["LISTEN"] or connections[self.alias].vendor != "postgresql":
            return False
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return False
        return True

    def _rows(self) -> Any:
        from ..models import OutboxEntry

        return OutboxEntry.objects.using(self.alias)

    def _newest(self) -> int:
        newest: int | None = self._rows().aggregate(newest=Max("id"))["newest"]
        return newest or 0

    def _poll(self, position: _Position) -> bool:
        """Deliver the rows after ``position`` (and those that filled a gap); True
        when there may be more to read at once."""
        wanted = Q(id__gt=position.last)
        if position.gaps:
            wanted |= Q(id__in=list(position.gaps))
        rows: list[tuple[int, str, str]] = list(
            self._rows()
            .filter(wanted)
            .order_by("id")
            .values_list("id", "origin", "changes")[:READ_BATCH]
        )
        batch: list[Change] = []
        for row_id, origin, text in rows:
            if row_id > position.last:
                if row_id > position.last + 1 and self._pruned_past(position.last):
                    batch.insert(0, RESYNC_ALL)
                position.skip(range(position.last + 1, row_id), self.options["GAP_SECONDS"])
                position.last = row_id
            else:
                position.gaps.pop(row_id, None)
            if origin != self.origin:
                try:
                    batch += decode(text)
                except ValueError:
                    logger.exception("django-rt: outbox entry %s is not a batch", row_id)
        position.expire()
        if batch:
            self._subscribers.deliver(batch)
        return len(rows) == READ_BATCH

    def _pruned_past(self, last: int) -> bool:
        """Whether the rows right after ``last`` may have been pruned unread: pruning
        keeps the newest row, so a reader that kept up finds its own row still there."""
        return bool(last) and not self._rows().filter(id__lte=last).exists()


class _Position:
    """Where a reader is: the newest id it saw, and the ids below it that it waits for
    (id -> until when)."""

    def __init__(self, last: int) -> None:
        self.last = last
        self.gaps: dict[int, float] = {}

    def skip(self, ids: range, patience: float) -> None:
        until = time.monotonic() + patience
        for missing in ids[-MAX_GAPS:]:
            self.gaps[missing] = until
        if len(self.gaps) > MAX_GAPS:
            for missing in sorted(self.gaps)[: len(self.gaps) - MAX_GAPS]:
                del self.gaps[missing]

    def expire(self) -> None:
        now = time.monotonic()
        for missing in [key for key, until in self.gaps.items() if until <= now]:
            del self.gaps[missing]


class _Wakeup:
    """A PostgreSQL connection that LISTENs on the outbox's channel."""

    def __init__(self, alias: str, channel: str) -> None:
        from psycopg import sql

        from .postgres import connect

        self.connection: psycopg.Connection[Any] = connect(alias, "django-rt outbox reader")
        try:
            self.connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except Exception:
            self.connection.close()
            raise

    def wait(self, stop: threading.Event, timeout: float) -> None:
        """Return at the first notification, when ``stop`` is set, or after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            woken = any(
                True
                for _ in self.connection.notifies(timeout=min(left, LISTEN_SLICE), stop_after=1)
            )
            if woken:
                # Several commits may have notified: one look at the table serves them.
                for _ in self.connection.notifies(timeout=0):
                    pass
                return

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()
