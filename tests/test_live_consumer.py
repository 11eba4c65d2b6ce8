"""Live data through the real ASGI application: a change reaches the joined page as a patch."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.test import Client

from django_rt.protocol import Frame, Key, PatchKey, PatchOp
from django_rt.testing import RTClient

from .helpers import join, load_page, socket
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


async def joined(application, url="/entries/"):
    client = Client()
    config = await sync_to_async(load_page)(client, url)
    communicator = socket(application, client)
    reply = await join(communicator, config["token"], config["hash"])
    assert reply[Key.TYPE] == Frame.JOINED
    return communicator


async def patch(communicator):
    frame = await communicator.receive_json_from(timeout=5)
    assert frame[Key.TYPE] == Frame.PATCH, frame
    return frame[Key.OPS]


async def test_added_renamed_deleted_rows_patch_the_page(application):
    first = await sync_to_async(Entry.objects.create)(name="first")
    async with RTClient(application=application) as rt:
        page = await rt.open("/entries/")
        second = await sync_to_async(Entry.objects.create)(name="second")
        await page.settle()
        assert page.texts("li") == ["first", "second"]
        # A new row is a list operation that sends that row alone.
        assert page.ops == {"list": 1}
        assert "first" not in json.dumps(page.frames[-1])

        first.name = "renamed"
        await sync_to_async(first.save)()
        await page.settle()
        # Entry.objects.all() is unordered: PostgreSQL lists an updated row last, and the
        # page follows with a move; SQLite keeps the order. Either way, one region changes.
        assert sorted(page.texts("li")) == ["renamed", "second"]
        assert page.ops["region"] == 1 and set(page.ops) <= {"region", "list"}

        await sync_to_async(second.delete)()
        await page.settle()
        assert page.texts("li") == ["renamed"]
        assert page.shown == await page.fresh()


async def test_rolled_back_save_publishes_nothing(application):
    entry = await sync_to_async(Entry.objects.create)(name="kept")
    communicator = await joined(application)

    def rolled_back():
        with transaction.atomic():
            Entry.objects.filter(pk=entry.pk).update(name="x")
            Entry.objects.create(name="ghost")
            transaction.set_rollback(True)

    await sync_to_async(rolled_back)()
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_change_between_page_load_and_join_is_not_lost(application):
    client = Client()
    config = await sync_to_async(load_page)(client, "/entries/")
    await sync_to_async(Entry.objects.create)(name="late")
    communicator = socket(application, client)
    reply = await join(communicator, config["token"], config["hash"])
    assert reply[Key.TYPE] == Frame.JOINED
    (op,) = await patch(communicator)
    assert op[PatchKey.OP] == PatchOp.MORPH and "late" in op[PatchKey.HTML]
    await communicator.disconnect()


async def test_resync_sends_the_whole_page(application):
    await sync_to_async(Entry.objects.create)(name="shown")
    communicator = await joined(application)
    await communicator.send_json_to({Key.TYPE: Frame.RESYNC})
    (op,) = await patch(communicator)
    assert op[PatchKey.OP] == PatchOp.MORPH and "shown" in op[PatchKey.HTML]
    assert "<!--rt:1-->" in op[PatchKey.HTML]
    await communicator.disconnect()


async def test_view_state_rerenders_after_an_event(application):
    async with RTClient(application=application) as rt:
        page = await rt.open("/live/counter/")
        assert await page.click("#bump") == []
        assert page.text("#counter") == "1"
        assert page.frames[-2] == {"t": "patch", "ops": [{"o": "region", "id": "1", "html": "1"}]}
        # A handler that changes nothing shown sends no patch.
        await page.click("#noop")
        assert page.ops == {"region": 1}


async def test_a_deleted_row_outside_a_list_runs_the_view_again(application):
    shown = await sync_to_async(Entry.objects.create)(name="shown")
    other = await sync_to_async(Entry.objects.create)(name="other")
    async with RTClient(application=application) as rt:
        page = await rt.open(f"/live/entry/{shown.pk}/")
        assert page.texts("li") == ["other"]
        # A deleted row that the page lists: the list follows.
        await sync_to_async(other.delete)()
        await page.settle()
        assert page.texts("li") == [] and page.ops == {"region": 1}
        # The row the page is about: its view now answers 404, so the page reloads.
        await sync_to_async(shown.delete)()
        await page.settle()
        assert page.ops["reload"] == 1 and page.status_code == 404


@pytest.fixture
def whole_renders(monkeypatch):
    """How many times a live page rendered whole (not region by region)."""
    from django_rt.live.page import LivePage

    count = [0]
    render = LivePage.render

    def counted(self, *args, **kwargs):
        count[0] += 1
        return render(self, *args, **kwargs)

    monkeypatch.setattr(LivePage, "render", counted)
    return count


async def test_a_view_that_computes_the_same_context_again_updates_region_by_region(
    application, whole_renders
):
    shown = await sync_to_async(Entry.objects.create)(name="shown")
    other = await sync_to_async(Entry.objects.create)(name="other")
    async with RTClient(application=application) as rt:
        # The view picks its row with get_object_or_404(): it read the table, and runs
        # again on each change to it. Its context is the same one: the same row, an
        # equal queryset.
        page = await rt.open(f"/live/entry/{shown.pk}/")
        joined = whole_renders[0]
        for entry, name in ((other, "another"), (shown, "renamed")):
            entry.name = name
            await sync_to_async(entry.save)()
            await page.settle()
        assert page.text("h1") == "renamed" and page.texts("li") == ["another"]
        assert page.ops == {"region": 2} and whole_renders[0] == joined
        assert page.shown == await page.fresh()


@pytest.mark.parametrize(
    "url, change, shows",
    [
        # Its headline is the row's name, upper-cased by the view: the context differs.
        ("/live/headline/{pk}/", "rename", {"h1": "RENAMED", "p": "renamed"}),
        # A count the view keeps on itself and the template reads from the view: the
        # context alone does not say that it changed.
        ("/live/tally/{pk}/", "add", {"h1": "shown", "p": "2 entries"}),
    ],
)
async def test_what_the_view_computed_renders_the_page_again(
    application, whole_renders, url, change, shows
):
    shown = await sync_to_async(Entry.objects.create)(name="shown")
    async with RTClient(application=application) as rt:
        page = await rt.open(url.format(pk=shown.pk))
        joined = whole_renders[0]
        if change == "rename":
            shown.name = "renamed"
            await sync_to_async(shown.save)()
        else:
            await sync_to_async(Entry.objects.create)(name="another")
        await page.settle()
        assert {selector: page.text(selector) for selector in shows} == shows
        assert whole_renders[0] == joined + 1
        assert page.shown == await page.fresh()


async def test_resync_shows_rows_added_since_the_join(application):
    communicator = await joined(application)
    entry = await sync_to_async(Entry.objects.create)(name="added")
    (op,) = await patch(communicator)  # the live update itself
    await communicator.send_json_to({Key.TYPE: Frame.RESYNC})
    (op,) = await patch(communicator)
    assert op[PatchKey.OP] == PatchOp.MORPH and f"<!--rt:1#{entry.pk}-->" in op[PatchKey.HTML]
    await communicator.disconnect()
