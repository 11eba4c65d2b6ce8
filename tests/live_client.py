"""A page as a browser holds it, without a browser: the body of an ``RTView`` page,
joined over a real socket (Channels' communicator, the project's ASGI application),
with every patch frame applied to it as ``rt.js`` applies it (regions between their
markers, keyed lists by key, morphs of the whole body).

Used by the live-truth tests: after every change, what an open page shows must equal
what a fresh load of the same URL by the same user shows.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import re
from collections import Counter
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from django_rt.hub import Hub
from django_rt.live.recorder import end_marker, start_marker, strip_markers
from django_rt.protocol import Frame, Key, Marker, PatchKey, PatchOp

from .helpers import join, page_config, socket

_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.I | re.S)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_SCRIPTS = re.compile(
    r'<script type="application/json" data-rt-config>.*?</script><script src="[^"]*" defer>'
    r"</script>",
    re.S,
)


_HEAD = re.compile(r"<head\b[^>]*>(.*?)</head\s*>", re.I | re.S)


def _head(html: str) -> str:
    """The head's elements other than the title (what a ``head`` op morphs)."""
    head = _HEAD.search(html)
    return strip_markers(_TITLE.sub("", head.group(1))) if head else ""


def visible(html: str) -> tuple[str, str, str]:
    """A page's title, other head elements and body as a reader sees them: no markers,
    no client script."""
    title = _TITLE.search(html)
    body = _BODY.search(html)
    text = _SCRIPTS.sub("", body.group(1) if body else html)
    return (
        html_lib.unescape(strip_markers(title.group(1))) if title else "",
        _head(html),
        strip_markers(text),
    )


class Reload(Exception):
    """The page was told to reload."""


class PageModel:
    """The body of a page (markers included) and the title, as patches leave them."""

    def __init__(self, html: str) -> None:
        title = _TITLE.search(html)
        self.title = html_lib.unescape(strip_markers(title.group(1))) if title else ""
        self.head = _head(html)
        body = _BODY.search(html)
        self.body = _SCRIPTS.sub("", body.group(1) if body else html)
        #: Set by a ``stale`` op (the server could not update the page), cleared by
        #: the next op that changes the page.
        self.stale: str | None = None

    @property
    def text(self) -> str:
        return strip_markers(self.body)

    @property
    def shown(self) -> tuple[str, str, str]:
        """What :func:`visible` gives for a fresh load."""
        return (self.title, self.head, self.text)

    def _span(self, region_id: str) -> tuple[int, int]:
        start = self.body.find(start_marker(region_id))
        if start < 0:
            raise LookupError(f"region {region_id!r} is not on the page")
        start += len(start_marker(region_id))
        end = self.body.find(end_marker(region_id), start)
        if end < 0:
            raise LookupError(f"region {region_id!r} has no end marker")
        return start, end

    def apply(self, op: dict[str, Any]) -> None:
        kind = op[PatchKey.OP]
        if kind != PatchOp.STALE:
            self.stale = None
        if kind == PatchOp.REGION:
            start, end = self._span(op[PatchKey.ID])
            self.body = self.body[:start] + op[PatchKey.HTML] + self.body[end:]
        elif kind == PatchOp.LIST:
            region_id = op[PatchKey.ID]
            start, end = self._span(region_id)
            items = op[PatchKey.ITEMS]
            parts = []
            for key in op[PatchKey.KEYS]:
                item_id = f"{region_id}{Marker.ITEM}{key}"
                if key in items:
                    inner = items[key]
                else:
                    item_start, item_end = self._span(item_id)
                    inner = self.body[item_start:item_end]
                parts.append(start_marker(item_id) + inner + end_marker(item_id))
            self.body = self.body[:start] + "".join(parts) + self.body[end:]
        elif kind == PatchOp.MORPH:
            self.body = op[PatchKey.HTML]
            if PatchKey.TITLE in op:
                self.title = op[PatchKey.TITLE]
        elif kind == PatchOp.STALE:
            self.stale = op[PatchKey.MESSAGE]
            return
        elif kind == PatchOp.HEAD:
            if PatchKey.TITLE in op:
                self.title = op[PatchKey.TITLE]
            if PatchKey.HTML in op:
                self.head = _TITLE.sub("", op[PatchKey.HTML])
        elif kind == PatchOp.RELOAD:
            raise Reload
        else:
            raise AssertionError(f"unknown patch op {kind!r}")


class LiveTab:
    """One open page: loaded over HTTP by ``client``, joined over a real socket."""

    def __init__(self, application: Any, client: Client, url: str) -> None:
        self.application = application
        self.client = client
        self.url = url
        self.user: str | None = None
        self.frames: list[dict[str, Any]] = []
        self.ops: Counter[str] = Counter()

    async def open(self) -> LiveTab:
        response = await sync_to_async(self.client.get)(self.url)
        assert response.status_code == 200, response
        html = response.content.decode()
        self.model = PageModel(html)
        config = page_config(html)
        self.socket: WebsocketCommunicator = socket(self.application, self.client)
        joined = await join(self.socket, config["token"], config["hash"])
        assert joined[Key.TYPE] == Frame.JOINED, joined
        await self.settle()
        return self

    async def settle(self) -> None:
        """Apply every frame the server has sent so far."""
        while not await self.socket.receive_nothing(timeout=0.02, interval=0.005):
            frame = await self.socket.receive_json_from()
            self.frames.append(frame)
            if frame[Key.TYPE] == Frame.ERROR:
                raise AssertionError(f"the page received an error: {frame}")
            if frame[Key.TYPE] == Frame.PATCH:
                for op in frame[Key.OPS]:
                    self.ops[op[PatchKey.OP]] += 1
                    try:
                        self.model.apply(op)
                    except Reload:
                        # As the browser does: load the page again, and join again.
                        await self.close()
                        await self.open()
                        return

    async def fresh(self) -> tuple[str, str]:
        """What a reload by the same user shows now."""
        return visible(await self.reload())

    async def reload(self) -> str:
        response = await sync_to_async(self.client.get)(self.url)
        assert response.status_code == 200, response
        return str(response.content.decode())

    async def close(self) -> None:
        await self.socket.disconnect()


async def quiesce() -> None:
    """Wait until the hub has processed every committed change and every page has sent
    what it was given (a patch may wait for the page's access check)."""
    hub = Hub.current()
    for _ in range(400):
        await asyncio.sleep(0.005)
        waiting = [hub.flushing] if hub.flushing is not None else []
        waiting += [
            task
            for client in hub.clients
            for task in (getattr(client, "flushing", None), getattr(client, "resyncing", None))
            if task is not None
        ]
        if not waiting and not hub.pending:
            return
        await asyncio.gather(*waiting, return_exceptions=True)
    raise AssertionError("the hub did not settle")
