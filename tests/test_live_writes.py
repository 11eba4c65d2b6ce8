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
