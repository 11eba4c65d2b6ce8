"""Live data through the real ASGI application: a change reaches the joined page as a patch."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.test import Client

from django_rt.protocol import Frame, Key, PatchKey, PatchOp

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
    communicator = await joined(application)
    second = await sync_to_async(Entry.objects.create)(name="second")
    (op,) = await patch(communicator)
    assert op[PatchKey.OP] == PatchOp.LIST
    assert op[PatchKey.KEYS] == [str(first.pk), str(second.pk)]
    assert list(op[PatchKey.ITEMS]) == [str(second.pk)]
    assert "second" in op[PatchKey.ITEMS][str(second.pk)]

    first.name = "renamed"
    await sync_to_async(first.save)()
    ops = await patch(communicator)
    # Entry.objects.all() is unordered: PostgreSQL lists an updated row last, and the
    # page follows with a move; SQLite keeps the order. Either way, one region changes.
    assert {
        PatchKey.OP: PatchOp.REGION,
        PatchKey.ID: f"1#{first.pk}.1",
        PatchKey.HTML: "renamed",
    } in ops
    assert all(op[PatchKey.OP] in (PatchOp.REGION, PatchOp.LIST) for op in ops)

    await sync_to_async(second.delete)()
    (op,) = await patch(communicator)
    assert op[PatchKey.OP] == PatchOp.LIST and op[PatchKey.KEYS] == [str(first.pk)]
    assert op[PatchKey.ITEMS] == {}
    await communicator.disconnect()


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
    client = Client()
    config = await sync_to_async(load_page)(client, "/live/counter/")
    communicator = socket(application, client)
    assert (await join(communicator, config["token"], config["hash"]))[Key.TYPE] == Frame.JOINED
    await communicator.send_json_to({Key.TYPE: Frame.EVENT, Key.REF: 1, Key.HANDLER: "bump"})
    (op,) = await patch(communicator)
    assert op == {"o": "region", "id": "1", "html": "1"}
    reply = await communicator.receive_json_from(timeout=5)
    assert reply[Key.TYPE] == Frame.REPLY and reply[Key.COMMANDS] == []
    # A handler that changes nothing shown sends no patch.
    await communicator.send_json_to({Key.TYPE: Frame.EVENT, Key.REF: 2, Key.HANDLER: "noop"})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply[Key.TYPE] == Frame.REPLY and reply[Key.REF] == 2
    await communicator.disconnect()


async def test_a_deleted_row_outside_a_list_runs_the_view_again(application):
    shown = await sync_to_async(Entry.objects.create)(name="shown")
    other = await sync_to_async(Entry.objects.create)(name="other")
    communicator = await joined(application, f"/live/entry/{shown.pk}/")
    # A deleted row that the page lists: the list follows.
    await sync_to_async(other.delete)()
    (op,) = await patch(communicator)
    assert op[PatchKey.OP] == PatchOp.REGION and op[PatchKey.HTML] == ""
    # The row the page is about: its view now answers 404, so the page reloads.
    await sync_to_async(shown.delete)()
    (op,) = await patch(communicator)
    assert op == {PatchKey.OP: PatchOp.RELOAD}
    await communicator.disconnect()


async def test_resync_shows_rows_added_since_the_join(application):
    communicator = await joined(application)
    entry = await sync_to_async(Entry.objects.create)(name="added")
    (op,) = await patch(communicator)  # the live update itself
    await communicator.send_json_to({Key.TYPE: Frame.RESYNC})
    (op,) = await patch(communicator)
    assert op[PatchKey.OP] == PatchOp.MORPH and f"<!--rt:1#{entry.pk}-->" in op[PatchKey.HTML]
    await communicator.disconnect()
