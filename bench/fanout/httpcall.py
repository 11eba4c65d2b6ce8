"""A minimal HTTP/1.1 client on asyncio streams: one connection per request
(``Connection: close``), enough to trigger changes on loopback without a thread."""

from __future__ import annotations

import asyncio
import json
from typing import Any


async def call(
    port: int, method: str, path: str, body: Any = None, raw: bool = False
) -> tuple[int, Any]:
    """Send one request (``body`` as JSON); returns the status and the decoded JSON body
    (its text with ``raw``)."""
    host = "127.0.0.1"
    payload = b"" if body is None else json.dumps(body).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    header, _, content = response.partition(b"\r\n\r\n")
    if not header:
        raise ConnectionError(f"no answer to {method} {path} on port {port}")
    status = int(header.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header.lower():
        content = dechunk(content)
    if raw:
        return status, content.decode()
    try:
        decoded = json.loads(content) if content else None
    except ValueError:
        decoded = content.decode(errors="replace")
    return status, decoded


def dechunk(content: bytes) -> bytes:
    body, at = b"", 0
    while True:
        end = content.index(b"\r\n", at)
        size = int(content[at:end].split(b";")[0], 16)
        if not size:
            return body
        body += content[end + 2 : end + 2 + size]
        at = end + 2 + size + 2


async def checked(port: int, method: str, path: str, body: Any = None) -> Any:
    status, decoded = await call(port, method, path, body)
    if status != 200:
        raise RuntimeError(f"{method} {path} on port {port} answered {status}: {decoded!r}")
    return decoded
