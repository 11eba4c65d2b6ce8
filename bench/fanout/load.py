"""The benchmark's WebSocket clients: many sockets driven from one asyncio loop.

Every stack is driven alike: open N sockets (each one a page), trigger a change, and
stamp every frame with ``time.time()`` as it comes out of the socket. Three ways to
join:

- ``rt`` (django-rt): the page is loaded over HTTP first; the socket sends the ``join``
  frame that ``rt.js`` sends (``v``, the page's ``token`` and render ``hash`` from its
  ``data-rt-config``) and waits for ``joined``;
- ``sio`` (socket.io): engine.io's open packet ``0{...}``, then ``40`` to join the default
  namespace, answered ``40{...}``; events are ``42["name",data]``, and a ping ``2`` is
  answered ``3``;
- ``plain`` (the other baselines): the handshake alone.

Each socket is an ``asyncio.Protocol`` around the ``websockets`` library's Sans-I/O
client (``websockets.client.ClientProtocol``): a frame is stamped in ``data_received``,
as soon as the loop reads its bytes, and handled there, with no task per socket to wake.
Frames are kept (deduplicated: the same text is stored once, whichever sockets got it)
for the checks made afterwards; the hot path only stamps them, and looks for the
awaited change's tag with a substring search.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from .httpcall import call

CONFIG = re.compile(r'<script type="application/json" data-rt-config>(.*?)</script>', re.S)
#: Handshakes in flight at most: the rest wait (a storm of thousands would overflow the
#: server's listen backlog, and the retries would measure the kernel's timers).
CONNECTING = 200
#: Seconds a handshake or a join may take on a loaded machine.
JOIN_TIMEOUT = 120.0


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` on uvloop where it is installed (as uvicorn does), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class Socket(asyncio.Protocol):
    """One WebSocket: ``on_text(text, at)`` hears every text message as it arrives."""

    def __init__(self, url: str, origin: str, on_text: Callable[[str, float], None]) -> None:
        self.protocol = ClientProtocol(
            parse_uri(url),
            origin=origin,
            max_size=None,  # type: ignore[arg-type]
        )
        self.on_text = on_text
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.transport: Any = None
        self.parts: list[bytes] = []
        self.close_code: int | None = None

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        at = time.time()
        protocol = self.protocol
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.CONT:
                    self.parts.append(event.data)
                    if event.fin:
                        text = b"".join(self.parts).decode()
                        self.parts = []
                        self.on_text(text, at)
                elif event.opcode is Opcode.CLOSE:
                    self.close_code = protocol.close_code
            elif isinstance(event, Response) and not self.opened.done():
                if protocol.handshake_exc is not None:
                    self.opened.set_exception(protocol.handshake_exc)
                else:
                    self.opened.set_result(None)
        self.flush()  # pongs, and the answer to a close

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    def flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.protocol.close_expected():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.protocol.send_close(1000)
            self.flush()
        except Exception:
            self.transport.abort()


@dataclass
class Page:
    """One page load: its HTML and configuration (``rt`` only)."""

    html: str
    config: dict[str, Any]

    @property
    def join(self) -> str:
        return json.dumps(
            {
                "t": "join",
                "v": self.config["v"],
                "token": self.config["token"],
                "hash": self.config.get("hash"),
            }
        )

    def handler(self, selector: str) -> str:
        for binding in self.config.get("events", ()):
            if binding.get("s") == selector:
                return str(binding["h"])
        raise LookupError(f"the page binds no event to {selector}")


async def load_page(port: int, path: str) -> Page:
    status, html = await call(port, "GET", path, raw=True)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    match = CONFIG.search(html)
    if match is None:
        raise RuntimeError(f"GET {path}: no data-rt-config in the page")
    return Page(html, json.loads(match.group(1)))


class Round:
    """One change awaited at every client: the first frame that holds ``tag``."""

    def __init__(self, tag: str, clients: int) -> None:
        self.tag = tag
        self.times: list[float | None] = [None] * clients
        self.remaining = clients
        self.done = asyncio.Event()
        self.first: asyncio.Event = asyncio.Event()
        if clients == 0:
            self.done.set()

    def arrived(self, index: int, at: float) -> None:
        if self.times[index] is None:
            self.times[index] = at
            if self.remaining == len(self.times):
                self.first.set()
            self.remaining -= 1
            if not self.remaining:
                self.done.set()


@dataclass(eq=False)
class Client:
    index: int
    protocol: str
    socket: Socket
    page: Page | None = None
    frames: list[tuple[float, str]] = field(default_factory=list)
    #: While it joins: the frames, for the join to read.
    inbox: asyncio.Queue[str] | None = None
    #: The ``ref`` of the event whose reply this client awaits, and when it came.
    waiting_ref: int | None = None
    replied: asyncio.Future[float] | None = None

    @property
    def closed(self) -> str | None:
        if self.socket.lost.done():
            return f"closed ({self.socket.close_code})"
        return None


class Load:
    """The sockets of one stack: open them, await changes, send events, close."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.round: Round | None = None
        #: Every distinct frame text once: thousands of sockets receive the same frames.
        self.texts: dict[str, str] = {}
        self.ref = 0

    # -- opening ---------------------------------------------------------------------

    async def open(
        self,
        protocol: str,
        endpoints: list[tuple[int, str]],
        count: int,
        pages: list[Page | None],
    ) -> dict[str, Any]:
        """Open ``count`` sockets, spread over ``endpoints`` (port, path) in turn; socket
        ``i`` joins with ``pages[i % len(pages)]``. Returns how long the storm took."""
        slots = asyncio.Semaphore(CONNECTING)
        durations: list[float] = [0.0] * count
        start_index = len(self.clients)

        async def one(i: int) -> Client:
            port, path = endpoints[i % len(endpoints)]
            page = pages[i % len(pages)] if pages else None
            async with slots:
                started = time.perf_counter()
                client = await asyncio.wait_for(
                    self._open(start_index + i, protocol, port, path, page), JOIN_TIMEOUT
                )
                durations[i] = time.perf_counter() - started
            return client

        started = time.perf_counter()
        clients = await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - started
        self.clients.extend(clients)
        durations.sort()
        return {
            "wall_s": wall,
            "join_p50_ms": round(durations[len(durations) // 2] * 1000, 3) if durations else None,
            "join_max_ms": round(durations[-1] * 1000, 3) if durations else None,
        }

    async def _open(
        self, index: int, protocol: str, port: int, path: str, page: Page | None
    ) -> Client:
        loop = asyncio.get_running_loop()
        holder: list[Client] = []
        socket = Socket(
            f"ws://127.0.0.1:{port}{path}",
            f"http://127.0.0.1:{port}",
            lambda text, at: self._received(holder[0], text, at),
        )
        client = Client(index, protocol, socket, page, inbox=asyncio.Queue())
        holder.append(client)
        await loop.create_connection(lambda: socket, "127.0.0.1", port)
        await socket.opened
        assert client.inbox is not None
        if protocol == "rt":
            assert page is not None
            socket.send(page.join)
            while True:
                text = await client.inbox.get()
                frame = json.loads(text)
                if frame.get("t") == "joined":
                    break
                if frame.get("t") == "error":
                    raise RuntimeError(f"join refused: {frame}")
                client.frames.append((time.time(), self._keep(text)))
        elif protocol == "sio":
            opened = await client.inbox.get()
            if not opened.startswith("0"):
                raise RuntimeError(f"engine.io sent {opened!r} first")
            socket.send("40")
            answer = await client.inbox.get()
            if not answer.startswith("40"):
                raise RuntimeError(f"socket.io answered {answer!r} to 40")
        client.inbox = None
        return client

    def _keep(self, text: str) -> str:
        return self.texts.setdefault(text, text)

    # -- receiving -------------------------------------------------------------------

    def _received(self, client: Client, text: str, at: float) -> None:
        if client.protocol == "sio" and text == "2":
            client.socket.send("3")  # engine.io's ping
            return
        if client.inbox is not None:
            client.inbox.put_nowait(text)
            return
        text = self.texts.setdefault(text, text)
        client.frames.append((at, text))
        awaited = self.round
        if awaited is not None and awaited.tag in text:
            awaited.arrived(client.index, at)
        if client.waiting_ref is not None and "reply" in text:
            self._replied(client, text, at)

    def _replied(self, client: Client, text: str, at: float) -> None:
        try:
            frame = json.loads(text[2:] if client.protocol == "sio" else text)
        except ValueError:
            return
        if client.protocol == "sio":
            if not (isinstance(frame, list) and frame and frame[0] == "reply"):
                return
            frame = frame[1]
        if frame.get("t") == "reply" and frame.get("ref") == client.waiting_ref:
            client.waiting_ref = None
            if client.replied is not None and not client.replied.done():
                client.replied.set_result(at)

    # -- changes and events ----------------------------------------------------------

    def expect(self, tag: str) -> Round:
        """Await the frame holding ``tag`` at every client, from now on."""
        self.round = Round(tag, len(self.clients))
        return self.round

    async def event(self, client: Client, handler: str) -> float:
        """Send the click of ``#ping`` as ``rt.js`` sends it; returns the seconds until
        its reply came back."""
        self.ref += 1
        frame = {
            "t": "event",
            "ref": self.ref,
            "h": handler,
            "g": {},
            "target": {"id": "ping", "tag": "button", "name": None, "value": "", "data": {}},
        }
        text = json.dumps(frame)
        if client.protocol == "sio":
            text = "42" + json.dumps(["event", frame])
        client.waiting_ref = self.ref
        client.replied = asyncio.get_running_loop().create_future()
        sent = time.time()
        client.socket.send(text)
        replied = await asyncio.wait_for(client.replied, 60)
        return replied - sent

    async def close(self) -> None:
        """Close every socket (a close frame each), and wait a little for them to end."""
        for client in self.clients:
            client.socket.close()
        lost = [client.socket.lost for client in self.clients]
        if lost:
            await asyncio.wait(lost, timeout=10)
        for client in self.clients:
            if client.socket.transport is not None and not client.socket.lost.done():
                client.socket.transport.abort()
        self.clients = []
