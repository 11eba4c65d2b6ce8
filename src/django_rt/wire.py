"""One frame's bytes for every socket of an audience.

An audience's connections receive the same ``patch`` text, and a server's WebSocket
frames are not masked (RFC 6455, section 5.1): the bytes on the wire are the same for
all of them too. Through the ASGI ``send`` each socket frames, encodes (and, with
``permessage-deflate``, compresses) the text again, which is most of what a thousand
sockets cost. Where django-rt can read a socket's state, the hub writes the frame it
built once to each socket's transport itself (:func:`write`):

- under uvicorn's ``websockets-sansio`` protocol (``uvicorn --ws websockets-sansio``);
- while the socket is open, its handshake done, no close sent or received, and its
  transport not paused by the flow control (its buffer under the high-water mark);
- as one whole, unfragmented text frame between the frames the server writes itself
  (uvicorn writes whole frames too). Sent without compression on a connection that
  negotiated ``permessage-deflate``: RFC 7692 lets any message go uncompressed, and
  the compressor's state does not depend on messages it did not compress.

Under any other server, or when a socket is not in that state, the frame goes through
the ASGI ``send`` as before. ``DJANGO_RT["DIRECT_WRITES"] = False`` always does.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from .conf import rt_settings

logger = logging.getLogger("django_rt")

_SANSIO = "uvicorn.protocols.websockets.websockets_sansio_impl"
#: What :func:`write` reads of a protocol: a version of uvicorn without them is
#: never written to directly.
_STATE = ("writable", "disconnected", "close_sent", "handshake_complete", "initial_response")


def text_frame(text: str) -> bytes:
    """``text`` as one final, unmasked WebSocket text frame."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


def direct_protocol(send: Any) -> Any | None:
    """The server protocol behind an ASGI ``send`` whose socket :func:`write` may write
    to, or None (another server, another protocol, direct writes switched off)."""
    if not rt_settings.DIRECT_WRITES:
        return None
    module = sys.modules.get(_SANSIO)
    if module is None:
        return None
    protocol = getattr(send, "__self__", None)
    if not isinstance(protocol, module.WebSocketsSansIOProtocol):
        if not type(protocol).__module__.startswith("uvicorn."):
            _wrapped_send(send)  # not uvicorn's own send (its other protocols' are)
        return None
    if getattr(send, "__func__", None) is not module.WebSocketsSansIOProtocol.send:
        return None  # a subclass's own send: it may do more than write
    if not all(hasattr(protocol, name) for name in _STATE) or not hasattr(protocol, "conn"):
        return None
    return protocol


_told: list[bool] = []


def _wrapped_send(send: Any) -> None:
    """Say once per process that an ASGI middleware around the application wraps the
    socket's ``send`` (an error tracker's, a tracer's): django-rt cannot tell what it
    does, so every frame goes through it, framed and encoded for each socket."""
    if _told:
        return
    _told.append(True)
    what = getattr(send, "__qualname__", None) or type(send).__qualname__
    logger.info(
        "django-rt: frames are not written directly to the sockets, because the "
        "server's send is wrapped (by %s): an ASGI middleware around the application. "
        "Wrap the HTTP side only to keep them direct (docs/deploy.md, 'Which server').",
        what,
    )


try:
    from websockets.protocol import State
except ImportError:  # without websockets, uvicorn has no protocol to write to
    _OPEN: Any = None
else:
    _OPEN = State.OPEN


def write(protocol: Any, frame: bytes) -> bool:
    """Write ``frame`` (see :func:`text_frame`) to ``protocol``'s socket if a frame
    written to its transport now goes out as the ASGI ``send`` would send it, without
    waiting; whether it was. (A thousand sockets ask this for every frame: one call.)"""
    if (
        protocol.writable.is_set()
        and protocol.handshake_complete
        and not protocol.disconnected
        and not protocol.close_sent
        and protocol.initial_response is None
        and protocol.conn.state is _OPEN
        and not (transport := protocol.transport).is_closing()
    ):
        transport.write(frame)
        return True
    return False
