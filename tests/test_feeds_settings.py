"""The change feed interface and its setting: ``DJANGO_RT['CHANGE_FEED']`` like
``CACHES``, its checks (E001, the deploy warning W004), ``get_feed()``, the ``record``
hook, the resync signal and the batch encoding."""

from __future__ import annotations

import contextlib

import pytest
from django.core import checks
from django.db import connection, transaction
from django.test import TestCase, override_settings

from django_rt.changes import (
    DELETE,
    RESYNC,
    RESYNC_ALL,
    SAVE,
    Change,
    ChangeFeed,
    feed_problems,
    get_feed,
    needs_resync,
)
from django_rt.changes.database import DatabaseFeed
from django_rt.changes.memory import MemoryFeed
from django_rt.changes.redis import RedisFeed
from django_rt.changes.transport import decode, encode
from django_rt.checks import check_feed_deploy, check_settings

from .test_feeds_support import Inbox

MEMORY = "django_rt.changes.memory.MemoryFeed"
DATABASE = "django_rt.changes.database.DatabaseFeed"
REDIS = "django_rt.changes.redis.RedisFeed"
POSTGRES = "django_rt.changes.postgres.PostgresFeed"


@pytest.fixture
def fresh_feed():
    """``get_feed()`` built anew for the test, and forgotten after it."""
    get_feed.cache_clear()
    yield
    get_feed().close()
    get_feed.cache_clear()


