"""A live update that fails never leaves a page silently stale: the page is told, and
it is brought up to date once it renders again (a template that raises on some data,
a database that stops answering for a while)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.test import Client

from django_rt import hub as hub_module

from .live_client import LiveTab, quiesce
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


async def settled(tab: LiveTab) -> None:
    await quiesce()
    await tab.settle()


async def assert_fresh(tab: LiveTab) -> None:
    await tab.settle()
    assert tab.model.shown == await tab.fresh()


async def test_a_template_that_raises_tells_the_page_then_it_recovers(application: Any) -> None:
    entry = await sync_to_async(Entry.objects.create)(name="fine")
    tab = await LiveTab(application, Client(), "/truth/fragile/").open()
    try:
        assert "fine ok" in tab.model.text
        entry.name = "explode"
        await sync_to_async(entry.save)()
        await settled(tab)
        assert tab.model.stale is not None and "RuntimeError" in tab.model.stale
        assert "fine ok" in tab.model.text  # what the page holds is old, and it knows
        # Another change that does not fix it: still stale, still said so.
        await sync_to_async(Entry.objects.create)(name="second")
        await settled(tab)
        assert tab.model.stale is not None
        entry.name = "mended"
        await sync_to_async(entry.save)()
        await settled(tab)
        assert tab.model.stale is None
        assert "mended ok" in tab.model.text and "second ok" in tab.model.text
        await assert_fresh(tab)
    finally:
        await tab.close()


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
    tab = await LiveTab(application, Client(), "/live/entries/").open()
    try:
        # Committed together: the change is published once the table is already gone, so
        # the hub's query fails (a real database error), and so do its retries.
        await sync_to_async(add_while_the_table_goes_away)()
        await settled(tab)
        assert tab.model.stale is not None and "Error" in tab.model.stale
        assert "added meanwhile" not in tab.model.text
        hub = hub_module.Hub.current()
        assert hub.recovering is not None  # it keeps trying on its own
        await sync_to_async(rename_table)("testapp_entry_away", "testapp_entry")
        for _ in range(100):  # no change needed: the database answering is enough
            await tab.settle()
            if tab.model.stale is None:
                break
            await hub_module.asyncio.sleep(0.05)
        assert tab.model.stale is None
        assert "added meanwhile" in tab.model.text
        await assert_fresh(tab)
    finally:
        await tab.close()
