"""The outbox feed (``DatabaseFeed``) on the test database (SQLite, a file; PostgreSQL
with ``--ds=tests.settings_postgres``): a batch is written in the transaction that made
it, and read by every other feed instance (here: a second instance, and a second OS
process)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from django_rt.changes import DELETE, RESYNC_ALL, Change, get_feed
from django_rt.changes.database import DatabaseFeed, _Position
from django_rt.changes.transport import encode
from django_rt.models import OutboxEntry

from .test_feeds_support import Inbox, run_process, wait_until
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]

BACKEND = "django_rt.changes.database.DatabaseFeed"


@pytest.fixture
def feeds(transactional_db):
    """Feed instances (each as if in a process of its own), closed after the test."""
    made: list[DatabaseFeed] = []

    def make(**options) -> DatabaseFeed:
        feed = DatabaseFeed("default", options)
        made.append(feed)
        return feed

    yield make
    for feed in made:
        feed.close()


def listening(feed: DatabaseFeed) -> Inbox:
    inbox = Inbox()
    feed.subscribe(inbox)
    assert feed.ready.wait(20), "the reader did not start"
    return inbox


def entry(pk: object, kind: str = "save") -> Change:
    return Change("testapp.entry", str(pk), kind)


def test_a_committed_batch_reaches_the_other_instance(feeds):
    writer, reader = feeds(), feeds()
    inbox = listening(reader)
    with transaction.atomic():
        writer.record([entry(1), entry(2, DELETE)], "default")
    assert inbox.wait_until_has(entry(1), entry(2, DELETE))
    assert inbox.batches[0] == [entry(1), entry(2, DELETE)]  # one batch stays one


def test_a_rolled_back_transaction_publishes_nothing(feeds):
    writer, reader = feeds(), feeds()
    inbox = listening(reader)
    with transaction.atomic():
        writer.record([entry("rolled back")], "default")
        transaction.set_rollback(True)
    with transaction.atomic():
        writer.record([entry("committed")], "default")
    # Rows are read in id order: the committed one comes after any that was written.
    assert inbox.wait_until_has(entry("committed"))
    assert entry("rolled back") not in inbox.changes
    assert OutboxEntry.objects.count() == 1


def test_the_writer_delivers_to_its_own_process_at_commit_and_only_once(feeds):
    writer, other = feeds(), feeds()
    own = listening(writer)
    with transaction.atomic():
        writer.record([entry("mine")], "default")
        assert own.changes == []  # nothing before the commit
    assert own.changes == [entry("mine")]  # at commit, in the committing thread
    other.publish([entry("theirs")])
    assert own.wait_until_has(entry("theirs"))  # the reader has passed "mine" by now
    assert own.changes.count(entry("mine")) == 1


def test_writes_through_the_orm_reach_the_other_instance(feeds):
    reader = feeds()
    inbox = listening(reader)
    get_feed.cache_clear()
    try:
        with override_settings(DJANGO_RT={"CHANGE_FEED": {"BACKEND": BACKEND}}):
            row = Entry.objects.create(name="saved")
            pk = row.pk
            with transaction.atomic():
                Entry.objects.create(name="never")
                transaction.set_rollback(True)
            Entry.objects.filter(pk=pk).update(done=True)  # no signal: its table
            row.delete()
            assert inbox.wait_until_has(entry(pk), Change("testapp.entry", ""), entry(pk, DELETE))
            assert all(change.pk in ("", str(pk)) for change in inbox.changes)
    finally:
        get_feed().close()
        get_feed.cache_clear()


def test_a_second_process_writing_through_the_orm(feeds):
    reader = feeds()
    inbox = listening(reader)
    printed = run_process(
        """
        from tests.testapp.models import Entry
        print(Entry.objects.create(name="from another process").pk)
        """,
        {"BACKEND": BACKEND},
    )
    assert inbox.wait_until_has(entry(int(printed)))


def test_a_reader_that_starts_skips_the_backlog(feeds):
    writer = feeds()
    writer.publish([entry("old")])
    reader = feeds()
    inbox = listening(reader)
    writer.publish([entry("new")])
    assert inbox.wait_until_has(entry("new"))
    assert entry("old") not in inbox.changes


def _outbox(pk: int, change: Change) -> OutboxEntry:
    return OutboxEntry(id=pk, created=timezone.now(), origin="elsewhere", changes=encode([change]))


def test_a_transaction_that_commits_late_is_not_missed(feeds):
    """Ids are handed out at insert: a row may become visible after a later one."""
    reader = feeds(POLL_SECONDS=0.02, LISTEN=False)  # no NOTIFY for these rows
    inbox = listening(reader)
    last = OutboxEntry.objects.order_by("id").values_list("id", flat=True).last() or 0
    # As if the transaction holding id last+1 committed after the one holding last+2.
    OutboxEntry.objects.bulk_create([_outbox(last + 2, entry("second"))])
    assert inbox.wait_until_has(entry("second"))
    OutboxEntry.objects.bulk_create([_outbox(last + 1, entry("first, late"))])
    assert inbox.wait_until_has(entry("first, late"))
    assert RESYNC_ALL not in inbox.changes
    _reset_sequence()


def _reset_sequence() -> None:
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [OutboxEntry]):
            cursor.execute(sql)


def test_pruning_by_count_and_by_age_keeps_the_newest(feeds):
    writer = feeds(MAX_ROWS=3, MAX_AGE_SECONDS=3600)
    for index in range(10):
        writer.publish([entry(index)])
    assert writer.prune() == 7
    assert list(OutboxEntry.objects.values_list("changes", flat=True).order_by("id")) == [
        encode([entry(index)]) for index in (7, 8, 9)
    ]
    OutboxEntry.objects.update(created=timezone.now() - timedelta(hours=2))
    assert writer.prune() == 2  # all too old, but the newest stays: readers' position
    assert OutboxEntry.objects.count() == 1
    assert writer.prune() == 0


def test_readers_prune_by_themselves(feeds):
    writer = feeds()
    for index in range(6):
        writer.publish([entry(index)])
    reader = feeds(MAX_ROWS=2, PRUNE_SECONDS=0.05)
    listening(reader)
    assert wait_until(lambda: OutboxEntry.objects.count() <= 2)


def test_a_reader_left_behind_by_pruning_receives_the_resync_signal(feeds):
    writer = feeds(MAX_ROWS=2)
    writer.publish([entry("start")])
    reader = feeds(POLL_SECONDS=3600, PRUNE_SECONDS=3600, LISTEN=False)  # reads once
    inbox = listening(reader)
    position = _Position(OutboxEntry.objects.order_by("-id").values_list("id", flat=True)[0])
    for index in range(5):
        writer.publish([entry(index)])
    writer.prune()  # rows 0, 1 and 2 are gone before the reader read them
    reader._poll(position)
    assert inbox.changes[0] == RESYNC_ALL
    assert inbox.changes[1:] == [entry(3), entry(4)]


def test_notifications_wake_the_readers_on_postgresql(feeds):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY: PostgreSQL only (--ds=tests.settings_postgres)")
    # Polls once an hour: only a notification can bring the change in time.
    reader = feeds(POLL_SECONDS=3600, LISTEN_POLL_SECONDS=3600)
    inbox = listening(reader)
    assert wait_until(lambda: _listeners("django-rt outbox reader") == 1)
    writer = feeds()
    with transaction.atomic():
        writer.record([entry("notified")], "default")
    assert inbox.wait_until_has(entry("notified"))


def _listeners(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database()",
            [application_name],
        )
        return int(cursor.fetchone()[0])


def test_the_outbox_migration_applies_and_reverts():
    call_command("migrate", "django_rt", "zero", verbosity=0)
    assert "django_rt_outbox" not in connection.introspection.table_names()
    call_command("migrate", "django_rt", verbosity=0)
    assert "django_rt_outbox" in connection.introspection.table_names()


def test_the_outbox_model_has_its_migration():
    call_command("makemigrations", "django_rt", check=True, dry_run=True, verbosity=0)


def test_django_rt_messages_travel_but_its_outbox_rows_do_not(feeds):
    """A session's end and a broadcast are messages of django-rt's own labels that name
    no model: they reach other processes; the outbox's own rows never do."""
    from django_rt.broadcasting import BROADCAST_LABEL
    from django_rt.sessions import SESSION_LABEL

    writer, reader = feeds(), feeds()
    inbox = listening(reader)
    messages = [
        Change(SESSION_LABEL, "hash-of-a-key", DELETE),
        Change(BROADCAST_LABEL, '{"to":"group:g","cmds":[]}', "broadcast"),
    ]
    writer.publish([*messages, Change("django_rt.outboxentry", "1")])
    assert inbox.wait_until_has(*messages)
    assert all(change.model != "django_rt.outboxentry" for change in inbox.changes)
