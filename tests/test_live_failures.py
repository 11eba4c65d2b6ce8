"""A live update that fails never leaves a page silently stale: the page is told, and
it is brought up to date once it renders again (a template that raises on some data,
a database that stops answering for a while)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction

from django_rt import hub as hub_module
from django_rt.testing import RTClient, RTPage

from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


async def assert_fresh(page: RTPage) -> None:
    await page.settle()
    assert page.shown == await page.fresh()


async def test_a_template_that_raises_tells_the_page_then_it_recovers(application: Any) -> None:
    entry = await sync_to_async(Entry.objects.create)(name="fine")
    async with RTClient(application=application) as rt:
        page = await rt.open("/truth/fragile/")
        assert "fine ok" in page.text()
        entry.name = "explode"
        await sync_to_async(entry.save)()
        await page.settle()
        assert page.stale is not None and "RuntimeError" in page.stale
        assert "fine ok" in page.text()  # what the page holds is old, and it knows
        # Another change that does not fix it: still stale, still said so.
        await sync_to_async(Entry.objects.create)(name="second")
        await page.settle()
        assert page.stale is not None
        entry.name = "mended"
        await sync_to_async(entry.save)()
        await page.settle()
        assert page.stale is None
        assert "mended ok" in page.text() and "second ok" in page.text()
        await assert_fresh(page)


def rename_table(old: str, new: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")


def add_while_the_table_goes_away() -> None:
    with transaction.atomic():
        Entry.objects.create(name="added meanwhile")
        rename_table("testapp_entry", "testapp_entry_away")


async def test_a_database_error_retries_then_resyncs_when_it_answers(
    application: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "RETRY_DELAYS", (0.01, 0.02))
    await sync_to_async(Entry.objects.create)(name="before")
    async with RTClient(application=application) as rt:
        page = await rt.open("/live/entries/")
        # Committed together: the change is published once the table is already gone, so
        # the hub's query fails (a real database error), and so do its retries.
        await sync_to_async(add_while_the_table_goes_away)()
        await page.settle()
        assert page.stale is not None and "Error" in page.stale
        assert "added meanwhile" not in page.text()
        assert rt.hub.recovering is not None  # it keeps trying on its own
        await sync_to_async(rename_table)("testapp_entry_away", "testapp_entry")
        # No change needed: the database answering is enough.
        await page.wait_for(lambda page: page.stale is None)
        assert "added meanwhile" in page.text()
        await assert_fresh(page)


async def test_pages_that_share_a_live_page_are_told_together_and_recover_together(
    application: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "RETRY_DELAYS", (0.01, 0.02))
    await sync_to_async(Entry.objects.create)(name="before")
    async with RTClient(application=application) as rt:
        pages = [await rt.open("/live/entries/") for _ in range(3)]
        assert len(rt.hub.members) == 1
        await sync_to_async(add_while_the_table_goes_away)()
        for page in pages:
            await page.settle()
            assert page.stale is not None and "Error" in page.stale
        # None of them reloads, nor runs its view apart from the others.
        assert not [page for page in pages if page.reloads]
        assert len(rt.hub.members) == 1
        await sync_to_async(rename_table)("testapp_entry_away", "testapp_entry")
        for page in pages:
            await page.wait_for(lambda page: page.stale is None)
            assert "added meanwhile" in page.text()
            await assert_fresh(page)
        assert len(rt.hub.members) == 1


async def test_shared_pages_whose_template_raises_stay_shared_and_recover(
    application: Any,
) -> None:
    entry = await sync_to_async(Entry.objects.create)(name="fine")
    async with RTClient(application=application) as rt:
        pages = [await rt.open("/truth/fragile/") for _ in range(2)]
        assert len(rt.hub.members) == 1
        entry.name = "explode"
        await sync_to_async(entry.save)()
        for page in pages:
            await page.settle()
            assert page.stale is not None and "RuntimeError" in page.stale
        assert not [page for page in pages if page.reloads]
        entry.name = "mended"
        await sync_to_async(entry.save)()
        for page in pages:
            await page.settle()
            assert page.stale is None and "mended ok" in page.text()
            await assert_fresh(page)
