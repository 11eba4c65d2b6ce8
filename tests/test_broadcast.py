"""``django_rt.broadcast(target, *responses)``: commands for every open page of a view
(and of its subclasses) or of a group, through the change feed, after commit."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from django_rt import RTResponse, broadcast
from django_rt.protocol import ErrorCode, Frame, Key

from .helpers import join, load_page, socket
from .testapp.truth import BroadcastChildView, BroadcastView, PickedView

pytestmark = [pytest.mark.django_db(transaction=True)]


async def open_socket(application: Any, url: str, username: str | None = None) -> Any:
    client = Client()
    if username is not None:
        user = await sync_to_async(User.objects.create_user)(username, password="pw")
        await sync_to_async(client.force_login)(user)
    config = await sync_to_async(load_page)(client, url)
    communicator = socket(application, client)
    joined = await join(communicator, config["token"], config["hash"])
    assert joined[Key.TYPE] == Frame.JOINED, joined
    await communicator.receive_nothing(timeout=0.05)
    return communicator


async def commands_of(communicator: Any) -> list[Any] | None:
    if await communicator.receive_nothing(timeout=0.3):
        return None
    frame = await communicator.receive_json_from()
    assert frame[Key.TYPE] == Frame.REPLY and frame[Key.REF] is None, frame
    return frame[Key.COMMANDS]


async def test_a_view_and_its_subclasses_receive_what_is_broadcast_to_it(application):
    base = await open_socket(application, "/truth/broadcast/")
    child = await open_socket(application, "/truth/broadcast/child/")
    other = await open_socket(application, "/truth/picked/")
    try:
        await sync_to_async(broadcast)(BroadcastView, RTResponse("#result", "to all"))
        expected = [{"a": "html", "s": "#result", "c": "to all"}]
        assert await commands_of(base) == expected
        assert await commands_of(child) == expected
        assert await commands_of(other) is None
        await sync_to_async(broadcast)(BroadcastChildView, RTResponse("#result", "child"))
        assert await commands_of(child) is not None
        assert await commands_of(base) is None  # a subclass's broadcast is its own
        await sync_to_async(broadcast)(PickedView, RTResponse("#x", "y", action="text"))
        assert await commands_of(other) == [{"a": "text", "s": "#x", "c": "y"}]
    finally:
        for communicator in (base, child, other):
            await communicator.disconnect()


async def test_a_group_reaches_only_the_pages_that_joined_it(application):
    ann = await open_socket(application, "/truth/broadcast/", "ann")
    bob = await open_socket(application, "/truth/broadcast/", "bob")
    try:
        ann_pk = await sync_to_async(lambda: User.objects.get(username="ann").pk)()
        await sync_to_async(broadcast)(f"user-{ann_pk}", RTResponse.dispatch("note", {"n": 1}))
        assert await commands_of(ann) == [
            {"a": "dispatch", "s": None, "c": {"name": "note", "detail": {"n": 1}}}
        ]
        assert await commands_of(bob) is None
    finally:
        await ann.disconnect()
        await bob.disconnect()


async def test_a_broadcast_leaves_when_its_transaction_commits_and_never_on_rollback(
    application,
):
    page = await open_socket(application, "/truth/broadcast/")
    try:

        def rolled_back() -> None:
            with transaction.atomic():
                broadcast(BroadcastView, RTResponse("#result", "never"))
                transaction.set_rollback(True)

        await sync_to_async(rolled_back)()
        assert await commands_of(page) is None

        def committed() -> None:
            with transaction.atomic():
                broadcast(BroadcastView, RTResponse("#result", "after commit"))

        await sync_to_async(committed)()
        assert await commands_of(page) == [{"a": "html", "s": "#result", "c": "after commit"}]
    finally:
        await page.disconnect()


def test_what_broadcast_refuses():
    with pytest.raises(TypeError, match="an RTView subclass or a group name"):
        broadcast(object, RTResponse("#x", "y"))
    with pytest.raises(TypeError, match="an RTView subclass or a group name"):
        broadcast("", RTResponse("#x", "y"))
    with pytest.raises(TypeError, match="return an RTResponse"):
        broadcast(BroadcastView, "not a response")


async def test_groups_that_are_not_a_list_of_names_refuse_the_join_and_say_why(application):
    client = Client()
    config = await sync_to_async(load_page)(client, "/truth/broadcast/misnamed/")
    communicator = socket(application, client)
    try:
        answer = await join(communicator, config["token"], config["hash"])
        assert answer[Key.TYPE] == Frame.ERROR, answer
        assert "TypeError" in answer[Key.MESSAGE]
        # The connection stays, unjoined: an event is refused as such.
        await communicator.send_json_to({Key.TYPE: Frame.EVENT, Key.REF: 1, Key.HANDLER: "x"})
        refused = await communicator.receive_json_from()
        assert refused[Key.CODE] == ErrorCode.NOT_JOINED, refused
    finally:
        await communicator.disconnect()
