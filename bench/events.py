"""Event round trips through django-rt against a bare Channels consumer, in one run.

    .venv/bin/python bench/events.py [--events 2000] [--clients 1,10]

Starts uvicorn (one process, loopback), then for each number of concurrent clients
sends events and waits for each reply: first to a bare Channels echo consumer
(the baseline: JSON in, JSON out), then to an RTView handler (token join, frame checks,
gathered value coercion, a sync handler in a worker thread, an RTResponse). Prints
events per second and the ratio django-rt / baseline: the cost django-rt adds on top of
the Channels floor. Wall-clock numbers are noisy here; the ratio is the figure to watch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.e2e.servers import free_port, wait_for_port  # noqa: E402

ORIGIN = "http://127.0.0.1"


async def run_clients(
    url: str, clients: int, events: int, frame: dict, join: dict | None
) -> tuple[float, float]:
    per_client = max(1, events // clients)

    async def client() -> list[float]:
        async with websockets.connect(url, origin=ORIGIN, max_size=None) as ws:
            if join:
                await ws.send(json.dumps(join))
                reply = json.loads(await ws.recv())
                assert reply["t"] == "joined", reply
            latencies = []
            for ref in range(per_client):
                started = time.perf_counter()
                await ws.send(json.dumps({**frame, "ref": ref}))
                reply = json.loads(await ws.recv())
                assert reply["t"] == "reply" and reply["ref"] == ref, reply
                latencies.append(time.perf_counter() - started)
            return latencies

    started = time.perf_counter()
    results = await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return clients * per_client / elapsed, statistics.median(
        latency for r in results for latency in r
    )


def page_config(base: str) -> dict:
    html = urllib.request.urlopen(base + "/").read().decode()
    return json.loads(re.search(r"data-rt-config>(.*?)</script>", html).group(1))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--clients", default="1,10")
    args = parser.parse_args()
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for_port(port)
        base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        config = page_config(base)
        frame = {"t": "event", "h": "mybutton_click", "g": {"gathered": "hello"}}
        join = {"t": "join", "v": 1, "token": config["token"], "hash": config["hash"]}
        print(
            f"{'clients':>7} {'baseline ev/s':>14} {'django-rt ev/s':>15} {'ratio':>6} "
            f"{'baseline p50':>13} {'django-rt p50':>14}"
        )
        for clients in (int(c) for c in args.clients.split(",")):
            await run_clients(ws + "/echo/", clients, 200, frame, None)  # warm up
            await run_clients(ws + "/rt/ws/", clients, 200, frame, join)
            base_rate, base_p50 = await run_clients(
                ws + "/echo/", clients, args.events, frame, None
            )
            rt_rate, rt_p50 = await run_clients(ws + "/rt/ws/", clients, args.events, frame, join)
            print(
                f"{clients:>7} {base_rate:>14.0f} {rt_rate:>15.0f} {rt_rate / base_rate:>6.2f} "
                f"{base_p50 * 1000:>11.2f}ms {rt_p50 * 1000:>12.2f}ms"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
