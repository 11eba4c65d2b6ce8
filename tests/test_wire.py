"""Direct writes (``django_rt.wire``): one frame's bytes written to every socket of an
audience, under uvicorn's ``websockets-sansio`` protocol, and the ASGI ``send``
everywhere else."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import override_settings
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader
from websockets.sync.client import connect

from django_rt import wire
from django_rt.hub import _write_at_once

from .e2e.servers import ThreadServer


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        assert reader.at_eof(), "bytes after the frame"
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("the frame is cut short")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70001])
def test_a_text_frame_of_any_length_parses_as_one_final_text_frame(length: int) -> None:
    text = ("é" + "x" * length)[:length]
    frame = parse(wire.text_frame(text))
    assert (frame.opcode, frame.fin, frame.rsv1) == (Opcode.TEXT, True, False)
    assert frame.data.decode() == text


class Recorder:
    """An ASGI app that sends through ``send`` and writes directly, in turn."""

    def __init__(self) -> None:
        self.direct: list[bool] = []
        self.after_close: list[bool] = []
        self.done = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()
        await send({"type": "websocket.accept"})
        protocol = wire.direct_protocol(send)
        self.direct.append(protocol is not None)
        await send({"type": "websocket.send", "text": "through send"})
        if protocol is not None:
            assert wire.write(protocol, wire.text_frame("written é"))
            protocol.writable.clear()  # as when the transport's buffer is full
            assert not wire.write(protocol, wire.text_frame("never"))
            protocol.writable.set()
        await send({"type": "websocket.send", "text": "through send again"})
        if protocol is not None:
            assert wire.write(protocol, wire.text_frame("y" * 70000))
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        if protocol is not None:
            self.after_close.append(wire.write(protocol, wire.text_frame("after")))
        self.done.set()


@pytest.fixture
def sansio() -> Any:
    app = Recorder()
    server = ThreadServer(app, ws="websockets-sansio").start()
    yield app, server
    server.stop()


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_frames_written_directly_arrive_in_order_between_the_servers_own(
    sansio: Any, compression: str | None
) -> None:
    """Also on a connection that negotiated permessage-deflate, as browsers do: the
    frames written directly go uncompressed, the server's own compressed."""
    app, server = sansio
    url = server.url.replace("http", "ws") + "/"
    with connect(url, compression=compression) as socket:
        if compression:
            assert socket.protocol.extensions, "permessage-deflate was negotiated"
        received = [socket.recv(timeout=5) for _ in range(4)]
    assert received == ["through send", "written é", "through send again", "y" * 70000]
    assert app.done.wait(5)
    assert app.direct == [True] and app.after_close == [False]


def test_switched_off_every_frame_goes_through_send(sansio: Any) -> None:
    app, server = sansio
    with override_settings(DJANGO_RT={"DIRECT_WRITES": False}):
        with connect(server.url.replace("http", "ws") + "/") as socket:
            received = [socket.recv(timeout=5) for _ in range(2)]
        assert app.done.wait(5)
    assert received == ["through send", "through send again"]
    assert app.direct == [False]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # uvicorn's older protocol
def test_other_servers_sends_are_not_written_to() -> None:
    async def send(message: dict[str, Any]) -> None:
        return None

    assert wire.direct_protocol(send) is None
    assert wire.direct_protocol(SimpleNamespace(send=send).send) is None
    app = Recorder()
    from uvicorn.protocols.websockets.websockets_impl import WebSocketProtocol

    server = ThreadServer(app, ws=WebSocketProtocol).start()  # uvicorn's other protocol
    try:
        with connect(server.url.replace("http", "ws") + "/") as socket:
            assert [socket.recv(timeout=5) for _ in range(2)][0] == "through send"
        assert app.done.wait(5)
    finally:
        server.stop()
    assert app.direct == [False]


def test_a_send_wrapped_by_middleware_is_told_once(
    sansio: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ASGI middleware around the application wraps the socket's send: the frames
    go through it, and the log says why, once per process."""
    monkeypatch.setattr(wire, "_told", [])

    async def traced(message: dict[str, Any]) -> None:
        return None

    with caplog.at_level("INFO", logger="django_rt"):
        assert wire.direct_protocol(traced) is None
        assert wire.direct_protocol(traced) is None
    told = [r.getMessage() for r in caplog.records if "not written directly" in r.getMessage()]
    assert len(told) == 1 and "traced" in told[0]


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


def fake_protocol(paused: bool = False) -> Any:
    writable = asyncio.Event()
    if not paused:
        writable.set()
    return SimpleNamespace(
        writable=writable,
        handshake_complete=True,
        disconnected=False,
        close_sent=False,
        initial_response=None,
        conn=SimpleNamespace(state=State.OPEN),
        transport=FakeTransport(),
    )


class Client:
    def __init__(self, direct: Any) -> None:
        self.direct = direct
        self.writable_until = float("inf")
        self.messages: list[dict[str, Any]] = []

    def write_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


def test_the_hub_writes_one_frame_to_each_writable_socket_and_sends_to_the_others() -> None:
    direct, paused, plain = Client(fake_protocol()), Client(fake_protocol(True)), Client(None)
    waiting = Client(fake_protocol())
    waiting.writable_until = 0.0  # something queued before: it goes the long way
    rest = _write_at_once([direct, paused, plain, waiting], '{"t":"patch"}')
    assert rest == [waiting]
    assert direct.direct.transport.written == [wire.text_frame('{"t":"patch"}')]
    assert direct.messages == [] and paused.direct.transport.written == []
    message = {"type": "websocket.send", "text": '{"t":"patch"}'}
    assert paused.messages == [message] and plain.messages == [message]
