"""Every socket safe and bounded, through the real ASGI application: sessions that end,
access that is revoked, connection limits, resyncs and refused frames.

(Leaks and slow handlers against a real uvicorn: tests/e2e/test_connections.py; the
browser's side: tests/e2e/test_sessions.py.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.test import Client, override_settings

from django_rt.asgi import get_asgi_application
from django_rt.changes import Change, get_feed
from django_rt.protocol import VERSION, CloseCode, ErrorCode, Frame, Key, PatchKey, PatchOp
from django_rt.sessions import SESSION_LABEL, session_hash
from django_rt.tokens import SALT, PageToken

from .helpers import event, join, load_page, socket
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]

ENGINES = [
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cache",
    "django.contrib.sessions.backends.cached_db",
    "django.contrib.sessions.backends.file",
    "django.contrib.sessions.backends.signed_cookies",
]


def rt(**values: Any) -> Any:
    return override_settings(DJANGO_RT=values)


async def signed_in(username: str, permission: str | None = None) -> tuple[User, Client]:
    user = await sync_to_async(User.objects.create_user)(username, password="pw")
    if permission is not None:
        found = await sync_to_async(Permission.objects.get)(codename=permission)
        await sync_to_async(user.user_permissions.add)(found)
    client = Client()
    await sync_to_async(client.force_login)(user)
    return user, client


async def open_page(application, url: str, client: Client | None = None):
    client = client or Client()
    config = await sync_to_async(load_page)(client, url)
    communicator = socket(application, client)
    reply = await join(communicator, config["token"], config["hash"])
    assert reply[Key.TYPE] == Frame.JOINED, reply
    return communicator, config


async def until_closed(communicator, timeout: float = 5) -> tuple[list[dict[str, Any]], int]:
    """The frames that arrive before the server closes the socket, and its close code."""
    frames = []
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return frames, message.get("code")
        frames.append(json.loads(message["text"]))


async def assert_ended(communicator, code: ErrorCode, close: CloseCode, timeout: float = 5):
    frames, closed = await until_closed(communicator, timeout)
    assert closed == close, (closed, frames)
    errors = [frame for frame in frames if frame[Key.TYPE] == Frame.ERROR]
    assert [error[Key.CODE] for error in errors] == [code], frames
    return frames


async def assert_still_works(communicator):
    reply = await event(communicator, "ping", ref=99)
    assert reply[Key.TYPE] == Frame.REPLY and reply[Key.REF] == 99, reply


# sessions that end -------------------------------------------------------------------


async def test_logout_ends_every_page_of_that_session_and_no_other(application):
    _, alice = await signed_in("alice")
    _, bob = await signed_in("bob")
    private, _ = await open_page(application, "/sec/private/", alice)
    public, _ = await open_page(application, "/sec/entries/", alice)
    other, _ = await open_page(application, "/sec/private/", bob)
    response = await sync_to_async(alice.post)("/sec/logout/")
    assert response.status_code == 200
    for communicator in (private, public):
        await assert_ended(communicator, ErrorCode.SESSION_ENDED, CloseCode.SESSION_ENDED)
    await assert_still_works(other)
    await other.disconnect()


async def test_an_ended_session_gets_nothing_more_before_the_close(application):
    _, alice = await signed_in("alice")
    private, _ = await open_page(application, "/sec/private/", alice)
    response = await sync_to_async(alice.post)("/sec/logout/")
    assert response.status_code == 200
    # The close waits for the browser to store the cookie that the response set; what
    # changes meanwhile is not the signed-out browser's to see.
    await sync_to_async(Entry.objects.create)(name="after sign-out")
    frames = await assert_ended(private, ErrorCode.SESSION_ENDED, CloseCode.SESSION_ENDED)
    assert not [frame for frame in frames if frame[Key.TYPE] == Frame.PATCH], frames
    assert "after sign-out" not in json.dumps(frames)


async def test_the_feed_carries_a_hash_of_the_session_key_never_the_key(application):
    _, alice = await signed_in("alice")
    key = alice.cookies["sessionid"].value
    published: list[Change] = []
    unsubscribe = get_feed().subscribe(published.extend)
    try:
        await sync_to_async(alice.post)("/sec/logout/")
    finally:
        unsubscribe()
    ends = [change for change in published if change.model == SESSION_LABEL]
    assert [change.pk for change in ends] == [session_hash(key)]
    assert key not in repr(published)


def test_within_a_request_the_end_is_announced_once_the_response_is_over():
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.signals import request_finished, request_started

    session = SessionStore()
    session["x"] = 1
    session.save()
    key = session.session_key
    published: list[Change] = []
    unsubscribe = get_feed().subscribe(published.extend)
    try:
        request_started.send(sender=None)
        session.cycle_key()  # the browser gets the new key with the response, not before
        assert published == []
        request_finished.send(sender=None)
        assert [change.pk for change in published] == [session_hash(key)]
        SessionStore(session.session_key).flush()  # outside a request: at once
        assert len(published) == 2
    finally:
        unsubscribe()


@pytest.mark.parametrize("engine", ENGINES, ids=lambda engine: engine.rsplit(".", 1)[1])
@pytest.mark.parametrize("ending", ["flush", "cycle_key", "aflush", "acycle_key"])
async def test_a_flushed_or_rotated_session_ends_its_pages_with_any_backend(engine, ending):
    with override_settings(SESSION_ENGINE=engine):
        application = get_asgi_application()
        _, alice = await signed_in("alice")
        communicator, _ = await open_page(application, "/sec/private/", alice)
        session = alice.session  # the session store of the client's cookie
        if ending.startswith("a"):
            await getattr(session, ending)()
        else:
            await sync_to_async(getattr(session, ending))()
        await assert_ended(communicator, ErrorCode.SESSION_ENDED, CloseCode.SESSION_ENDED)


async def test_a_password_change_elsewhere_ends_the_pages_of_the_old_session(application):
    _, alice = await signed_in("alice")
    communicator, _ = await open_page(application, "/sec/private/", alice)
    response = await sync_to_async(alice.post)("/sec/password/", {"password": "changed"})
    assert response.status_code == 200
    await assert_ended(communicator, ErrorCode.SESSION_ENDED, CloseCode.SESSION_ENDED)
    # The browser has the new session cookie: the page joins again, still signed in.
    again, _ = await open_page(application, "/sec/private/", alice)
    reply = await event(again, "whoami")
    assert reply[Key.COMMANDS][0]["c"] == "alice"
    await again.disconnect()


async def test_a_session_that_ends_while_the_join_runs_ends_the_page(application):
    _, alice = await signed_in("alice")
    config = await sync_to_async(load_page)(alice, "/sec/private/?delay=0.5")
    communicator = socket(application, alice)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to(
        {Key.TYPE: Frame.JOIN, Key.VERSION: VERSION, Key.TOKEN: config["token"]}
    )
    await asyncio.sleep(0.2)  # the view is running
    await sync_to_async(alice.post)("/sec/logout/")
    await assert_ended(communicator, ErrorCode.SESSION_ENDED, CloseCode.SESSION_ENDED)


# access that is revoked ----------------------------------------------------------------


async def test_a_deactivated_user_gets_no_more_patches(application):
    user, alice = await signed_in("alice")
    with rt(ACCESS_CHECK_SECONDS=0):
        communicator, _ = await open_page(application, "/sec/private/", alice)
        user.is_active = False
        await sync_to_async(user.save)()
        await sync_to_async(Entry.objects.create)(name="private news")
        frames = await assert_ended(
            communicator, ErrorCode.ACCESS_REVOKED, CloseCode.ACCESS_REVOKED
        )
    assert "private news" not in json.dumps(frames)
    assert not [frame for frame in frames if frame[Key.TYPE] == Frame.PATCH]


async def test_a_revoked_permission_stops_the_handlers(application):
    user, bob = await signed_in("bob", permission="change_entry")
    with rt(ACCESS_CHECK_SECONDS=0):
        communicator, _ = await open_page(application, "/sec/staff/", bob)
        reply = await event(communicator, "whoami", ref=1)
        assert reply[Key.TYPE] == Frame.REPLY
        await sync_to_async(user.user_permissions.clear)()
        await communicator.send_json_to({Key.TYPE: Frame.EVENT, Key.REF: 2, Key.HANDLER: "whoami"})
        frames = await assert_ended(
            communicator, ErrorCode.ACCESS_REVOKED, CloseCode.ACCESS_REVOKED
        )
    assert not [frame for frame in frames if frame[Key.TYPE] == Frame.REPLY]


async def test_a_session_deleted_behind_djangos_back_ends_the_page_at_the_next_change(
    application,
):
    from django.contrib.sessions.models import Session

    _, alice = await signed_in("alice")
    with rt(ACCESS_CHECK_SECONDS=0):
        communicator, _ = await open_page(application, "/sec/private/", alice)
        # What `clearsessions` does to an expired session: no flush, no signal.
        await sync_to_async(Session.objects.all().delete)()
        await sync_to_async(Entry.objects.create)(name="after expiry")
        frames = await assert_ended(communicator, ErrorCode.SESSION_ENDED, CloseCode.SESSION_ENDED)
    assert "after expiry" not in json.dumps(frames)


async def test_the_access_verdict_holds_for_the_interval(application):
    user, bob = await signed_in("bob", permission="change_entry")
    with rt(ACCESS_CHECK_SECONDS=0.5):
        communicator, _ = await open_page(application, "/sec/staff/", bob)
        await sync_to_async(user.user_permissions.clear)()
        # Within the interval, the verdict of the join holds ...
        reply = await event(communicator, "whoami", ref=1)
        assert reply[Key.TYPE] == Frame.REPLY
        await asyncio.sleep(0.6)
        # ... after it, the view runs again and refuses.
        await communicator.send_json_to({Key.TYPE: Frame.EVENT, Key.REF: 2, Key.HANDLER: "whoami"})
        await assert_ended(communicator, ErrorCode.ACCESS_REVOKED, CloseCode.ACCESS_REVOKED)


async def test_patches_still_flow_when_the_access_holds(application):
    _, alice = await signed_in("alice")
    with rt(ACCESS_CHECK_SECONDS=0):
        communicator, _ = await open_page(application, "/sec/private/", alice)
        await sync_to_async(Entry.objects.create)(name="news")
        frame = await communicator.receive_json_from(timeout=5)
        assert frame[Key.TYPE] == Frame.PATCH and "news" in json.dumps(frame)
        await assert_still_works(communicator)
    await communicator.disconnect()


async def test_an_old_connection_is_closed_for_a_rejoin(application):
    with rt(MAX_CONNECTION_AGE=1):
        communicator, _ = await open_page(application, "/sec/entries/")
        frames, closed = await until_closed(communicator, timeout=5)
    assert closed == CloseCode.MAX_AGE and frames == []


async def test_an_old_connection_closes_after_the_frame_it_is_handling(application):
    with rt(MAX_CONNECTION_AGE=1):
        communicator, _ = await open_page(application, "/sec/entries/")
        await communicator.send_json_to(
            {
                Key.TYPE: Frame.EVENT,
                Key.REF: 5,
                Key.HANDLER: "sleep",
                Key.GATHERED: {"seconds": 1.5},
            }
        )
        frames, closed = await until_closed(communicator, timeout=5)
    assert closed == CloseCode.MAX_AGE
    assert [(frame[Key.TYPE], frame[Key.REF]) for frame in frames] == [(Frame.REPLY, 5)]


async def test_events_of_one_page_still_run_one_at_a_time_in_order(application):
    communicator, _ = await open_page(application, "/sec/entries/")
    slow = {Key.TYPE: Frame.EVENT, Key.REF: 1, Key.HANDLER: "sleep", Key.GATHERED: {"seconds": 0.3}}
    await communicator.send_json_to(slow)
    await communicator.send_json_to({Key.TYPE: Frame.EVENT, Key.REF: 2, Key.HANDLER: "ping"})
    first = await communicator.receive_json_from(timeout=5)
    second = await communicator.receive_json_from(timeout=5)
    assert (first[Key.REF], second[Key.REF]) == (1, 2)
    await communicator.disconnect()


# connection limits ---------------------------------------------------------------------


async def test_a_socket_that_never_joins_is_closed(application):
    with rt(JOIN_TIMEOUT=0.3):
        communicator = socket(application)
        connected, _ = await communicator.connect()
        assert connected
        await assert_ended(communicator, ErrorCode.JOIN_TIMEOUT, CloseCode.JOIN_TIMEOUT)


async def test_frames_before_the_join_do_not_keep_a_socket_open(application):
    with rt(JOIN_TIMEOUT=0.5):
        communicator = socket(application)
        await communicator.connect()
        for ref in range(3):
            error = await event(communicator, "ping", ref=ref)
            assert error[Key.CODE] == ErrorCode.NOT_JOINED
        await assert_ended(communicator, ErrorCode.JOIN_TIMEOUT, CloseCode.JOIN_TIMEOUT)


def test_page_tokens_tell_page_loads_apart():
    first, second = PageToken("v", "/", ""), PageToken("v", "/", "")
    assert first.page and first.page != second.page
    assert first == second  # the same page, as far as a join is concerned
    assert PageToken.load(first.sign()).page == first.page
    # A token signed before page ids existed loads without one.
    assert PageToken.load(signing.dumps({"v": "v", "p": "/", "u": ""}, salt=SALT)).page == ""


async def test_connections_per_page_token_are_capped(application):
    client = Client()
    with rt(MAX_CONNECTIONS_PER_TOKEN=2):
        config = await sync_to_async(load_page)(client, "/sec/entries/")
        first, second = socket(application, client), socket(application, client)
        assert (await join(first, config["token"], config["hash"]))[Key.TYPE] == Frame.JOINED
        joined = await join(second, config["token"], config["hash"])
        assert joined[Key.TYPE] == Frame.JOINED
        third = socket(application, client)
        error = await join(third, config["token"])
        assert error[Key.CODE] == ErrorCode.TOO_MANY_CONNECTIONS, error
        assert (await third.receive_output(timeout=5))["code"] == CloseCode.TOO_MANY_CONNECTIONS
        # The fresh token a join handed out names the same page.
        fourth = socket(application, client)
        error = await join(fourth, joined[Key.TOKEN])
        assert error[Key.CODE] == ErrorCode.TOO_MANY_CONNECTIONS
        # Another page of the same browser is another page; a closed socket frees its place.
        other, _ = await open_page(application, "/sec/entries/", client)
        await first.disconnect()
        fifth = socket(application, client)
        assert (await join(fifth, joined[Key.TOKEN], config["hash"]))[Key.TYPE] == Frame.JOINED
        await assert_still_works(second)
    for communicator in (second, other, fifth):
        await communicator.disconnect()


async def test_connections_per_user_are_capped(application):
    _, alice = await signed_in("alice")
    _, bob = await signed_in("bob")
    with rt(MAX_CONNECTIONS_PER_USER=2):
        pages = [await open_page(application, "/sec/private/", alice) for _ in range(2)]
        config = await sync_to_async(load_page)(alice, "/sec/private/")
        refused = socket(application, alice)
        error = await join(refused, config["token"])
        assert error[Key.CODE] == ErrorCode.TOO_MANY_CONNECTIONS and "user" in error[Key.MESSAGE]
        assert (await refused.receive_output(timeout=5))["code"] == CloseCode.TOO_MANY_CONNECTIONS
        bobs, _ = await open_page(application, "/sec/private/", bob)
        await assert_still_works(bobs)
    for communicator, _ in pages:
        await communicator.disconnect()
    await bobs.disconnect()


# resyncs and refused frames --------------------------------------------------------------


async def resync(communicator, ids=None):
    frame: dict[str, Any] = {Key.TYPE: Frame.RESYNC}
    if ids is not None:
        frame[Key.IDS] = ids
    await communicator.send_json_to(frame)


async def test_resyncs_are_throttled_and_the_ones_in_between_become_one(application):
    await sync_to_async(Entry.objects.create)(name="shown")
    with rt(RESYNC_SECONDS=0.6):
        communicator, _ = await open_page(application, "/sec/entries/")
        for _ in range(10):
            await resync(communicator)
        first = await communicator.receive_json_from(timeout=5)
        assert first[Key.TYPE] == Frame.PATCH
        started = time.monotonic()
        assert await communicator.receive_nothing(timeout=0.3)
        second = await communicator.receive_json_from(timeout=5)
        assert second[Key.TYPE] == Frame.PATCH and time.monotonic() - started > 0.2
        assert await communicator.receive_nothing(timeout=0.9)
        await assert_still_works(communicator)
    await communicator.disconnect()


async def test_a_resync_sends_the_top_level_region_that_holds_what_was_missed(application):
    entry = await sync_to_async(Entry.objects.create)(name="apple")
    communicator, _ = await open_page(application, "/sec/two/")
    await resync(communicator, ids=[f"2#{entry.pk}.1"])
    frame = await communicator.receive_json_from(timeout=5)
    (op,) = frame[Key.OPS]
    assert op[PatchKey.OP] == PatchOp.REGION and op[PatchKey.ID] == "2"
    assert "apple" in op[PatchKey.HTML] and "<h1" not in op[PatchKey.HTML]
    await communicator.disconnect()


async def test_a_resync_without_ids_or_for_a_top_level_region_morphs(application):
    await sync_to_async(Entry.objects.create)(name="apple")
    with rt(RESYNC_SECONDS=0):
        communicator, _ = await open_page(application, "/sec/two/")
        for ids in (None, ["1"], ["no-such-region.3"]):
            await resync(communicator, ids)
            frame = await communicator.receive_json_from(timeout=5)
            assert [op[PatchKey.OP] for op in frame[Key.OPS]] == [PatchOp.MORPH], ids
        await resync(communicator, ids="2")
        error = await communicator.receive_json_from(timeout=5)
        assert error[Key.CODE] == ErrorCode.BAD_FRAME
    await communicator.disconnect()


async def test_invalid_frames_count_against_the_rate_limit(application):
    with rt(EVENTS_PER_SECOND=0.001, EVENTS_BURST=3):
        communicator, _ = await open_page(application, "/sec/entries/")  # the join: one token
        codes = []
        for _ in range(4):
            await communicator.send_to(text_data="not json")
            codes.append((await communicator.receive_json_from(timeout=5))[Key.CODE])
    assert codes == [
        ErrorCode.BAD_FRAME,
        ErrorCode.BAD_FRAME,
        ErrorCode.RATE_LIMITED,
        ErrorCode.RATE_LIMITED,
    ]
    await communicator.disconnect()


async def test_refusals_are_logged_at_a_bounded_rate(application, caplog):
    communicator, _ = await open_page(application, "/sec/entries/")
    with caplog.at_level(logging.WARNING, logger="django_rt"):
        for _ in range(30):
            await communicator.send_to(text_data="{")
            await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        await asyncio.sleep(0.05)
    lines = [record.getMessage() for record in caplog.records if record.name == "django_rt"]
    assert len(lines) == 11, lines  # ten refusals, then one line with the count of the rest
    assert "20 more refused frames" in lines[-1]
