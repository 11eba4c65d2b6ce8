"""A connection's outbox: frames leave in order, the hub never waits for a socket, and
a socket that falls too far behind is resynced instead of buffered without end."""

from __future__ import annotations

import asyncio
import json
import time

from django_rt.asgi import SERVER_SEND
from django_rt.consumer import OUTBOX_LIMIT, RTConsumer
from django_rt.hub import encode_patch
from django_rt.live import audience


class SlowSocket:
    """A server's ``send`` that waits until the test lets frames through."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, message: dict) -> None:
        await self.open.wait()
        assert message["type"] == "websocket.send"
        self.sent.append(message["text"])


def consumer_on(socket: SlowSocket) -> RTConsumer:
    consumer = RTConsumer()
    consumer.scope = {SERVER_SEND: socket.send}
    consumer.access_until = time.monotonic() + 3600
    consumer.resyncs = []  # type: ignore[attr-defined]
    consumer.want_resync = consumer.resyncs.append  # type: ignore[method-assign,attr-defined]
    return consumer


def patch(number: int) -> list[dict]:
    return [{"o": "region", "id": "1", "html": str(number)}]


async def settle(consumer: RTConsumer) -> None:
    while consumer.flushing is not None:
        await asyncio.sleep(0.001)


async def test_frames_leave_in_order_without_the_caller_waiting():
    socket = SlowSocket()
    consumer = consumer_on(socket)
    for number in range(5):
        consumer.push_patch(patch(number))  # returns at once: the socket is blocked
    await consumer.send_frame({"t": "reply", "ref": 1, "cmds": []})
    # The first one is on its way, stuck in the socket; the others wait behind it.
    assert socket.sent == [] and len(consumer.outbox) == 5
    socket.open.set()
    await settle(consumer)
    frames = [json.loads(text) for text in socket.sent]
    assert [frame["ops"][0]["html"] for frame in frames[:5]] == ["0", "1", "2", "3", "4"]
    assert frames[5]["t"] == "reply"
    assert consumer.resyncs == []


async def test_a_socket_that_falls_behind_is_resynced_and_keeps_its_replies():
    socket = SlowSocket()
    consumer = consumer_on(socket)
    consumer.push_patch(patch(0))
    await asyncio.sleep(0)  # the first frame is on its way, stuck in the socket
    for number in range(1, OUTBOX_LIMIT * 3):
        consumer.push_patch(patch(number))
        if number == 100:
            await consumer.send_frame({"t": "reply", "ref": 7, "cmds": []})
    assert consumer.outbox_patches <= OUTBOX_LIMIT  # bounded, whatever the hub sends
    socket.open.set()
    await settle(consumer)
    frames = [json.loads(text) for text in socket.sent]
    # The reply was kept; what the socket could not take became one resync of the page.
    assert {"t": "reply", "ref": 7, "cmds": []} in frames
    assert consumer.resyncs == [None]
    assert len(frames) < OUTBOX_LIMIT * 2


async def test_an_encoded_frame_gets_each_connections_own_csrf_token():
    sockets = [SlowSocket(), SlowSocket()]
    consumers = [consumer_on(socket) for socket in sockets]
    for socket, consumer, token in zip(sockets, consumers, ("one", "two"), strict=True):
        socket.open.set()
        consumer.csrf_token = token
    ops = [{"o": "region", "id": "1", "html": f'<input value="{audience.CSRF_PLACEHOLDER}">'}]
    text = encode_patch(ops)  # once, for both
    for consumer in consumers:
        consumer.push_patch(ops, text)
    for consumer in consumers:
        await settle(consumer)
    assert [json.loads(s.sent[0])["ops"][0]["html"] for s in sockets] == [
        '<input value="one">',
        '<input value="two">',
    ]


async def test_an_idle_socket_gets_its_frame_at_once_without_a_task():
    socket = SlowSocket()
    socket.open.set()
    consumer = consumer_on(socket)
    tasks = len(asyncio.all_tasks())
    consumer.push_patch(patch(1))
    assert [json.loads(text)["ops"][0]["html"] for text in socket.sent] == ["1"]
    assert consumer.flushing is None and len(asyncio.all_tasks()) == tasks


async def test_a_patch_waits_for_an_expired_access_verdict():
    socket = SlowSocket()
    socket.open.set()
    consumer = consumer_on(socket)
    consumer.access_until = 0.0
    checked = asyncio.Event()

    async def allowed() -> bool:
        await checked.wait()
        return True

    consumer.allowed = allowed  # type: ignore[method-assign]
    consumer.push_patch(patch(1))
    await asyncio.sleep(0.01)
    assert socket.sent == []  # not before the view said the user may still see it
    checked.set()
    await settle(consumer)
    assert len(socket.sent) == 1


async def test_a_socket_that_left_while_a_send_waited_is_gone():
    class Leaving(SlowSocket):
        async def send(self, message: dict) -> None:
            await self.open.wait()
            raise OSError("the peer left")

    socket = Leaving()
    consumer = consumer_on(socket)
    consumer.push_patch(patch(1))
    consumer.push_patch(patch(2))
    socket.open.set()
    await settle(consumer)
    assert consumer.gone and not consumer.outbox


async def test_a_socket_is_writable_at_once_only_while_open_idle_and_its_access_fresh():
    socket = SlowSocket()
    consumer = consumer_on(socket)
    assert consumer.writable_until > time.monotonic()
    consumer.push_patch(patch(1))  # stuck in the socket: the next ones must queue
    assert consumer.flushing is not None and consumer.writable_until == 0.0
    socket.open.set()
    await settle(consumer)
    assert consumer.writable_until > time.monotonic()  # idle again
    consumer.access_until = time.monotonic() - 1  # the verdict ran out
    assert consumer.writable_until < time.monotonic()
    consumer.access_until = time.monotonic() + 3600
    consumer.ending = True
    assert consumer.writable_until == 0.0
    consumer.ending = False
    consumer.gone = True
    assert consumer.writable_until == 0.0


async def test_an_audiences_frame_goes_at_once_only_to_the_sockets_that_take_it():
    """The hub's loop over a thousand sockets: one message for all the writable ones;
    a socket whose verdict ran out, or that is still sending, gets it through
    push_patch, after its access check and in order; a frame with the CSRF
    placeholder is made for each socket."""
    from django_rt.hub import _write_at_once

    sockets = [SlowSocket() for _ in range(4)]
    for socket in sockets[:2]:
        socket.open.set()  # the other two take a frame only once the test lets them
    fresh, expired, busy, last = (consumer_on(socket) for socket in sockets)
    expired.access_until = 0.0
    busy.push_patch(patch(0))  # waits in its socket
    text = encode_patch(patch(1))
    rest = _write_at_once([fresh, expired, busy, last], text)
    assert rest == [expired, busy]
    assert sockets[0].sent == [text]
    assert sockets[1].sent == [] and sockets[2].sent == []
    assert sockets[3].sent == [] and last.flushing is not None  # on its way, not lost
    sockets[3].open.set()
    await settle(last)
    assert sockets[3].sent == [text]
    form = encode_patch([{"o": "region", "id": "1", "html": audience.CSRF_PLACEHOLDER}])
    assert _write_at_once([fresh, last], form) == [fresh, last]
