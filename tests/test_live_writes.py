"""Writes that send no signal reach open pages too: ``QuerySet.update()``,
``bulk_create()``, ``bulk_update()`` and raw SQL through Django's connection, at table
granularity, after commit (a rolled-back one changes nothing)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction

from django_rt.testing import RTClient

from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


def bulk_update() -> None:
    rows = list(Entry.objects.order_by("pk"))
    for row in rows:
        row.name = row.name.upper()
    Entry.objects.bulk_update(rows, ["name"])


def raw_sql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_entry SET position = position + 10 WHERE name = %s", ["B"])


def rolled_back() -> None:
    with transaction.atomic():
        Entry.objects.update(name="never")
        transaction.set_rollback(True)


WRITES = [
    lambda: Entry.objects.filter(name="a").update(name="a2", done=True),
    lambda: Entry.objects.bulk_create([Entry(name="b"), Entry(name="c", position=5)]),
    bulk_update,
    raw_sql,
    rolled_back,
    lambda: Entry.objects.filter(name="C").delete(),
]


@pytest.mark.parametrize("url", ["/live/entries/", "/truth/picked/"])
async def test_writes_without_signals_reach_the_page(application: Any, url: str) -> None:
    await sync_to_async(Entry.objects.create)(name="a")
    async with RTClient(application=application) as rt:
        page = await rt.open(url)
        for write in WRITES:
            before = page.html()
            await sync_to_async(write)()
            await page.settle()
            assert page.shown == await page.fresh()
            if write is not rolled_back:
                assert page.html() != before, "the write changed nothing on the page"


# what a write announces -------------------------------------------------------------


@pytest.fixture
def announced():
    """The changes the feed publishes, as (model, pk) pairs, in order."""
    from django_rt.changes import get_feed

    seen: list[tuple[str, str]] = []
    unsubscribe = get_feed().subscribe(
        lambda changes: seen.extend((c.model, c.pk) for c in changes)
    )
    yield seen
    unsubscribe()


def test_a_save_announces_its_row_and_not_its_whole_table(announced):
    entry = Entry.objects.create(name="a")
    entry.name = "b"
    entry.save()
    entry.save(update_fields=["name"])
    pk = str(entry.pk)
    # Each save is one change: its row. A page that shows the table's other rows is
    # not updated for it, nor any page twice.
    assert announced == [("testapp.entry", pk)] * 3


def test_writes_that_name_no_row_still_announce_the_table(announced):
    entry = Entry.objects.create(name="a")
    announced.clear()
    Entry.objects.filter(pk=entry.pk).update(name="b")
    entry.save_base(raw=True)  # what loaddata does: no post_save is published for it
    assert announced == [("testapp.entry", ""), ("testapp.entry", "")]


def test_a_receiver_that_writes_the_same_table_is_announced(announced):
    from django.db.models.signals import post_save

    def bump(sender, instance, created, **kwargs):
        if created:
            Entry.objects.filter(pk=instance.pk).update(position=7)

    post_save.connect(bump, sender=Entry)
    try:
        entry = Entry.objects.create(name="a")
    finally:
        post_save.disconnect(bump, sender=Entry)
    assert sorted(announced) == [("testapp.entry", ""), ("testapp.entry", str(entry.pk))]


def test_a_child_model_announces_its_parents_table(announced):
    from .testapp.models import Shop

    shop = Shop.objects.create(name="corner", kind="books")
    announced.clear()
    shop.kind = "maps"
    shop.save()
    # The shop's row by post_save; the place's table, whose row post_save does not name.
    assert sorted(announced) == [("testapp.place", ""), ("testapp.shop", str(shop.pk))]
