"""The Redis Streams feed (``RedisFeed``) on real servers: the machine's Redis (database
15, a stream key of each test's own) and, for outages, a ``redis-server`` that the test
starts, stops and starts again."""

from __future__ import annotations

import shutil
import threading
import uuid

import pytest

from django_rt.changes import RESYNC_ALL, Change

from .requirements import need
from .test_feeds_support import Inbox, RedisServer, redis_answers, run_process, wait_until

redis = pytest.importorskip("redis")

from django_rt.changes.redis import READ_COUNT, RedisFeed  # noqa: E402

URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def stream():
    """A stream key of the test's own on the machine's Redis, deleted after it."""
    need("redis", redis_answers(URL), f"no Redis answers at {URL}")
    key = f"django_rt:test:{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(URL).delete(key)


@pytest.fixture
def server():
    """A redis-server of the test's own, that it may stop."""
    need("redis", shutil.which("redis-server") is not None, "no redis-server binary")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def feeds():
    made: list[RedisFeed] = []

    def make(url: str, stream: str, **options) -> RedisFeed:
        options.setdefault("RETRY_MAX_SECONDS", 0.5)
        feed = RedisFeed(url, {"STREAM": stream, **options})
        made.append(feed)
        return feed

    yield make
    for feed in made:
        feed.close()


def listening(feed: RedisFeed) -> Inbox:
    inbox = Inbox()
    feed.subscribe(inbox)
    assert feed.ready.wait(20), "the reader did not start"
    return inbox


def batch(index: int) -> list[Change]:
    return [Change("testapp.entry", str(index)), Change("testapp.author", str(index))]


def batches_in(inbox: Inbox) -> list[list[Change]]:
    """What arrived, as the batches published (a delivery may hold several)."""
    changes = [change for change in inbox.changes if change != RESYNC_ALL]
    return [changes[i : i + 2] for i in range(0, len(changes), 2)]


def test_one_entry_per_batch_reaches_the_other_instance_in_order(feeds, stream):
    writer, reader = feeds(URL, stream), feeds(URL, stream)
    own, inbox = listening(writer), listening(reader)
    for index in range(5):
        writer.publish(batch(index))
    assert own.batches == [batch(index) for index in range(5)]  # at once, in this process
    assert inbox.wait_for(lambda changes: len(changes) == 10)
    assert batches_in(inbox) == [batch(index) for index in range(5)]
    assert redis.Redis.from_url(URL).xlen(stream) == 5  # one entry per batch
    other = feeds(URL, stream)
    other.publish(batch(99))
    assert own.wait_until_has(*batch(99))
    assert len(own.changes) == 12  # its own entries are not delivered a second time


def test_a_second_process_publishes(feeds, stream):
    reader = feeds(URL, stream)
    inbox = listening(reader)
    feed = {"BACKEND": "django_rt.changes.redis.RedisFeed", "LOCATION": URL}
    feed["OPTIONS"] = {"STREAM": stream}
    run_process(
        """
        from django_rt.changes import Change, get_feed
        get_feed().publish([Change("testapp.entry", "from a process")])
        # It exits at once: what the sender holds is sent at exit.
        """,
        feed,
    )
    assert inbox.wait_until_has(Change("testapp.entry", "from a process"))


@pytest.mark.django_db(transaction=True)
def test_a_second_process_writes_through_the_orm(feeds, stream):
    reader = feeds(URL, stream)
    inbox = listening(reader)
    feed = {
        "BACKEND": "django_rt.changes.redis.RedisFeed",
        "LOCATION": URL,
        "OPTIONS": {"STREAM": stream},
    }
    printed = run_process(
        """
        from tests.testapp.models import Entry
        print(Entry.objects.create(name="from another process").pk)
        """,
        feed,
    )
    assert inbox.wait_until_has(Change("testapp.entry", printed.strip()))