# the setting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        MEMORY,
        {"BACKEND": MEMORY},
        {"BACKEND": DATABASE, "OPTIONS": {"POLL_SECONDS": 0.5, "MAX_ROWS": 50}},
        {"BACKEND": DATABASE, "LOCATION": "default"},
        {"BACKEND": REDIS, "LOCATION": "redis://127.0.0.1:6379/0", "OPTIONS": {"MAXLEN": 100}},
        {"BACKEND": REDIS, "LOCATION": "redis://h/1", "OPTIONS": {"CONNECTION_OPTIONS": {}}},
    ],
)
def test_valid_feed_settings(value):
    assert feed_problems(value) == []
    with override_settings(DJANGO_RT={"CHANGE_FEED": value}):
        assert check_settings() == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "must be a ChangeFeed's dotted path or a dict with 'BACKEND', 'LOCATION', 'OPTIONS'"),
        ({"BACKEND": MEMORY, "LOCATIONS": "x"}, "unknown key 'LOCATIONS'; known keys: BACKEND"),
        ({"LOCATION": "x"}, "DJANGO_RT['CHANGE_FEED']['BACKEND'] must be a dotted path, not None"),
        ("no.such.Feed", "DJANGO_RT['CHANGE_FEED'] cannot be imported: 'no.such.Feed'"),
        ({"BACKEND": "django_rt.conf.Settings"}, "'django_rt.conf.Settings' is not a ChangeFeed"),
        ({"BACKEND": "django_rt.changes.SAVE"}, "is not a ChangeFeed subclass"),
        ({"BACKEND": REDIS}, "needs a 'LOCATION' for RedisFeed: a redis:// (or rediss://"),
        ({"BACKEND": MEMORY, "LOCATION": 3}, "['LOCATION'] must be a string, not 3."),
        ({"BACKEND": MEMORY, "OPTIONS": [1]}, "['OPTIONS'] must be a dict, not [1]."),
        (
            {"BACKEND": DATABASE, "OPTIONS": {"POLL_SECONDS": -1}},
            "['OPTIONS']['POLL_SECONDS'] must be a positive number of seconds, not -1.",
        ),
        (
            {"BACKEND": DATABASE, "OPTIONS": {"MAX_ROWS": 1.5}},
            "['OPTIONS']['MAX_ROWS'] must be a positive integer, not 1.5.",
        ),
        (
            {"BACKEND": DATABASE, "OPTIONS": {"LISTEN": "yes"}},
            "['OPTIONS']['LISTEN'] must be True or False, not 'yes'.",
        ),
        (
            {"BACKEND": DATABASE, "OPTIONS": {"POLL": 1}},
            "['OPTIONS'] has an unknown key 'POLL' for DatabaseFeed; known keys: CHANNEL,",
        ),
        (
            {"BACKEND": MEMORY, "OPTIONS": {"X": 1}},
            "unknown key 'X' for MemoryFeed; known keys: none.",
        ),
        ({"BACKEND": DATABASE, "LOCATION": "other"}, "'other' is not a database alias"),
        (
            {"BACKEND": REDIS, "LOCATION": "redis://h", "OPTIONS": {"STREAM": ""}},
            "['OPTIONS']['STREAM'] must be a non-empty string, not ''.",
        ),
        (
            {"BACKEND": REDIS, "LOCATION": "redis://h", "OPTIONS": {"CONNECTION_OPTIONS": 1}},
            "['OPTIONS']['CONNECTION_OPTIONS'] must be a dict with string keys, not 1.",
        ),
    ],
)
def test_bad_feed_settings(value, message):
    with override_settings(DJANGO_RT={"CHANGE_FEED": value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert "DJANGO_RT['CHANGE_FEED']" in error.msg
    assert message in error.msg


def test_every_feed_problem_is_reported():
    value = {"BACKEND": REDIS, "NOPE": 1, "OPTIONS": {"MAXLEN": 0, "BUFFER": "x"}}
    with override_settings(DJANGO_RT={"CHANGE_FEED": value}):
        messages = check_settings()
    assert [m.id for m in messages] == ["django_rt.E001"] * 4


def test_postgres_feed_needs_postgresql():
    problems = feed_problems({"BACKEND": POSTGRES})
    if connection.vendor == "postgresql":
        assert problems == []
    else:
        (problem,) = problems
        assert "PostgresFeed needs PostgreSQL, and database 'default' is" in problem


# get_feed -------------------------------------------------------------------------


def test_get_feed_builds_the_feed_once_with_location_and_options(fresh_feed):
    value = {"BACKEND": DATABASE, "LOCATION": "default", "OPTIONS": {"POLL_SECONDS": 0.5}}
    with override_settings(DJANGO_RT={"CHANGE_FEED": value}):
        feed = get_feed()
        assert get_feed() is feed
    assert isinstance(feed, DatabaseFeed)
    assert feed.location == "default"
    assert feed.options["POLL_SECONDS"] == 0.5
    assert feed.options["MAX_ROWS"] == 10_000  # the others keep their defaults


def test_threads_asking_first_at_once_share_one_feed(fresh_feed):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        feeds = list(pool.map(lambda _: get_feed(), range(32)))
    assert all(feed is feeds[0] for feed in feeds)


def test_a_dotted_path_still_names_the_feed(fresh_feed):
    with override_settings(DJANGO_RT={"CHANGE_FEED": MEMORY}):
        assert type(get_feed()) is MemoryFeed


def test_backends_take_location_and_options():
    assert MemoryFeed("ignored", {"ignored": True}).location == "ignored"
    feed = RedisFeed("redis://127.0.0.1:1/0", {"MAXLEN": 5})  # connects to nothing yet
    assert feed.options["MAXLEN"] == 5 and feed.options["BUFFER"] == 1000
    feed.close()


# the record hook ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_record_publishes_after_commit_and_never_on_rollback():
    feed = MemoryFeed()
    inbox = Inbox()
    feed.subscribe(inbox)
    with transaction.atomic():
        feed.record([Change("testapp.entry", "1")], "default")
        transaction.set_rollback(True)
    with transaction.atomic():
        feed.record([Change("testapp.entry", "2")], "default")
        assert inbox.changes == []  # not before the commit
    assert inbox.changes == [Change("testapp.entry", "2")]


def _entry(pk: int) -> Change:
    return Change("testapp.entry", str(pk))


@pytest.mark.django_db(transaction=True)
def test_a_transactions_statements_publish_one_batch():
    feed = MemoryFeed()
    inbox = Inbox()
    feed.subscribe(inbox)
    with transaction.atomic():
        for pk in (1, 2, 3):
            feed.record([_entry(pk)], "default")
    assert inbox.batches == [[_entry(1), _entry(2), _entry(3)]]
    feed.record([_entry(4)], "default")  # autocommit: at once, alone
    assert inbox.batches[1:] == [[_entry(4)]]


@pytest.mark.django_db(transaction=True)
def test_the_orms_writes_in_one_transaction_reach_the_feed_as_one_batch(fresh_feed):
    from .testapp.models import Entry

    with override_settings(DJANGO_RT={"CHANGE_FEED": MEMORY}):
        inbox = Inbox()
        get_feed().subscribe(inbox)
        old = Entry.objects.create(name="old")
        old_pk = str(old.pk)
        inbox.batches.clear()
        with transaction.atomic():
            new = Entry.objects.create(name="new")
            old.delete()  # in a block of its own, atomic(savepoint=False)
    # The row's delete is announced by its post_delete alone, as a save by its post_save.
    assert inbox.batches == [
        [Change("testapp.entry", str(new.pk)), Change("testapp.entry", old_pk, DELETE)]
    ]


@pytest.mark.django_db(transaction=True)
def test_a_delete_announces_the_tables_whose_rows_no_post_delete_names(fresh_feed):
    """Deleting an author sets its entries' author to NULL (an UPDATE of unknown rows)
    and deletes its link rows of no model of its own: those tables are announced whole;
    the deleted rows, each by its own post_delete."""
    from .testapp.models import Author, Entry, Tag

    with override_settings(DJANGO_RT={"CHANGE_FEED": MEMORY}):
        inbox = Inbox()
        get_feed().subscribe(inbox)
        author = Author.objects.create(name="Ann")
        entry = Entry.objects.create(name="e", author=author)
        tag = Tag.objects.create(name="t")
        tag.entries.add(entry)
        author_pk, entry_pk = str(author.pk), str(entry.pk)
        inbox.batches.clear()
        author.delete()
        entry.delete()
    changes = inbox.changes
    assert Change("testapp.entry", "") in changes  # the SET_NULL update
    assert Change("testapp.author", author_pk, DELETE) in changes
    assert Change("testapp.author", "") not in changes
    assert Change("testapp.entry", entry_pk, DELETE) in changes
    assert Change("testapp.tag_entries", "") in changes  # the link rows


@pytest.mark.django_db(transaction=True)
def test_a_querysets_delete_announces_its_rows_alone(fresh_feed):
    from .testapp.models import Entry

    with override_settings(DJANGO_RT={"CHANGE_FEED": MEMORY}):
        inbox = Inbox()
        get_feed().subscribe(inbox)
        pks = [str(Entry.objects.create(name=f"e{i}").pk) for i in range(3)]
        inbox.batches.clear()
        Entry.objects.filter(name__in=["e0", "e2"]).delete()
    assert len(inbox.batches) == 1  # the collector's one transaction
    assert sorted(inbox.changes, key=lambda change: change.pk) == [
        Change("testapp.entry", pks[0], DELETE),
        Change("testapp.entry", pks[2], DELETE),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_drops_its_own_changes_only():
    feed = MemoryFeed()
    inbox = Inbox()
    feed.subscribe(inbox)
    with transaction.atomic():
        feed.record([_entry(1)], "default")
        with contextlib.suppress(RuntimeError), transaction.atomic():
            feed.record([_entry(2)], "default")
            raise RuntimeError("rolled back")
        feed.record([_entry(3)], "default")
        with transaction.atomic():  # released: its changes stay, in their order
            feed.record([_entry(4)], "default")
        feed.record([_entry(5)], "default")
    assert inbox.changes == [_entry(1), _entry(3), _entry(4), _entry(5)]
    assert inbox.batches[0] == [_entry(1), _entry(3)]


@pytest.mark.django_db(transaction=True)
def test_other_commit_callbacks_keep_their_place_between_batches():
    feed = MemoryFeed()
    order: list[object] = []
    feed.subscribe(lambda changes: order.append(list(changes)))
    with transaction.atomic():
        feed.record([_entry(1)], "default")
        transaction.on_commit(lambda: order.append("theirs"))
        feed.record([_entry(2)], "default")
    assert order == [[_entry(1)], "theirs", [_entry(2)]]


class TestCapturedCallbacks(TestCase):
    """In a ``TestCase`` nothing commits: ``captureOnCommitCallbacks()`` runs what the
    block registered, and only that."""

    def test_each_capture_publishes_its_own_changes(self):
        feed = MemoryFeed()
        inbox = Inbox()
        feed.subscribe(inbox)
        feed.record([_entry(1)], "default")  # before the capture: never runs here
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            feed.record([_entry(2)], "default")
            feed.record([_entry(3)], "default")
        assert len(callbacks) == 2
        assert inbox.batches == [[_entry(2), _entry(3)]]
        with self.captureOnCommitCallbacks(execute=True):
            feed.record([_entry(4)], "default")
        assert inbox.batches[1:] == [[_entry(4)]]


def test_a_failing_subscriber_costs_nothing_to_the_others():
    feed = MemoryFeed()
    inbox = Inbox()

    def failing(changes):
        raise RuntimeError("boom")

    feed.subscribe(failing)
    feed.subscribe(inbox)
    feed.publish([Change("testapp.entry", "1")])
    assert inbox.changes == [Change("testapp.entry", "1")]


def test_unsubscribe():
    feed = MemoryFeed()
    inbox = Inbox()
    unsubscribe = feed.subscribe(inbox)
    unsubscribe()
    unsubscribe()  # twice is harmless
    feed.publish([Change("testapp.entry", "1")])
    assert inbox.changes == []


# the resync signal and the wire form ------------------------------------------------


def test_the_resync_signal():
    assert (RESYNC_ALL.model, RESYNC_ALL.pk, RESYNC_ALL.kind) == ("", "", RESYNC)
    assert needs_resync([Change("testapp.entry", "1"), RESYNC_ALL])
    assert not needs_resync([Change("testapp.entry", "1", DELETE)])


def test_batches_encode_and_decode():
    batch = [Change("testapp.entry", "1"), Change("testapp.tag", "", SAVE), RESYNC_ALL]
    assert decode(encode(batch)) == batch
    for bad in ('{"a": 1}', "[[1, 2, 3]]", '[["a", "b"]]', "nope"):
        with pytest.raises(ValueError):
            decode(bad)


# W004: the in-process feed in a deployment ------------------------------------------


def test_memory_feed_warns_at_deploy():
    (warning,) = check_feed_deploy()
    assert warning.id == "django_rt.W004"
    assert isinstance(warning, checks.Warning)
    assert "MemoryFeed" in warning.msg and "only the pages served by the process" in warning.msg
    for backend in ("DatabaseFeed", "RedisFeed", "PostgresFeed", "SILENCED_SYSTEM_CHECKS"):
        assert backend in warning.hint


def test_the_deploy_warning_runs_only_with_deploy():
    assert "django_rt.W004" not in [m.id for m in checks.run_checks()]
    found = checks.run_checks(include_deployment_checks=True)
    assert "django_rt.W004" in [m.id for m in found]


@pytest.mark.parametrize(
    "value",
    [
        {"BACKEND": DATABASE},
        {"BACKEND": REDIS, "LOCATION": "redis://127.0.0.1:6379/0"},
        "no.such.Feed",  # E001's business
    ],
)
def test_other_feeds_do_not_warn(value):
    with override_settings(DJANGO_RT={"CHANGE_FEED": value}):
        assert check_feed_deploy() == []


def test_a_subclass_of_the_memory_feed_warns_too():
    with override_settings(DJANGO_RT={"CHANGE_FEED": f"{__name__}.QuietFeed"}):
        assert [m.id for m in check_feed_deploy()] == ["django_rt.W004"]


class QuietFeed(MemoryFeed):
    pass


def test_change_feed_is_abstract():
    with pytest.raises(TypeError):
        ChangeFeed()  # type: ignore[abstract]
