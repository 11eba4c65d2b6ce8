"""The Redis feed: one stream entry per committed batch, read by every process.

``publish()`` delivers the batch to this process's subscribers at once and hands it to
a sender thread, which appends it to a Redis stream (``XADD`` with ``MAXLEN ~``); the
committing thread never waits for Redis. A reader thread in each process follows the
stream (``XREAD BLOCK``) from the last id it read, and skips its own entries.

While Redis is unreachable, the sender keeps up to ``BUFFER`` batches in memory and
sends them, in order, once it is back; the reader resumes from its last id. Where
changes may have been lost, the subscribers receive
:data:`~django_rt.changes.RESYNC_ALL`: a buffer that overflowed (the sender appends a
resync entry for every other process), a stream trimmed past a reader's last id, a
reader that could not reach Redis when it started.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import RESYNC_ALL, Change, ChangeFeed, Subscriber, count, mapping, name, seconds
from .transport import Backoff, Subscribers, Worker, decode, encode, visible

logger = logging.getLogger("django_rt")

#: Entries read, or batches sent, in one round trip.
READ_COUNT = 100
SEND_COUNT = 100


def _stream_id(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


class RedisFeed(ChangeFeed):
    """Many processes on many hosts, through one Redis server."""

    location_required = True
    location_help = "a redis:// (or rediss://, unix://) URL"
    options_spec = {
        "STREAM": name("django_rt:changes"),
        # The stream keeps about this many entries (XADD MAXLEN ~).
        "MAXLEN": count(10_000),
        # Batches kept in memory while Redis is unreachable.
        "BUFFER": count(1_000),
        # How long one XREAD waits for entries.
        "BLOCK_SECONDS": seconds(2.0),
        # How long a command may take (and a connection, to open).
        "SOCKET_TIMEOUT": seconds(2.0),
        # Longest wait between two tries of a connection that failed.
        "RETRY_MAX_SECONDS": seconds(5.0),
        # More keyword arguments for redis.Redis.from_url().
        "CONNECTION_OPTIONS": mapping({}),
    }

    def __init__(self, location: str = "", options: Mapping[str, Any] | None = None) -> None:
        super().__init__(location, options)
        self.stream: str = self.options["STREAM"]
        #: Marks this instance's entries: its reader skips them.
        self.origin = uuid.uuid4().hex
        #: Set once the reader knows where it starts (the newest entry at that time).
        self.ready = threading.Event()
        self._subscribers = Subscribers(on_first=self._start, on_last=self._stop)
        self._reader = Worker("django-rt redis feed reader", self._read)
        self._sender = Worker("django-rt redis feed sender", self._send)
        self._pending: deque[tuple[int, str]] = deque()  # (sequence, encoded batch)
        self._sequence = 0
        self._overflows = 0  # batches dropped since the last resync entry was sent
        self._sent_overflows = 0
        self._sending = threading.Condition()
        self._clients: dict[str, redis_py.Redis] = {}
        _feeds.add(self)

    def _client(self, role: str) -> redis_py.Redis:
        """One client per thread role: the reader's commands block up to BLOCK_SECONDS,
        the sender's must fail fast."""
        client = self._clients.get(role)
        if client is None:
            timeout = self.options["SOCKET_TIMEOUT"]
            if role == "reader":
                timeout += self.options["BLOCK_SECONDS"]
            client = self._clients[role] = redis_py.Redis.from_url(
                self.location,
                **{
                    "socket_timeout": timeout,
                    "socket_connect_timeout": self.options["SOCKET_TIMEOUT"],
                    "decode_responses": True,
                    # The feed retries with its own backoff: one try per call.
                    "retry": Retry(NoBackoff(), 0),
                    **self.options["CONNECTION_OPTIONS"],
                },
            )
        return client

    # sending ------------------------------------------------------------------------

    def publish(self, changes: Sequence[Change]) -> None:
        changes = visible(changes)
        if not changes:
            return
        self._subscribers.deliver(changes)
        with self._sending:
            if len(self._pending) >= self.options["BUFFER"]:
                # The others will miss these: they get a resync instead, once Redis is back.
                logger.warning(
                    "django-rt: %d batches of changes could not reach Redis; other "
                    "processes will resync",
                    len(self._pending),
                )
                self._overflows += len(self._pending)
                self._pending.clear()
            self._sequence += 1
            self._pending.append((self._sequence, encode(changes)))
            self._sending.notify()
        self._sender.start()

    def _send(self, stop: threading.Event) -> None:
        backoff = Backoff(self.options["RETRY_MAX_SECONDS"])
        while True:
            with self._sending:
                while not self._pending and self._overflows == self._sent_overflows:
                    if stop.is_set():
                        return
                    self._sending.wait(0.5)
                overflows = self._overflows
                batches = list(self._pending)[:SEND_COUNT]
            entries = [encode([RESYNC_ALL])] if overflows != self._sent_overflows else []
            entries += [text for _, text in batches]
            try:
                pipeline = self._client("sender").pipeline(transaction=False)
                for text in entries:
                    pipeline.xadd(
                        self.stream,
                        {"c": text, "o": self.origin},
                        maxlen=self.options["MAXLEN"],
                        approximate=True,
                    )
                pipeline.execute()
            except redis_py.ResponseError:
                # Redis refuses these entries (the key holds another type ...): trying
                # again would not help.
                logger.exception("django-rt: Redis refused %d batches of changes", len(entries))
            except redis_py.RedisError as error:
                if stop.is_set():
                    return  # closing: what is left is lost (close() waited for it)
                logger.warning("django-rt: Redis unreachable (%s); changes are buffered", error)
                stop.wait(backoff.next())
                continue
            backoff.reset()
            with self._sending:
                self._sent_overflows = overflows
                sent = batches[-1][0] if batches else 0
                while self._pending and self._pending[0][0] <= sent:
                    self._pending.popleft()
                self._sending.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the buffered batches to be sent; whether
        they were."""
        deadline = time.monotonic() + timeout
        with self._sending:
            while self._pending or self._overflows != self._sent_overflows:
                left = deadline - time.monotonic()
                if left <= 0 or not self._sender.running:
                    return False
                self._sending.wait(min(left, 0.1))
        return True

    # reading ------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(subscriber)

    def _start(self) -> None:
        self.ready.clear()
        self._reader.start()

    def _stop(self) -> None:
        self._reader.stop(timeout=0)

    def close(self) -> None:
        """Send what is buffered (for up to ``SOCKET_TIMEOUT`` seconds), then stop."""
        self.flush(self.options["SOCKET_TIMEOUT"])
        self._reader.stop(timeout=0)
        self._sender.stop(timeout=0)
        for client in list(self._clients.values()):
            # Ends a blocking XREAD at once, instead of at the end of its BLOCK.
            client.connection_pool.disconnect()
        self._reader.stop()
        self._sender.stop()
        self._clients.clear()

    def _read(self, stop: threading.Event) -> None:
        backoff = Backoff(self.options["RETRY_MAX_SECONDS"])
        last: str | None = None
        failed = False
        while not stop.is_set():
            try:
                client = self._client("reader")
                if last is None:
                    last = self._newest(client)
                    self.ready.set()
                    if failed:  # pages may have rendered before we knew where to start
                        self._subscribers.deliver([RESYNC_ALL])
                elif failed:
                    # While Redis was away, a process may have written and exited with
                    # its batches unsent: what this process missed is unknown.
                    self._subscribers.deliver([RESYNC_ALL])
                failed = False
                backoff.reset()
                reply = client.xread(
                    {self.stream: last},
                    count=READ_COUNT,
                    block=int(self.options["BLOCK_SECONDS"] * 1000),
                )
                entries = _entries(reply)
                if not entries:
                    continue
                batch: list[Change] = []
                if len(entries) == READ_COUNT and self._trimmed_past(client, last):
                    batch.append(RESYNC_ALL)  # lagging by more than the stream keeps
                for entry_id, fields in entries:
                    last = entry_id
                    if fields.get("o") == self.origin:
                        continue
                    try:
                        batch += decode(fields.get("c", ""))
                    except ValueError:
                        logger.exception("django-rt: stream entry %s is not a batch", entry_id)
                if batch:
                    self._subscribers.deliver(batch)
            except Exception as error:
                if stop.is_set():
                    return  # close() cut the connection
                if not isinstance(error, redis_py.RedisError):
                    raise
                logger.warning("django-rt: Redis unreachable (%s); reading again soon", error)
                failed = True
                stop.wait(backoff.next())

    def _newest(self, client: redis_py.Redis) -> str:
        newest = client.xrevrange(self.stream, "+", "-", count=1)
        return str(newest[0][0]) if newest else "0-0"

    def _trimmed_past(self, client: redis_py.Redis, last: str) -> bool:
        """Whether entries after ``last`` may have been trimmed before they were read:
        the stream now starts after ``last``, and entries were removed from it (a
        stream that Redis started anew, after a restart without persistence, has lost
        none of what it holds)."""
        try:
            info: Any = client.xinfo_stream(self.stream)
        except redis_py.ResponseError:  # no stream (a Redis that restarted empty)
            return False
        first = info.get("recorded-first-entry-id") or (info.get("first-entry") or [None])[0]
        if not first or _stream_id(str(first)) <= _stream_id(last):
            return False
        added, length = info.get("entries-added"), info.get("length")
        if added is None or length is None:  # before Redis 7: cannot tell
            return True
        return int(added) > int(length)


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of an XREAD reply (RESP2: a list of pairs; RESP3: a dict)."""
    streams = reply.items() if isinstance(reply, dict) else reply or ()
    return [(str(entry_id), fields) for _, entries in streams for entry_id, fields in entries]


_feeds: weakref.WeakSet[RedisFeed] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """A process that exits right after a commit (a management command) sends what it
    has buffered first, for up to ``SOCKET_TIMEOUT`` seconds per feed."""
    for feed in list(_feeds):
        if feed._pending:
            feed.flush(feed.options["SOCKET_TIMEOUT"])
