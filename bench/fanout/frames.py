"""The frames that the baselines send: the change's sequence number and row name, padded
with spaces to the size of django-rt's patch frame for the same change."""

from __future__ import annotations

import json


def sized_frame(seq: int, name: str, size: int) -> str:
    """A JSON text frame of ``size`` bytes (at least its content's size) naming a change.
    The padding is a string, not whitespace: a server that decodes the frame and encodes
    it again (socket.io's) sends it at the same size."""
    frame = {"t": "patch", "ops": [{"o": "bench", "seq": seq, "name": name}], "pad": ""}
    bare = len(json.dumps(frame, separators=(",", ":")))
    frame["pad"] = "." * max(0, size - bare)
    return json.dumps(frame, separators=(",", ":"))


def reply(text: str) -> str | None:
    """The reply to an ``event`` frame (as django-rt's protocol shapes it), else ``None``."""
    if '"event"' not in text:
        return None
    frame = json.loads(text)
    if frame.get("t") != "event":
        return None
    return json.dumps({"t": "reply", "ref": frame.get("ref"), "cmds": []})
