"""The WebSocket protocol, through the real ASGI application (origin check, session, auth)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.test import Client, override_settings

from django_rt.protocol import VERSION, CloseCode, CommandKey, ErrorCode, Frame, Key
from django_rt.testing import RTClient
from django_rt.tokens import SALT, PageToken

from .helpers import event, join, load_page, socket

pytestmark = [pytest.mark.django_db(transaction=True)]


async def joined_socket(application, url="/", client=None):
    client = client or Client()
    config = await sync_to_async(load_page)(client, url)
    communicator = socket(application, client)
    reply = await join(communicator, config["token"], config["hash"])
    assert reply[Key.TYPE] == Frame.JOINED, reply
    return communicator, config


async def test_click_example_round_trip(application):
    async with RTClient(application=application) as rt:
        page = await rt.open("/")
        commands = await page.click("#mybutton", gathered={"#myinput": "hello"})
        assert commands == [
            {
                CommandKey.ACTION: "html",
                CommandKey.SELECTOR: "#result",
                CommandKey.CONTENT: "Result: hello",
            }
        ]
        assert page.text("#result") == "Result: hello"


async def test_gathered_html_is_escaped(application):
    async with RTClient(application=application) as rt:
        page = await rt.open("/")
        await page.fill("#myinput", "<img src=x onerror=alert(1)>")
        await page.click("#mybutton")
        assert page.text("#result") == "Result: <img src=x onerror=alert(1)>"
        assert page.select("#result img") == []


async def test_view_instance_lives_with_the_connection(application):
    async with RTClient(application=application) as rt:
        page = await rt.open("/")
        for expected in ("1", "2", "3"):
            await page.click("#counter")
            assert page.text("#count") == expected
        # A new connection is a new view instance.
        await page.reload()
        await page.click("#counter")
        assert page.text("#count") == "1"


async def test_async_handler_is_awaited(application):
    async with RTClient(application=application) as rt:
        page = await rt.open("/")
        await page.fill("#myinput", "typed")
        commands = await page.fire("keydown.enter", "#myinput")
        assert commands == [{"a": "text", "s": "#entered", "c": "Entered: typed"}]
        assert page.text("#entered") == "Entered: typed"


async def test_joined_frame_carries_a_fresh_token(application):
    communicator, config = await joined_socket(application)
    await communicator.disconnect()
    client = Client()
    await sync_to_async(load_page)(client, "/")
    again = socket(application, client)
    reply = await join(again, config["token"], config["hash"])
    assert reply[Key.TYPE] == Frame.JOINED
    assert PageToken.load(reply[Key.TOKEN]) == PageToken.load(config["token"])
    await again.disconnect()


# refused joins --------------------------------------------------------------------


async def assert_join_refused(communicator, token, code, close_code, version=VERSION):
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({Key.TYPE: Frame.JOIN, Key.VERSION: version, Key.TOKEN: token})
    error = await communicator.receive_json_from(timeout=5)
    assert error[Key.TYPE] == Frame.ERROR and error[Key.CODE] == code, error
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": close_code}
    return error


async def test_forged_token_is_refused(application):
    forged = signing.dumps(
        {"v": "tests.testapp.views.ExampleView", "p": "/", "u": ""}, key="wrong", salt=SALT
    )
    await assert_join_refused(
        socket(application), forged, ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN
    )
    await assert_join_refused(
        socket(application), "garbage", ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN
    )
    await assert_join_refused(
        socket(application), None, ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN
    )


async def test_token_of_another_salt_is_refused(application):
    other = signing.dumps({"v": "tests.testapp.views.ExampleView", "p": "/", "u": ""})
    await assert_join_refused(
        socket(application), other, ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN
    )


async def test_expired_token_is_refused(application):
    config = await sync_to_async(load_page)(Client(), "/")
    with override_settings(DJANGO_RT={"TOKEN_MAX_AGE": 1}):
        import time

        time.sleep(2.1)
        error = await assert_join_refused(
            socket(application), config["token"], ErrorCode.TOKEN_EXPIRED, CloseCode.TOKEN_EXPIRED
        )
    assert "expired" in error[Key.MESSAGE]


async def test_other_protocol_version_is_refused(application):
    config = await sync_to_async(load_page)(Client(), "/")
    await assert_join_refused(
        socket(application),
        config["token"],
        ErrorCode.VERSION_MISMATCH,
        CloseCode.VERSION_MISMATCH,
        version=0,
    )


async def test_token_for_a_view_the_url_no_longer_serves(application):
    token = PageToken("tests.testapp.views.TypedView", "/", "").sign()
    await assert_join_refused(
        socket(application), token, ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN
    )
    token = PageToken("tests.testapp.views.ExampleView", "/gone/", "").sign()
    await assert_join_refused(
        socket(application), token, ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN
    )


async def test_origin_must_be_an_allowed_host(application):
    communicator = socket(application, origin="http://evil.example")
    connected, _ = await communicator.connect()
    assert not connected


async def test_login_required_applies_to_the_socket(application):
    alice = await sync_to_async(User.objects.create_user)("alice", password="pw")
    client = Client()
    await sync_to_async(client.force_login)(alice)
    config = await sync_to_async(load_page)(client, "/private/")
    # The same token from a browser that is not logged in: refused (another user).
    await assert_join_refused(
        socket(application), config["token"], ErrorCode.FORBIDDEN, CloseCode.FORBIDDEN
    )
    # A token made for an anonymous user on a login-required page: the mixin redirects.
    anonymous = PageToken("tests.testapp.views.PrivateView", "/private/", "").sign()
    error = await assert_join_refused(
        socket(application), anonymous, ErrorCode.FORBIDDEN, CloseCode.FORBIDDEN
    )
    assert "302" in error[Key.MESSAGE] and "/login/" in error[Key.MESSAGE]
    # The logged-in browser joins, and handlers see its user.
    communicator = socket(application, client)
    assert (await join(communicator, config["token"], config["hash"]))[Key.TYPE] == Frame.JOINED
    reply = await event(communicator, "whoami")
    assert reply[Key.COMMANDS][0][CommandKey.CONTENT] == "alice"
    await communicator.disconnect()


async def test_login_required_decorator_on_the_url_applies(application):
    token = PageToken("tests.testapp.views.ExampleView", "/decorated/", "").sign()
    await assert_join_refused(socket(application), token, ErrorCode.FORBIDDEN, CloseCode.FORBIDDEN)


async def test_permission_required_applies_to_the_socket(application):
    bob = await sync_to_async(User.objects.create_user)("bob", password="pw")
    client = Client()
    await sync_to_async(client.force_login)(bob)
    token = PageToken("tests.testapp.views.StaffView", "/staff/", str(bob.pk)).sign()
    error = await assert_join_refused(
        socket(application, client), token, ErrorCode.FORBIDDEN, CloseCode.FORBIDDEN
    )
    assert error[Key.MESSAGE]
    permission = await sync_to_async(Permission.objects.get)(codename="change_entry")
    await sync_to_async(bob.user_permissions.add)(permission)
    communicator, _ = await joined_socket(application, "/staff/", client)
    await communicator.disconnect()


async def test_view_raising_404_at_join_is_refused(application):
    token = PageToken("tests.testapp.views.ItemView", "/item/404/", "").sign()
    await assert_join_refused(socket(application), token, ErrorCode.FORBIDDEN, CloseCode.FORBIDDEN)
    communicator, _ = await joined_socket(application, "/item/5/")
    await communicator.disconnect()


# refused frames keep the connection ------------------------------------------------


async def assert_still_works(communicator):
    reply = await event(communicator, "mybutton_click", ref=99, g={"gathered": "still"})
    assert reply[Key.TYPE] == Frame.REPLY and reply[Key.REF] == 99


async def expect_error(communicator, code):
    error = await communicator.receive_json_from(timeout=5)
    assert error[Key.TYPE] == Frame.ERROR and error[Key.CODE] == code, error
    return error


async def test_unknown_handler_is_refused(application):
    communicator, _ = await joined_socket(application)
    for name in ("nope", "get_context_data", "dispatch", "__init__", 5, None):
        error = await event(communicator, name, ref=3)
        assert error[Key.CODE] == ErrorCode.UNKNOWN_HANDLER and error[Key.REF] == 3
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_unbound_handler_of_a_subclass_is_refused(application):
    communicator, _ = await joined_socket(application, "/inherited/")
    assert (await event(communicator, "fail"))[Key.CODE] == ErrorCode.UNKNOWN_HANDLER
    reply = await event(communicator, "count")
    assert reply[Key.COMMANDS][0][CommandKey.CONTENT] == "child"
    await communicator.disconnect()


async def test_oversized_frame_is_refused(application):
    communicator, _ = await joined_socket(application)
    await communicator.send_to(
        text_data=json.dumps({"t": "event", "h": "x", "g": {"a": "x" * 70_000}})
    )
    error = await expect_error(communicator, ErrorCode.FRAME_TOO_LARGE)
    assert "65536" in error[Key.MESSAGE]
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_oversized_value_is_refused(application):
    communicator, _ = await joined_socket(application)
    with override_settings(DJANGO_RT={"MAX_VALUE_BYTES": 10}):
        error = await event(communicator, "mybutton_click", g={"gathered": "x" * 11})
    assert error[Key.CODE] == ErrorCode.VALUE_TOO_LARGE and "#myinput" in error[Key.MESSAGE]
    await assert_still_works(communicator)
    await communicator.disconnect()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '"text"',
        '{"t": "nope"}',
        '{"t": "event", "ref": "x", "h": "count"}',
        '{"t": "event", "h": "mybutton_click", "g": [1]}',
        "[" * 5000 + "]" * 5000,
    ],
)
async def test_malformed_frame_is_refused(application, raw):
    communicator, _ = await joined_socket(application)
    await communicator.send_to(text_data=raw)
    await expect_error(communicator, ErrorCode.BAD_FRAME)
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_binary_frame_is_refused(application):
    communicator, _ = await joined_socket(application)
    await communicator.send_to(bytes_data=b"\x00\x01")
    await expect_error(communicator, ErrorCode.BAD_FRAME)
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_event_before_join_is_refused(application):
    communicator = socket(application)
    await communicator.connect()
    error = await event(communicator, "count", ref=1)
    assert error[Key.CODE] == ErrorCode.NOT_JOINED
    await communicator.disconnect()


async def test_second_join_is_refused(application):
    communicator, config = await joined_socket(application)
    await communicator.send_json_to(
        {Key.TYPE: Frame.JOIN, Key.VERSION: VERSION, Key.TOKEN: config["token"]}
    )
    await expect_error(communicator, ErrorCode.ALREADY_JOINED)
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_handler_exception_sends_an_error_and_keeps_the_connection(application, caplog):
    communicator, _ = await joined_socket(application)
    with caplog.at_level("ERROR", logger="django_rt"):
        error = await event(communicator, "fail", ref=4)
    assert error[Key.CODE] == ErrorCode.HANDLER_ERROR and error[Key.REF] == 4
    assert Key.DETAIL not in error and "boom" not in error[Key.MESSAGE]
    assert any("fail" in record.getMessage() for record in caplog.records)
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_traceback_only_with_debug(application):
    communicator, _ = await joined_socket(application)
    with override_settings(DEBUG=True):
        error = await event(communicator, "fail")
    assert "RuntimeError: boom" in error[Key.DETAIL] and "boom" in error[Key.MESSAGE]
    await communicator.disconnect()


async def test_permission_denied_in_a_handler(application):
    communicator, _ = await joined_socket(application)
    error = await event(communicator, "deny")
    assert error[Key.CODE] == ErrorCode.FORBIDDEN and error[Key.MESSAGE] == "not you"
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_bad_return_value(application):
    communicator, _ = await joined_socket(application)
    error = await event(communicator, "bad_return")
    assert error[Key.CODE] == ErrorCode.HANDLER_ERROR
    await assert_still_works(communicator)
    await communicator.disconnect()


async def test_rate_limit(application):
    communicator, _ = await joined_socket(application)
    with override_settings(DJANGO_RT={"EVENTS_PER_SECOND": 0.001, "EVENTS_BURST": 3}):
        # The bucket was filled at connect with the default burst; a new socket takes the setting.
        limited, _ = await joined_socket(application)
        codes = []
        for ref in range(5):
            reply = await event(limited, "count", ref=ref)
            codes.append(reply.get(Key.CODE))
        # The join took one token from the burst of three.
        assert codes == [
            None,
            None,
            ErrorCode.RATE_LIMITED,
            ErrorCode.RATE_LIMITED,
            ErrorCode.RATE_LIMITED,
        ]
        await limited.disconnect()
    await assert_still_works(communicator)
    await communicator.disconnect()


# gathered values and their types ---------------------------------------------------


async def test_typed_gathered_values(application):
    communicator, _ = await joined_socket(application, "/typed/")
    reply = await event(
        communicator,
        "go",
        g={
            "count": "3",
            "ratio": "0.5",
            "agree": True,
            "tags": ["x", "z"],
            "form": {"title": "Hi", "n": ["1", "2"]},
            "note": None,
            "size": "m",
        },
    )
    assert reply[Key.TYPE] == Frame.REPLY, reply
    content = reply[Key.COMMANDS][0][CommandKey.CONTENT]
    assert content == repr(
        sorted(
            {
                "count": 3,
                "ratio": 0.5,
                "agree": True,
                "tags": ["x", "z"],
                "form": {"title": "Hi", "n": ["1", "2"]},
                "note": None,
                "size": "m",
            }.items()
        )
    )
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("count", "three", "'three' is not a whole number"),
        ("count", None, "'#count' matched no element"),
        ("ratio", "inf", "not a finite number"),
        ("agree", "maybe", "not a boolean"),
        ("form", "text", "expected an object"),
        ("size", "xl", "is not one of"),
    ],
)
async def test_gathered_value_of_the_wrong_type(application, name, value, fragment):
    communicator, _ = await joined_socket(application, "/typed/")
    values = {
        "count": "1",
        "ratio": "1",
        "agree": False,
        "tags": [],
        "form": {},
        "size": "s",
        name: value,
    }
    error = await event(communicator, "go", ref=5, g=values)
    assert error[Key.CODE] == ErrorCode.INVALID_VALUE and error[Key.REF] == 5
    assert fragment in error[Key.MESSAGE] and f"go(): {name}" in error[Key.MESSAGE]
    reply = await event(
        communicator,
        "go",
        g={
            **values,
            name: {"count": 2, "ratio": 2.5, "agree": "on", "form": {"a": "b"}, "size": "l"}[name],
        },
    )
    assert reply[Key.TYPE] == Frame.REPLY
    await communicator.disconnect()


async def test_target_reaches_the_handler(application):
    communicator, _ = await joined_socket(application, "/typed/")
    reply = await event(
        communicator,
        "pick",
        target={"id": "b2", "tag": "button", "name": None, "value": "", "data": {"row": "r2"}},
    )
    assert reply[Key.COMMANDS][0][CommandKey.CONTENT] == "r2:b2"
    error = await event(communicator, "pick", target="b2")
    assert error[Key.CODE] == ErrorCode.BAD_FRAME
    error = await event(communicator, "pick", target={"id": 5})
    assert error[Key.CODE] == ErrorCode.BAD_FRAME
    await communicator.disconnect()


async def test_handlers_only_receive_declared_values(application):
    communicator, _ = await joined_socket(application)
    reply = await event(
        communicator, "mybutton_click", g={"gathered": "x", "request": "forged", "self": 1}
    )
    assert reply[Key.COMMANDS][0][CommandKey.CONTENT] == "Result: x"
    await communicator.disconnect()


async def test_all_actions_serialise(application):
    communicator, _ = await joined_socket(application, "/actions/")
    reply = await event(communicator, "all_actions")
    assert reply[Key.COMMANDS] == [
        {"a": "html", "s": "#a", "c": "&lt;i&gt;x&lt;/i&gt;"},
        {"a": "text", "s": "#b", "c": "t"},
        {"a": "attr", "s": "#c", "c": {"title": "t", "hidden": None, "open": True}},
        {"a": "redirect", "s": None, "c": "/elsewhere/"},
        {"a": "dispatch", "s": None, "c": {"name": "done", "detail": {"n": 1}}},
    ]
    await communicator.disconnect()


async def test_other_pages_keep_working_while_one_is_refused(application):
    good, _ = await joined_socket(application)
    bad = socket(application)
    await assert_join_refused(bad, "forged", ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN)
    await good.send_to(text_data="{")
    await expect_error(good, ErrorCode.BAD_FRAME)
    await assert_still_works(good)
    await good.disconnect()
