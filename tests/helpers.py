"""Helpers shared by the tests: page configuration and a joined socket."""

from __future__ import annotations

import json
import re
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from django_rt.protocol import VERSION, Frame, Key

CONFIG = re.compile(r'<script type="application/json" data-rt-config>(.*?)</script>', re.S)


def page_config(html: str) -> dict[str, Any]:
    match = CONFIG.search(html)
    assert match, "the page carries no django-rt configuration"
    return json.loads(match.group(1))


def load_page(client: Client, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response
    return page_config(response.content.decode())


def socket(
    application: Any, client: Client | None = None, origin: str = "http://testserver"
) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if client is not None and client.cookies:
        cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/rt/ws/", headers=headers)


async def join(
    communicator: WebsocketCommunicator, token: str, render_hash: str | None = None
) -> dict[str, Any]:
    """Connect and join; with the page's render hash, no morph follows the join."""
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to(
        {Key.TYPE: Frame.JOIN, Key.VERSION: VERSION, Key.TOKEN: token, Key.HASH: render_hash}
    )
    return await communicator.receive_json_from(timeout=5)


async def event(
    communicator: WebsocketCommunicator, handler: str, ref: int = 1, **extra: Any
) -> dict[str, Any]:
    await communicator.send_json_to(
        {Key.TYPE: Frame.EVENT, Key.REF: ref, Key.HANDLER: handler, **extra}
    )
    return await communicator.receive_json_from(timeout=5)


async def rename(row: Any, name: str) -> None:
    """Save ``row`` (an entry) under a new ``name``, from an async test."""
    row.name = name
    await sync_to_async(row.save)()