def test_batches_published_while_redis_is_down_arrive_in_order(feeds, server):
    writer = feeds(server.url, "changes")
    reader = feeds(server.url, "changes")
    own, inbox = listening(writer), listening(reader)
    writer.publish(batch(0))
    assert inbox.wait_until_has(*batch(0))
    server.stop()
    for index in range(1, 6):
        writer.publish(batch(index))  # buffered; the committing thread does not wait
    assert own.batches == [batch(index) for index in range(6)]
    server.start()  # empty: no persistence
    assert inbox.wait_for(lambda changes: len(changes) >= 12)
    assert batches_in(inbox) == [batch(index) for index in range(6)]
    # Nothing of this writer was lost; another process may have written and exited
    # meanwhile with its batches unsent: the reader's pages resync after the outage.
    assert RESYNC_ALL in inbox.changes


def test_a_buffer_that_overflows_sends_the_resync_signal(feeds, server):
    writer = feeds(server.url, "changes", BUFFER=2)
    reader = feeds(server.url, "changes")
    inbox = listening(reader)
    server.stop()
    for index in range(5):
        writer.publish(batch(index))  # 0 and 1, then 2 and 3 are dropped
    server.start()
    assert inbox.wait_until_has(RESYNC_ALL, *batch(4))
    changes = inbox.changes
    assert changes.index(RESYNC_ALL) < changes.index(batch(4)[0])
    # Dropped (the sender may have been sending one buffer's worth when Redis went).
    assert sum(batch(index)[0] in changes for index in range(4)) <= 2


def _gate(feed: RedisFeed, fail_once: bool) -> tuple[threading.Event, threading.Event]:
    """Hold the reader (as if it could not reach Redis) until the gate is set; the
    other event tells that it got there."""
    gate, reached = threading.Event(), threading.Event()
    client = feed._client
    failed = []

    def gated(role: str):
        if role == "reader":
            reached.set()
            gate.wait()
            if fail_once and not failed:
                failed.append(True)
                raise redis.ConnectionError("the test cut the connection")
        return client(role)

    feed._client = gated  # type: ignore[method-assign]
    return gate, reached


@pytest.mark.parametrize(
    ("entries", "kept", "fail_once"),
    [
        (20, 5, True),  # noticed when the reader reconnects
        (READ_COUNT * 3, READ_COUNT + 50, False),  # noticed by a reader that lags behind
    ],
)
def test_a_stream_trimmed_past_a_reader_sends_the_resync_signal(
    feeds, stream, entries, kept, fail_once
):
    writer, reader = feeds(URL, stream), feeds(URL, stream)
    inbox = listening(reader)
    writer.publish(batch(0))
    assert inbox.wait_until_has(*batch(0))
    gate, reached = _gate(reader, fail_once)
    writer.publish(batch(1))  # ends the reader's XREAD, if it is in one
    assert reached.wait(20)  # held there, having read entry 0 or entry 1
    for index in range(2, entries):
        writer.publish(batch(index))
    assert writer.flush(20)
    redis.Redis.from_url(URL).xtrim(stream, maxlen=kept, approximate=False)
    gate.set()
    assert inbox.wait_until_has(RESYNC_ALL, *batch(entries - 1))


def test_a_restarted_process_does_not_replay_the_stream(feeds, stream):
    writer = feeds(URL, stream)
    for index in range(3):
        writer.publish(batch(index))
    assert writer.flush(20)
    restarted = feeds(URL, stream)
    inbox = listening(restarted)
    writer.publish(batch(3))
    assert inbox.wait_until_has(*batch(3))
    assert batches_in(inbox) == [batch(3)]


def test_a_reader_that_starts_while_redis_is_down_resyncs_once_it_is_up(feeds, server, caplog):
    server.stop()
    reader = feeds(server.url, "changes")
    inbox = Inbox()
    reader.subscribe(inbox)
    assert wait_until(lambda: "Redis unreachable" in caplog.text)  # it tried, and failed
    server.start()
    assert reader.ready.wait(20)
    assert inbox.wait_until_has(RESYNC_ALL)
