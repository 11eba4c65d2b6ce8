"""The rows of a batch that only pages whose views run again show come from the
contexts those views compute, not from a query of their own.

A page whose view picks a row by primary key and reads it runs the view again when the
row is saved: the view reads the row as it is now, and the page renders it from there. The hub then
does not fetch the row as well, unless another page of the batch follows it region by
region, a list of the page shows it (a list's rows are its query's), or the context
does not hold it. Whichever way, every page equals a reload.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from django_rt import hub as hub_module
from django_rt.testing import RTClient

from .helpers import rename
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fetches(monkeypatch) -> list[Any]:
    """The rows the hub fetched, batch by batch."""
    fetched: list[Any] = []
    original = hub_module.Hub._fetch

    def counted(self, wanted):
        fetched.append({label: set(pks) for label, pks in wanted.items()})
        return original(self, wanted)

    monkeypatch.setattr(hub_module.Hub, "_fetch", counted)
    return fetched


async def test_a_page_whose_view_runs_again_shows_the_row_its_view_read(fetches):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        # Its view reads the row's name (an access check) before the page shows it.
        page = await rt.open(f"/live/checked/{entry.pk}/")
        await rename(entry, "beta")
        await rt.settle()
        assert page.text("h1") == "beta"
        assert page.ops["region"] == 1 and page.ops["morph"] == 0
        assert page.shown == await page.fresh()
        assert fetches == []  # the view's own read was the row's
        await sync_to_async(Entry.objects.filter(pk=entry.pk).update)(name="gamma")
        await rt.settle()
        assert page.text("h1") == "gamma" and fetches == []
        await rename(entry, "forbidden")
        await rt.settle()
        assert page.reloads == 1  # the view now refuses: never shown
        assert "forbidden" not in page.text()


async def test_a_view_that_changes_its_row_shows_what_a_reload_shows(fetches):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(f"/live/shout/{entry.pk}/")
        assert page.text("h1") == "ALPHA!"
        await rename(entry, "beta")
        await rt.settle()
        assert page.text("h1") == "BETA!"
        assert page.shown == await page.fresh()


async def test_a_batch_that_another_page_follows_region_by_region_is_fetched(fetches):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        name = await rt.open(f"/live/name/{entry.pk}/")
        listing = await rt.open("/live/entries/")
        await rename(entry, "beta")
        await rt.settle()
        assert len(fetches) == 1  # once for the batch, whichever page asks
        assert name.text("h1") == "beta" and "beta" in listing.text("#list")
        assert name.shown == await name.fresh()
        assert listing.shown == await listing.fresh()


@pytest.mark.parametrize(
    "path",
    [
        # Its list reads the table: the row it shows there comes from that query.
        "/live/among/{pk}/",
        # The view read the row for a value of it; the context does not hold the row.
        "/live/caption/{pk}/",
    ],
)
async def test_a_row_that_the_context_does_not_bring_alone_is_fetched(fetches, path):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(path.format(pk=entry.pk))
        await rename(entry, "beta")
        await rt.settle()
        assert fetches == [{"testapp.entry": {str(entry.pk)}}]
        assert page.text("h1") == "beta" and "alpha" not in page.text()
        assert page.shown == await page.fresh()
