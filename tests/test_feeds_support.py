"""What the change feed tests share (no tests here): a subscriber that keeps what it
receives, a second OS process with Django set up, and a Redis server of a test's own."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.db import connection

from django_rt.changes import Change

ROOT = Path(__file__).resolve().parent.parent
#: Generous: the machine is shared, and nothing here measures speed.
TIMEOUT = 20.0


class Inbox:
    """A feed subscriber that keeps every batch it receives, from any thread."""

    def __init__(self) -> None:
        self.batches: list[list[Change]] = []
        self._condition = threading.Condition()

    def __call__(self, changes: Sequence[Change]) -> None:
        with self._condition:
            self.batches.append(list(changes))
            self._condition.notify_all()

    @property
    def changes(self) -> list[Change]:
        with self._condition:
            return [change for batch in self.batches for change in batch]

    def wait_for(self, predicate: Callable[[list[Change]], bool], timeout: float = TIMEOUT) -> bool:
        """Wait until ``predicate(self.changes)`` holds (bounded: no timing is asserted)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                if predicate([change for batch in self.batches for change in batch]):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)

    def wait_until_has(self, *wanted: Change, timeout: float = TIMEOUT) -> bool:
        return self.wait_for(lambda changes: all(change in changes for change in wanted), timeout)


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def database_settings() -> dict[str, Any]:
    """The test database, as another process's ``DATABASES['default']``."""
    settings = connection.settings_dict
    return {
        key: str(settings[key]) if key == "NAME" else settings[key]
        for key in ("ENGINE", "NAME", "HOST", "PORT", "USER", "PASSWORD", "OPTIONS")
    }


PREAMBLE = """
import json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
from django.conf import settings
config = json.loads(os.environ["DJANGO_RT_FEED_TEST"])
settings.DATABASES = {"default": config["database"]}
settings.DJANGO_RT = {"CHANGE_FEED": config["feed"]}
import django
django.setup()
"""


def run_process(code: str, feed: Any, timeout: float = 60.0) -> str:
    """Run ``code`` in a new Python process with Django set up on the test database and
    ``CHANGE_FEED = feed``; returns what it printed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "DJANGO_RT_FEED_TEST": json.dumps({"database": database_settings(), "feed": feed}),
    }
    script = PREAMBLE + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_answers(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


class RedisServer:
    """A ``redis-server`` of a test's own on a free port, that the test may stop and
    start again (never the machine's own server). No persistence: a restart is empty."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = tempfile.mkdtemp(prefix="django-rt-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(lambda: redis_answers(self.url)), "redis-server did not start"
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None
            assert wait_until(self.refuses), f"port {self.port} still answers"

    def refuses(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return True
        return False

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
