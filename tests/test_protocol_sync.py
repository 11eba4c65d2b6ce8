"""The protocol is defined once in Python and once in rt.js: both must agree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from django_rt import protocol

from .requirements import need, node

ROOT = Path(__file__).resolve().parents[1]


def client_protocol() -> dict:
    executable = node()
    need("node", executable is not None, "`node` is not on PATH")
    result = subprocess.run(
        [executable, str(ROOT / "tests/js/dump_protocol.mjs")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def test_client_and_server_protocols_agree():
    assert client_protocol() == protocol.as_dict()


def test_protocol_names_are_unique_within_each_group():
    for group, members in protocol.as_dict().items():
        if isinstance(members, dict):
            assert len(set(members.values())) == len(members), group
