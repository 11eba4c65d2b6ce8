"""Baseline: a bare ASGI application (no Django, no Channels), served by the same uvicorn
with the same options as django-rt. ``POST /trigger`` (a JSON body: ``seq``, ``name``,
``size``) sends one pre-built frame to every open WebSocket and answers the time it
arrived; an ``event`` frame is answered with a ``reply``. The floor for any ASGI
package."""

from __future__ import annotations

import json
import time
from typing import Any

from .frames import reply, sized_frame

#: The ``send`` of every open WebSocket.
CONNECTIONS: dict[Any, None] = {}


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await websocket(receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def websocket(receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    CONNECTIONS[send] = None
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            answer = reply(message.get("text") or "")
            if answer is not None:
                await send({"type": "websocket.send", "text": answer})
    finally:
        CONNECTIONS.pop(send, None)


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] != "POST" or scope["path"] != "/trigger":
        await respond(send, 404, b"{}")
        return
    triggered = time.time()
    data = json.loads(body)
    frame = {"type": "websocket.send", "text": sized_frame(data["seq"], data["name"], data["size"])}
    for send_frame in list(CONNECTIONS):
        await send_frame(frame)
    await respond(send, 200, json.dumps({"t": triggered}).encode())


async def respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
