"""Connections against a real uvicorn, with a raw WebSocket client: aborted joins leave
nothing behind, and a slow handler delays only its own page."""

from __future__ import annotations

import gc
import json
import statistics
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from socket import SHUT_RDWR
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from django_rt.connections import registry
from django_rt.hub import Hub
from django_rt.protocol import VERSION, Frame, Key
from tests.helpers import page_config
from tests.testapp.models import Entry

from .servers import ThreadServer

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[ThreadServer]:
    """A server of the test's own: its hub holds this module's connections only."""
    from .asgi import application

    with django_db_blocker.unblock():
        server = ThreadServer(application).start()
        yield server
        server.stop()


def page(server: ThreadServer, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        return page_config(response.read().decode())


def socket(server: ThreadServer) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + "/rt/ws/"
    return connect(url, origin=server.url, open_timeout=10, close_timeout=2)


def join_frame(config: dict[str, Any]) -> str:
    return json.dumps(
        {Key.TYPE: Frame.JOIN, Key.VERSION: VERSION, Key.TOKEN: config["token"], "hash": None}
    )


def receive(ws: ClientConnection, kind: str, timeout: float = 10) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        if frame[Key.TYPE] == kind:
            return frame


@contextmanager
def joined(server: ThreadServer, path: str = "/sec/entries/") -> Iterator[ClientConnection]:
    with socket(server) as ws:
        ws.send(join_frame(page(server, path)))
        receive(ws, Frame.JOINED)
        yield ws


def the_hub(before: set[Hub]) -> Hub:
    (hub,) = [hub for hub in list(Hub._hubs.values()) if hub not in before]
    return hub


def held(hub: Hub) -> int:
    return len(hub.clients) + len(hub.joining) + len(hub.index) + len(hub.sessions)


def rss() -> int:
    gc.collect()
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def settle(hub: Hub, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (held(hub) or len(registry)) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_aborted_joins_leave_nothing_behind(server):
    for index in range(200):  # a page that takes some memory to keep live
        Entry.objects.create(name=f"row {index}")
    before = set(Hub._hubs.values())
    with joined(server):
        pass
    hub = the_hub(before)

    def abort(index: int) -> None:
        config = page(server, "/sec/entries/?delay=0.05")  # a slow view: the join is running
        with socket(server) as ws:
            ws.send(join_frame(config))
            if index % 3 == 0:
                time.sleep(0.02)  # mid-join, as a tab that navigates away during load
                ws.socket.shutdown(SHUT_RDWR)  # no close frame: the connection is just gone
            elif index % 3 == 2:
                # Joined, then gone before the reply of an event.
                receive(ws, Frame.JOINED)
                ws.send(json.dumps({Key.TYPE: Frame.EVENT, Key.REF: 1, Key.HANDLER: "ping"}))
            # else a close frame while the server still runs the view

    def round_of(count: int) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(abort, range(count)))
        for index in range(10):  # changes: a connection left in the hub would buffer them
            Entry.objects.create(name=f"change {index}")
        settle(hub)

    round_of(100)  # warm-up: threads, pools, caches, the first of everything
    baseline = rss()
    round_of(100)
    assert (len(hub.clients), len(hub.joining), len(hub.index), len(hub.sessions)) == (0, 0, 0, 0)
    assert len(registry) == 0
    growth = rss() - baseline
    print(f"\nRSS after 100 aborted joins: {growth / 2**20:+.1f} MiB")
    assert growth < 20 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"
    # And the server still serves.
    with joined(server) as ws:
        assert round_trip(ws, 2) < 10


def round_trip(ws: ClientConnection, ref: int) -> float:
    started = time.monotonic()
    ws.send(json.dumps({Key.TYPE: Frame.EVENT, Key.REF: ref, Key.HANDLER: "ping"}))
    assert receive(ws, Frame.REPLY)[Key.REF] == ref
    return time.monotonic() - started


SLEEP = 2.0


def test_a_slow_handler_delays_only_its_own_page(server):
    with joined(server) as a, joined(server) as b, joined(server) as d:
        baseline = statistics.median(round_trip(b, ref) for ref in range(5))
        sleep = {Key.TYPE: Frame.EVENT, Key.REF: 1, Key.HANDLER: "sleep", "g": {"seconds": SLEEP}}
        started = time.monotonic()
        a.send(json.dumps(sleep))
        time.sleep(0.2)  # a's handler sleeps now

        def join_time() -> float:
            started = time.monotonic()
            with joined(server):
                return time.monotonic() - started

        def patch_time() -> float:
            started = time.monotonic()
            Entry.objects.create(name="live")
            receive(d, Frame.PATCH)
            return time.monotonic() - started

        # While a's handler sleeps: an event of another page, a join, a live update.
        with ThreadPoolExecutor(3) as pool:
            during = pool.submit(round_trip, b, 10)
            join = pool.submit(join_time)
            patch = pool.submit(patch_time)
            during, join, patch = during.result(), join.result(), patch.result()
        receive(a, Frame.REPLY)
        slept = time.monotonic() - started
    print(
        f"\nround trip alone {baseline * 1000:.1f} ms, during a {SLEEP:.0f} s handler "
        f"{during * 1000:.1f} ms; join {join * 1000:.0f} ms; patch {patch * 1000:.0f} ms"
    )
    assert slept >= SLEEP
    # Far below the handler's sleep: what a's handler costs the others is nothing.
    assert during < baseline + SLEEP / 4
    assert join < SLEEP / 2 and patch < SLEEP / 2
