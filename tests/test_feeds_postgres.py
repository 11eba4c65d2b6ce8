"""The PostgreSQL feed (``PostgresFeed``): triggers installed by ``migrate`` send every
INSERT, UPDATE, DELETE and TRUNCATE with NOTIFY, whoever writes (the ORM, raw SQL on a
connection of its own as ``psql`` would, another process); a listener that loses its
connection reconnects and sends the resync signal.

Runs where the test database is PostgreSQL: ``--ds=tests.settings_postgres`` (the
second run of ``./dev test``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from django_rt.changes import DELETE, RESYNC_ALL, SAVE, Change, get_feed

from .test_feeds_support import Inbox, run_process
from .testapp.models import Author, Entry, Tag

psycopg = pytest.importorskip("psycopg")

pytestmark = [pytest.mark.django_db(transaction=True)]

BACKEND = "django_rt.changes.postgres.PostgresFeed"
TRIGGERS = {"django_rt_insert", "django_rt_update", "django_rt_delete", "django_rt_truncate"}


@pytest.fixture(autouse=True)
def on_postgresql(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: run with --ds=tests.settings_postgres")


@pytest.fixture
def feeds():
    from django_rt.changes.postgres import PostgresFeed, remove_triggers

    made: list[PostgresFeed] = []

    def make(**options: Any) -> PostgresFeed:
        feed = PostgresFeed("default", options)
        feed.migrated("default")  # what migrate does with this feed configured
        made.append(feed)
        return feed

    yield make
    for feed in made:
        feed.close()
    remove_triggers("default")


def listening(feed: Any) -> Inbox:
    inbox = Inbox()
    feed.subscribe(inbox)
    assert feed.ready.wait(20), "the listener did not start"
    return inbox


def outside() -> Any:
    """A connection of its own, as ``psql`` or another service would have."""
    from django_rt.changes.postgres import connect

    return connect("default", "a service beside Django")


def triggers() -> dict[str, set[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgname LIKE 'django_rt%%'"
        )
        found: dict[str, set[str]] = {}
        for table, trigger in cursor.fetchall():
            found.setdefault(table, set()).add(trigger)
        return found


def entry(pk: object, kind: str = SAVE) -> Change:
    return Change("testapp.entry", str(pk), kind)


def test_migrate_installs_and_refreshes_the_triggers_and_removes_them_later():
    get_feed.cache_clear()
    try:
        with override_settings(DJANGO_RT={"CHANGE_FEED": {"BACKEND": BACKEND}}):
            call_command("migrate", verbosity=0)
            installed = triggers()
            call_command("migrate", verbosity=0)  # idempotent
            assert triggers() == installed
        assert installed["testapp_entry"] == TRIGGERS
        assert installed["testapp_tag_entries"] == TRIGGERS  # the link table, too
        for table in ("django_rt_outbox", "django_session", "django_content_type"):
            assert table not in installed  # its own, and IGNORE_MODELS
        ignoring = {"CHANGE_FEED": {"BACKEND": BACKEND}, "IGNORE_MODELS": ["testapp.tag"]}
        with override_settings(DJANGO_RT=ignoring):
            call_command("migrate", verbosity=0)  # refreshes: a table no longer watched
            assert "testapp_tag" not in triggers() and "testapp_entry" in triggers()
        call_command("migrate", verbosity=0)  # another feed now: the triggers go
        assert triggers() == {}
    finally:
        get_feed.cache_clear()


def test_raw_sql_from_another_connection_reaches_the_subscriber(feeds):
    inbox = listening(feeds())
    with outside() as other:
        pk = other.execute(
            "INSERT INTO testapp_entry (name, done, position) VALUES ('outside', false, 0) "
            "RETURNING id"
        ).fetchone()[0]
        assert inbox.wait_until_has(entry(pk))
        other.execute("UPDATE testapp_entry SET name = 'renamed' WHERE id = %s", [pk])
        assert inbox.wait_for(lambda changes: changes.count(entry(pk)) == 2)
        other.execute("DELETE FROM testapp_entry WHERE id = %s", [pk])
        assert inbox.wait_until_has(entry(pk, DELETE))
        other.execute("UPDATE testapp_entry SET name = 'none' WHERE false")  # no row: silent
        with other.transaction():
            other.execute("INSERT INTO testapp_author (name) VALUES ('rolled back')")
            raise psycopg.Rollback()
        other.execute("INSERT INTO testapp_author (name) VALUES ('Ada')")
    assert inbox.wait_for(lambda changes: any(c.model == "testapp.author" for c in changes))
    authors = [change for change in inbox.changes if change.model == "testapp.author"]
    assert len(authors) == 1  # the rolled-back insert sent nothing


def test_a_statement_touching_many_rows_is_one_change_of_its_table(feeds):
    inbox = listening(feeds(MAX_KEYS=5000))
    with outside() as other:
        # 3000 keys would pass MAX_KEYS but not NOTIFY's 8000 bytes: the table changed.
        other.execute(
            "INSERT INTO testapp_entry (name, done, position) "
            "SELECT 'n' || i, false, i FROM generate_series(1, 3000) AS i"
        )
        assert inbox.wait_until_has(Change("testapp.entry", ""))
        other.execute("UPDATE testapp_entry SET done = true WHERE position <= 3")
        assert inbox.wait_for(lambda changes: len(changes) == 4)
        other.execute("TRUNCATE testapp_entry CASCADE")
        assert inbox.wait_for(lambda changes: changes.count(Change("testapp.entry", "")) >= 2)
    updated = inbox.changes[1:4]
    assert {change.kind for change in updated} == {SAVE} and "" not in {c.pk for c in updated}


def test_many_to_many_links_change_both_sides(feeds):
    inbox = listening(feeds())
    tag = Tag.objects.create(name="t")
    first, second = Entry.objects.create(name="a"), Entry.objects.create(name="b")
    created = len(listening_for(inbox, 3))
    tag.entries.add(first, second)  # one INSERT into the link table
    assert inbox.wait_for(lambda changes: len(changes) > created)
    (notification,) = inbox.batches[created:]
    links = [change for change in notification if change.model == "testapp.tag_entries"]
    assert len(links) == 2 and all(change.pk for change in links)
    assert set(notification) - set(links) == {
        Change("testapp.tag", str(tag.pk)),
        entry(first.pk),
        entry(second.pk),
    }


def listening_for(inbox: Inbox, count: int) -> list[list[Change]]:
    """The first ``count`` batches, once they are there."""
    assert inbox.wait_for(lambda changes: len(inbox.batches) >= count)
    return inbox.batches[:count]


def test_an_orm_save_is_sent_once(feeds):
    inbox = listening(feeds())
    get_feed.cache_clear()
    try:
        with override_settings(DJANGO_RT={"CHANGE_FEED": {"BACKEND": BACKEND}}):
            first = Entry.objects.create(name="once")
            with transaction.atomic():
                Author.objects.create(name="never")
                transaction.set_rollback(True)
            second = Entry.objects.create(name="twice?")
            # Notifications arrive in commit order: any copy of the first comes before.
            assert inbox.wait_until_has(entry(second.pk))
        assert inbox.changes.count(entry(first.pk)) == 1
        assert not any(change.model == "testapp.author" for change in inbox.changes)
    finally:
        get_feed().close()
        get_feed.cache_clear()


def test_a_second_process_writes_through_the_orm(feeds):
    inbox = listening(feeds())
    printed = run_process(
        """
        from tests.testapp.models import Entry
        print(Entry.objects.create(name="from another process").pk)
        """,
        {"BACKEND": BACKEND},
    )
    assert inbox.wait_until_has(entry(int(printed)))


def test_publish_carries_what_no_trigger_sends(feeds):
    writer, reader = feeds(), feeds()
    inbox = listening(reader)
    writer.publish([entry(1), RESYNC_ALL])  # a trigger sends entry 1 already
    assert inbox.wait_until_has(RESYNC_ALL)
    assert entry(1) not in inbox.changes
    changes = [Change("other.model", "x" * 100 + str(index)) for index in range(200)]
    writer.publish(changes)  # 20 kB: several notifications
    assert inbox.wait_until_has(*changes)


def test_a_dropped_listener_reconnects_and_sends_the_resync_signal(feeds):
    inbox = listening(feeds(RETRY_MAX_SECONDS=0.5))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'django-rt listener' AND datname = current_database()"
        )
        assert cursor.fetchone() is not None
    assert inbox.wait_until_has(RESYNC_ALL)  # sent once it listens again
    row = Entry.objects.create(name="after the reconnect")
    assert inbox.wait_until_has(entry(row.pk))
