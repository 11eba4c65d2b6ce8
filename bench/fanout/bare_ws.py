"""Baseline: a bare server of the ``websockets`` library, in a process of its own.

    python -m bench.fanout.bare_ws --port PORT

``GET /trigger?seq=&name=&size=`` sends one frame of that size to every open WebSocket
(``broadcast()``: the same bytes, written to every connection at once) and answers the
time it arrived; an ``event`` frame is answered with a ``reply``. The least a Python
server can do per frame."""

from __future__ import annotations

import argparse
import json
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve

from .frames import reply, sized_frame

CONNECTIONS: set[ServerConnection] = set()


async def handler(connection: ServerConnection) -> None:
    CONNECTIONS.add(connection)
    try:
        async for message in connection:
            answer = reply(message if isinstance(message, str) else "")
            if answer is not None:
                await connection.send(answer)
    finally:
        CONNECTIONS.discard(connection)


def process_request(connection: ServerConnection, request: Any) -> Any:
    url = urlsplit(request.path)
    if url.path != "/trigger":
        return None  # a WebSocket handshake
    triggered = time.time()
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    broadcast(CONNECTIONS, sized_frame(int(query["seq"]), query["name"], int(query["size"])))
    return connection.respond(HTTPStatus.OK, json.dumps({"t": triggered}))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    async with serve(
        handler,
        "127.0.0.1",
        args.port,
        process_request=process_request,
        compression=None,
        max_size=131072,
        backlog=2048,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    from .load import run

    run(main())
