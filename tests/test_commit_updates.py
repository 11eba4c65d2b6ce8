"""A lone commit updates its pages in its own thread, before the commit returns.

When the hub is idle, at most ``INLINE_UPDATE_PAGES`` pages are affected and none of
them runs its view again, the thread that committed computes the pages' patches itself
(the loop then writes them): no wait for the hub's thread, which may be busy with the
rest of the request. Anything else goes to the hub's thread as before: more pages, a
view to run, a batch under way, a page whose lock is held (by this very thread, say),
and a failure on the way, which costs the commit nothing.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

import pytest
from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.test import override_settings

from django_rt import hub as hub_module
from django_rt.hub import Hub
from django_rt.testing import RTClient

from .helpers import rename
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def updates(monkeypatch) -> list[str]:
    """How each batch's pages were computed: "commit" (in the thread that committed,
    before its commit returned) or "hub" (in the hub's thread)."""
    seen: list[str] = []
    original = Hub._update

    def update(self, *args, **kwargs):
        seen.append("commit" if kwargs.get("held") else "hub")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Hub, "_update", update)
    return seen


@pytest.fixture
def hubs(monkeypatch) -> list[Hub]:
    """The hubs made meanwhile (the application's, on its own loop)."""
    made: list[Hub] = []
    original = Hub.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Hub, "__init__", init)
    return made


async def test_a_lone_save_updates_its_page_in_the_thread_that_saved(updates):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(f"/live/name/{entry.pk}/")
        listing = await rt.open("/live/entries/")
        await rename(entry, "beta")
        assert updates == ["commit"]  # computed before save() returned
        await rt.settle()
        assert page.text("h1") == "beta" and "beta" in listing.text()
        assert page.shown == await page.fresh()
        assert listing.shown == await listing.fresh()


async def test_a_delete_goes_to_the_hub(updates):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(f"/live/name/{entry.pk}/")
        await sync_to_async(entry.delete)()  # the page shows the row: its view runs again
        await rt.settle()
        assert updates == ["hub"] and page.reloads == 1  # the view now answers 404


async def test_what_runs_a_view_or_reaches_many_pages_goes_to_the_hub(updates):
    entries = [await sync_to_async(Entry.objects.create)(name=f"e{n}") for n in range(5)]
    async with RTClient() as rt:
        checked = await rt.open(f"/live/checked/{entries[0].pk}/")
        await rename(entries[0], "renamed")  # its view reads the row: it runs again
        await rt.settle()
        assert updates == ["hub"] and checked.text("h1") == "renamed"
        pages = [await rt.open(f"/live/name/{entry.pk}/") for entry in entries[1:]]
        pages.append(await rt.open("/live/entries/"))
        updates.clear()
        # A write to the whole table: six pages, more than four.
        await sync_to_async(Entry.objects.update)(name="same")
        await rt.settle()
        assert updates == ["hub"]
        for page in pages:
            assert "same" in page.text() and page.shown == await page.fresh()


async def test_a_burst_of_commits_is_left_to_the_hub(updates, monkeypatch):
    monkeypatch.setattr(hub_module, "INLINE_QUIET", 60.0)  # however slow the machine
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(f"/live/name/{entry.pk}/")

        def saves() -> None:
            for name in ("beta", "gamma", "delta"):
                entry.name = name
                entry.save()

        await sync_to_async(saves)()
        await rt.settle()
        assert updates[0] == "commit" and set(updates[1:]) == {"hub"}
        assert page.text("h1") == "delta" and page.shown == await page.fresh()


def held(what: str, hub: Hub) -> AbstractContextManager[object]:
    """What keeps a commit from updating its pages itself."""
    if what == "none may be":
        return override_settings(DJANGO_RT={"INLINE_UPDATE_PAGES": 0})
    if what == "a batch is under way":
        return hub.working  # as while the hub's thread computes another batch
    (live,) = hub.members  # its page's lock, held by the committing thread itself: as
    return live.lock  # a view run again under it that saves a row (no deadlock)


@pytest.mark.parametrize("what", ["none may be", "a batch is under way", "its page is locked"])
async def test_a_commit_that_may_not_update_its_pages_leaves_them_to_the_hub(updates, hubs, what):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(f"/live/name/{entry.pk}/")
        (hub,) = hubs

        def save() -> None:
            with held(what, hub):
                entry.name = "beta"
                entry.save()

        await sync_to_async(save)()
        await rt.settle()
        assert updates == ["hub"] and page.text("h1") == "beta"


async def test_a_failure_in_the_committing_thread_costs_the_commit_nothing(monkeypatch, updates):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    failures: list[int] = []  # the threads of the fetches that failed
    original = Hub._fetch

    def fetch(self, wanted):
        if not failures:
            failures.append(threading.get_ident())
            raise DatabaseError("the database went away")
        return original(self, wanted)

    monkeypatch.setattr(Hub, "_fetch", fetch)
    async with RTClient() as rt:
        page = await rt.open(f"/live/name/{entry.pk}/")
        await rename(entry, "beta")  # does not raise
        await rt.settle()
        assert failures and updates == ["commit", "hub"]  # the hub's thread did it
        assert page.text("h1") == "beta"
        assert await sync_to_async(Entry.objects.get)(pk=entry.pk) == entry
