"""What an idle open page costs the server, and what its join costs.

    .venv/bin/python bench/memory.py [--pages 100,1000,5000] [--rows 100]

In one process: the demo project (``example/``) on a fresh SQLite file holding
``--rows`` entries. N sockets load and join its entries page (``/entries/``, a list of
every entry, with an add form and its CSRF token) through django-rt's real consumer, the
project's middleware and ASGI application (Channels' ``WebsocketCommunicator``, in
process). Python's ``tracemalloc`` counts what is allocated and still held once every
page has joined and the sockets are idle; ``time.process_time()`` counts the CPU of
the joins.

The baseline, in the same run: the same number of sockets accepted by a bare Channels
consumer (the socket, the ASGI scope, the test communicator on the other end). It is
subtracted: "per page" is what django-rt keeps for a page beyond any Channels socket.
Each size is measured twice: pages that share their audience's live page (the default)
and pages that each keep their own (``rt_shared = False``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "example"), str(ROOT), str(ROOT / "src")]
os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
os.environ["DEMO_DATABASE"] = os.path.join(tempfile.mkdtemp(), "memory.sqlite3")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the setup below runs on the loop

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from demo.models import Entry  # noqa: E402
from demo.views import ModelExampleView  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from django_rt.asgi import get_asgi_application  # noqa: E402
from django_rt.hub import Hub  # noqa: E402

settings.DJANGO_RT = {"MAX_CONNECTIONS_PER_TOKEN": 1_000_000, "MAX_CONNECTIONS_PER_USER": 10**6}
settings.ALLOWED_HOSTS = ["*"]

CONFIG = re.compile(r"<script type=\"application/json\" data-rt-config>(.*?)</script>", re.S)


class Bare(AsyncWebsocketConsumer):
    """The least a Channels socket is."""


def load_page() -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
    client = Client()
    response = client.get("/entries/")
    assert response.status_code == 200, response.status_code
    config = json.loads(CONFIG.search(response.content.decode()).group(1))
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", cookie.encode()),
    ]
    return config, headers


async def open_sockets(application: Any, path: str, headers: list, count: int, join: Any) -> list:
    sockets = []
    for _ in range(count):
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect()
        assert connected
        if join is not None:
            await socket.send_json_to(join)
            frame = await socket.receive_json_from(timeout=30)
            assert frame["t"] == "joined", frame
        sockets.append(socket)
    return sockets


async def measure(application: Any, path: str, headers: list, count: int, join: Any) -> tuple:
    """What ``count`` sockets hold once idle (tracemalloc on), and the CPU seconds of
    opening them (a second round, tracemalloc off: it slows every allocation)."""
    held = 0
    for traced in (True, False):
        if traced:
            tracemalloc.start()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        cpu = time.process_time()
        sockets = await open_sockets(application, path, headers, count, join)
        cpu = time.process_time() - cpu
        await asyncio.sleep(0.2)  # nothing pending: idle pages
        gc.collect()
        if traced:
            held = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
        hub = Hub._hubs.get(asyncio.get_running_loop())
        live = len(hub.members) if hub is not None else 0
        for socket in sockets:
            await socket.disconnect()
    return held, cpu, live


async def run(sizes: list[int]) -> list[dict[str, Any]]:
    config, headers = load_page()
    join = {"t": "join", "v": config["v"], "token": config["token"], "hash": config["hash"]}
    django_rt = get_asgi_application()
    bare = Bare.as_asgi()
    results = []
    for count in sizes:
        base_held, base_cpu, _ = await measure(bare, "/bare/", headers, count, None)
        for shared in (True, False):
            ModelExampleView.rt_shared = shared
            held, cpu, live = await measure(django_rt, config["url"], headers, count, join)
            results.append(
                {
                    "pages": count,
                    "kind": "audience" if shared else "own",
                    "per_page_bytes": (held - base_held) / count,
                    "bare_socket_bytes": base_held / count,
                    "join_cpu_us": (cpu - base_cpu) / count * 1e6,
                    "bare_socket_cpu_us": base_cpu / count * 1e6,
                    "live_pages": live,
                }
            )
    ModelExampleView.rt_shared = True
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", default="100,1000,5000")
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    Entry.objects.bulk_create(Entry(name=f"entry {index:03}") for index in range(args.rows))
    results = asyncio.run(run([int(size) for size in args.pages.split(",")]))
    print(
        f"{'pages':>6} {'kind':>8} {'per page':>10} {'bare socket':>12} "
        f"{'join CPU':>10} {'bare socket':>12} {'live pages':>10}"
    )
    for row in results:
        print(
            f"{row['pages']:>6} {row['kind']:>8} {row['per_page_bytes'] / 1024:>8.1f}KiB "
            f"{row['bare_socket_bytes'] / 1024:>10.1f}KiB {row['join_cpu_us'] / 1000:>8.2f}ms "
            f"{row['bare_socket_cpu_us'] / 1000:>10.2f}ms {row['live_pages']:>10}"
        )


if __name__ == "__main__":
    main()
