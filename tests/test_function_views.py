"""``django_rt.live_view``: a function view's page is live (live data; no events)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core import signing
from django.test import Client

from django_rt.live.recorder import strip_markers
from django_rt.protocol import VERSION, CloseCode, ErrorCode, Frame, Key, PatchKey, PatchOp
from django_rt.tokens import SALT, PageToken

from .helpers import join, load_page, socket
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]

FUNCTION = "tests.testapp.integration.function_page"


async def joined(application, url, client=None):
    client = client or Client()
    config = await sync_to_async(load_page)(client, url)
    communicator = socket(application, client)
    reply = await join(communicator, config["token"], config["hash"])
    assert reply[Key.TYPE] == Frame.JOINED, reply
    return communicator


async def patch(communicator):
    frame = await communicator.receive_json_from(timeout=5)
    assert frame[Key.TYPE] == Frame.PATCH, frame
    return frame[Key.OPS]


async def refused(application, token, client=None):
    communicator = socket(application, client)
    assert (await communicator.connect())[0]
    await communicator.send_json_to({Key.TYPE: Frame.JOIN, Key.VERSION: VERSION, Key.TOKEN: token})
    error = await communicator.receive_json_from(timeout=5)
    closed = await communicator.receive_output(timeout=5)
    return error, closed["code"]


def test_the_page_carries_the_script_and_a_token_naming_the_function():
    Entry.objects.create(name="first")
    response = Client().get("/int/function/")
    html = response.content.decode()
    assert response.status_code == 200 and html.count("data-rt-config") == 1
    assert "<!--rt:" in html and "first" in strip_markers(html)
    config = load_page(Client(), "/int/function/")
    token = PageToken.load(config["token"])
    assert (token.view, token.path, token.user) == (FUNCTION, "/int/function/", "")
    assert config["events"] == []


def test_anything_but_a_template_response_is_sent_as_it_is():
    response = Client().get("/int/function/plain/")
    assert response.content == b"<html><body>not a template</body></html>"
    response = Client().get("/int/function/redirecting/")
    assert response.status_code == 302 and response["Location"] == "/elsewhere/"


async def test_the_page_follows_its_rows_and_what_the_function_counted(application):
    first = await sync_to_async(Entry.objects.create)(name="first")
    communicator = await joined(application, "/int/function/")
    second = await sync_to_async(Entry.objects.create)(name="second")
    total, listed = await patch(communicator)
    # The function counted the rows: it runs again, and the page gets what differs.
    assert (total[PatchKey.OP], total[PatchKey.HTML]) == (PatchOp.REGION, "2")
    assert listed[PatchKey.OP] == PatchOp.LIST
    assert listed[PatchKey.KEYS] == [str(first.pk), str(second.pk)]
    assert "second" in strip_markers(listed[PatchKey.ITEMS][str(second.pk)])
    first.name = "renamed"
    await sync_to_async(first.save)()
    ops = await patch(communicator)
    assert any(strip_markers(op.get(PatchKey.HTML, "")) == "renamed" for op in ops), ops
    await sync_to_async(second.delete)()
    ops = await patch(communicator)
    assert any(strip_markers(op.get(PatchKey.HTML, "")) == "1" for op in ops), ops
    await communicator.disconnect()


async def test_an_async_function_view_is_live_too(application):
    await sync_to_async(Entry.objects.create)(name="first")
    communicator = await joined(application, "/int/function/async/")
    await sync_to_async(Entry.objects.create)(name="second")
    ops = await patch(communicator)
    assert "second" in str(ops) and any(
        strip_markers(op.get(PatchKey.HTML, "")) == "2" for op in ops
    ), ops
    await communicator.disconnect()


async def test_forged_and_mismatched_tokens_are_refused(application):
    forged = signing.dumps({"v": FUNCTION, "p": "/int/function/", "u": ""}, key="x", salt=SALT)
    error, code = await refused(application, forged)
    assert (error[Key.CODE], code) == (ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN)
    # The function's token at a URL of another view, another view's at the function's URL.
    for view, path in [
        (FUNCTION, "/int/page/"),
        ("tests.testapp.integration.Page", "/int/function/"),
        ("tests.testapp.integration.async_function_page", "/int/function/"),
    ]:
        error, code = await refused(application, PageToken(view, path, "").sign())
        assert (error[Key.CODE], code) == (ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN)
        assert "another view" in error[Key.MESSAGE]


async def test_decorators_around_the_function_apply_to_the_socket(application):
    anonymous = PageToken(
        "tests.testapp.integration.private_function_page", "/int/function/private/", ""
    ).sign()
    error, code = await refused(application, anonymous)
    assert (error[Key.CODE], code) == (ErrorCode.FORBIDDEN, CloseCode.FORBIDDEN)
    assert "302" in error[Key.MESSAGE] and "/login/" in error[Key.MESSAGE]
    alice = await sync_to_async(User.objects.create_user)("alice", password="pw")
    client = Client()
    await sync_to_async(client.force_login)(alice)
    communicator = await joined(application, "/int/function/private/", client)
    await sync_to_async(Entry.objects.create)(name="hers", owner=alice)
    assert "hers" in str(await patch(communicator))
    await communicator.disconnect()


async def test_a_function_view_has_no_handlers(application):
    communicator = await joined(application, "/int/function/")
    await communicator.send_json_to({Key.TYPE: Frame.EVENT, Key.REF: 1, Key.HANDLER: "save"})
    error = await communicator.receive_json_from(timeout=5)
    assert error[Key.CODE] == ErrorCode.UNKNOWN_HANDLER and error[Key.REF] == 1
    await communicator.disconnect()


async def test_a_function_that_now_answers_otherwise_reloads_the_page(application):
    keep = await sync_to_async(Entry.objects.create)(name="keep")
    communicator = await joined(application, "/int/function/redirecting/")
    await sync_to_async(keep.delete)()
    assert await patch(communicator) == [{PatchKey.OP: PatchOp.RELOAD}]
    await communicator.disconnect()
