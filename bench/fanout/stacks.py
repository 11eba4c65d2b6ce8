"""The stacks under test, each one or more processes of its own on loopback.

- ``django-rt``: uvicorn serving the benchmark's Django project; pages are loaded, then
  joined (``rt``); a change is an ORM write through ``/bench/write/``;
- ``asgi``: the bare ASGI app under the same uvicorn, same options; ``POST /trigger``;
- ``websockets``: the bare ``websockets`` server; ``GET /trigger``;
- ``socketio``: Node (``bench/node/server.js``), clients speak socket.io (``sio``); a
  change is an ORM write in a Django server of its own, which publishes it on Redis;
- ``naive``: the Django project's naive consumer; an ORM write, then every page renders
  again;
- ``django-rt-apart``: one django-rt server with ``RedisFeed``; a change is an ORM write
  in a process of its own (a worker, another web process), as socket.io's is;
- ``django-rt-redis``: two django-rt servers with ``RedisFeed``, a writer process.

Every process logs to a file of the run's directory; its CPU time and memory are read
from ``/proc``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.e2e.servers import free_port, wait_for_port

from .httpcall import checked

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "bench" / "node"
#: Twice django-rt's MAX_FRAME_BYTES, as docs/deploy.md says to run uvicorn; every
#: uvicorn of the benchmark gets the same options.
UVICORN_OPTIONS = ["--ws-max-size", "131072", "--log-level", "warning"]
TICK = os.sysconf("SC_CLK_TCK")
#: The socket.io packet around the frame: 42["patch",FRAME]
SIO_WRAPPING = len('42["patch",]')
PROBLEM = re.compile(r"error|exception|traceback|warning|critical", re.I)


class Process:
    """A process of a stack; ``port`` is where it listens (``None``: it does not)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        port: int | None,
        cwd: Path = ROOT,
        stdin: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.port = port
        self.cwd = cwd
        self.stdin = stdin
        self.popen: subprocess.Popen[str] | None = None

    def start(self) -> Process:
        with self.log.open("w") as output:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                text=True,
                stdin=subprocess.PIPE if self.stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.stdin else output,
                stderr=output if self.stdin else subprocess.STDOUT,
            )
        if self.port is not None:
            try:
                wait_for_port(self.port, timeout=60)
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{self.tail()}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far: utime + stime from ``/proc/PID/stat`` (clock ticks), and the
        sum of the threads' ``schedstat`` (nanoseconds: finer, but without the threads
        that ended)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = (int(fields[11]) + int(fields[12])) / TICK
        scheduled = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                scheduled += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
        return ticks, scheduled / 1e9

    def rss(self) -> int:
        """Resident memory in bytes (``VmRSS`` of ``/proc/PID/status``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def ask(self, data: dict[str, Any]) -> dict[str, Any]:
        """A line to a process that answers each line of its input with one."""
        assert self.popen is not None and self.popen.stdin and self.popen.stdout
        self.popen.stdin.write(json.dumps(data) + "\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} did not answer:\n{self.tail()}")
        return dict(json.loads(line))

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.stdin:
            self.popen.stdin.close()
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(15)
        if self.popen.stdout:
            self.popen.stdout.close()
        self.popen = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def problems(self) -> list[str]:
        """The lines of its log that report a problem."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if PROBLEM.search(line)]


def cpu_delta(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float:
    """CPU seconds between two readings of the same processes: the threads' schedstat,
    unless threads ended meanwhile (their time then shows in ``stat`` only)."""
    total = 0.0
    for (ticks0, sched0), (ticks1, sched1) in zip(before, after, strict=True):
        ticks, sched = ticks1 - ticks0, sched1 - sched0
        total += ticks if ticks - sched > 2 / TICK else sched
    return total


class Stack:
    """One stack's processes, how its clients join and how a change is made."""

    name = ""
    protocol = "plain"
    #: Whether pages are loaded over HTTP first (django-rt's join needs the page's token).
    loads_pages = False
    #: Whether the change is a database write (the rows then change for real).
    writes = True
    #: Whether ``request()`` makes the change over HTTP (the rate scenario needs it).
    writes_over_http = True

    def __init__(self, run: Any) -> None:
        self.run = run
        self.servers: list[Process] = []  # the fan-out servers: their CPU and memory count
        self.helpers: list[Process] = []  # the rest (a Django app, a writer)

    # processes -------------------------------------------------------------------------

    def python(
        self, name: str, args: list[str], feed: Any = None, port: bool = True, stdin: bool = False
    ) -> Process:
        chosen = free_port() if port else None
        argv = [sys.executable, *args]
        argv = [part.replace("{port}", str(chosen)) for part in argv]
        return Process(
            name, argv, self.run.env(feed), self.run.log(self.name, name), chosen, stdin=stdin
        )

    def uvicorn(self, name: str, app: str, feed: Any = None) -> Process:
        args = ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}"]
        return self.python(name, [*args, *UVICORN_OPTIONS], feed)

    def start(self) -> None:
        pin = getattr(self.run, "pin", None)
        if pin is not None and len(self.servers) == 1:
            # Its CPU of its own; the helpers run with the clients (see harness.pinning).
            server = self.servers[0]
            server.argv = ["taskset", "-c", ",".join(map(str, sorted(pin[0]))), *server.argv]
        for process in [*self.helpers, *self.servers]:
            process.start()

    def stop(self) -> None:
        for process in [*self.servers, *self.helpers]:
            process.stop()

    def cpu(self) -> list[tuple[float, float]]:
        return [server.cpu() for server in self.servers]

    def helpers_cpu(self) -> list[tuple[float, float]]:
        return [helper.cpu() for helper in self.helpers]

    def rss(self) -> int:
        return sum(server.rss() for server in self.servers)

    def problems(self) -> list[str]:
        return [
            f"{p.name}: {line}" for p in [*self.servers, *self.helpers] for line in p.problems()
        ]

    # clients and changes ---------------------------------------------------------------

    def endpoints(self) -> list[tuple[int, str]]:
        """Where sockets connect (port, path), in turn."""
        raise NotImplementedError

    def page_ports(self) -> list[int]:
        return [port for port, _ in self.endpoints()]

    async def trigger(self, change: dict[str, Any]) -> dict[str, Any]:
        """Make the change; returns ``{"t": when it was committed (or triggered)}``, and
        the new row's ``pk`` for an insert."""
        request = self.request(change)
        return dict(
            await checked(request["port"], request["method"], request["path"], request["body"])
        )

    def request(self, change: dict[str, Any]) -> dict[str, Any]:
        """The HTTP request that makes the change (for the rate writer)."""
        raise NotImplementedError


class DjangoRT(Stack):
    name = "django-rt"
    protocol = "rt"
    loads_pages = True

    def __init__(self, run: Any) -> None:
        super().__init__(run)
        self.servers = [self.uvicorn("server", "bench.fanout.asgi:application")]

    def endpoints(self) -> list[tuple[int, str]]:
        return [(server.port or 0, "/rt/ws/") for server in self.servers]

    def request(self, change: dict[str, Any]) -> dict[str, Any]:
        port = self.servers[0].port
        return {"port": port, "method": "POST", "path": "/bench/write/", "body": change}


class Naive(DjangoRT):
    name = "naive"
    protocol = "plain"
    loads_pages = False

    def endpoints(self) -> list[tuple[int, str]]:
        return [(self.servers[0].port or 0, "/naive/ws/")]


class BareASGI(Stack):
    name = "asgi"
    writes = False

    def __init__(self, run: Any) -> None:
        super().__init__(run)
        self.servers = [self.uvicorn("server", "bench.fanout.bare_asgi:application")]

    def endpoints(self) -> list[tuple[int, str]]:
        return [(self.servers[0].port or 0, "/ws")]

    def request(self, change: dict[str, Any]) -> dict[str, Any]:
        body = {"seq": change["seq"], "name": change["name"], "size": change["size"]}
        return {"port": self.servers[0].port, "method": "POST", "path": "/trigger", "body": body}


class BareWebsockets(Stack):
    name = "websockets"
    writes = False

    def __init__(self, run: Any) -> None:
        super().__init__(run)
        self.servers = [self.python("server", ["-m", "bench.fanout.bare_ws", "--port", "{port}"])]

    def endpoints(self) -> list[tuple[int, str]]:
        return [(self.servers[0].port or 0, "/")]

    def request(self, change: dict[str, Any]) -> dict[str, Any]:
        query = urlencode({"seq": change["seq"], "name": change["name"], "size": change["size"]})
        return {
            "port": self.servers[0].port,
            "method": "GET",
            "path": f"/trigger?{query}",
            "body": None,
        }


class SocketIO(Stack):
    name = "socketio"
    protocol = "sio"

    def __init__(self, run: Any) -> None:
        super().__init__(run)
        port = free_port()
        env = {**os.environ, "PORT": str(port), "CHANNEL": run.channel, "REDIS_URL": run.redis}
        node = shutil.which("node") or "node"
        self.servers = [
            Process(
                "node", [node, "server.js"], env, run.log(self.name, "node"), port, cwd=NODE_DIR
            )
        ]
        # The Django app that saves and publishes (its CPU is not the fan-out's).
        self.helpers = [self.uvicorn("app", "bench.fanout.asgi:application")]

    def endpoints(self) -> list[tuple[int, str]]:
        return [(self.servers[0].port or 0, "/socket.io/?EIO=4&transport=websocket")]

    def request(self, change: dict[str, Any]) -> dict[str, Any]:
        body = {**change, "publish": self.run.channel, "size": change["size"] - SIO_WRAPPING}
        return {
            "port": self.helpers[0].port,
            "method": "POST",
            "path": "/bench/write/",
            "body": body,
        }


class DjangoRTApart(DjangoRT):
    """One django-rt server, and a writer process that makes the changes, one SQLite
    file, ``RedisFeed``: the server's CPU is the fan-out's, with none of the write's
    (Django's request, the ORM's statements), as the socket.io stack's is."""

    name = "django-rt-apart"
    #: No ``request()``: the rate scenario, which writes over HTTP, does not run.
    writes_over_http = False
    SERVERS: tuple[str, ...] = ("server",)

    def __init__(self, run: Any) -> None:
        Stack.__init__(self, run)
        feed = {
            "BACKEND": "django_rt.changes.redis.RedisFeed",
            "LOCATION": run.redis,
            "OPTIONS": {"STREAM": run.stream},
        }
        self.servers = [
            self.uvicorn(name, "bench.fanout.asgi:application", feed) for name in self.SERVERS
        ]
        self.helpers = [
            self.python(
                "writer", ["-m", "bench.fanout.writer", "orm"], feed, port=False, stdin=True
            )
        ]

    async def trigger(self, change: dict[str, Any]) -> dict[str, Any]:
        done = await asyncio.to_thread(self.helpers[0].ask, change)
        if "error" in done:
            raise RuntimeError(f"the writer failed: {done['error']}")
        return done

    def request(self, change: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("the rate scenario writes through the server")


class DjangoRTRedis(DjangoRTApart):
    """Two django-rt servers and a writer process, one SQLite file, ``RedisFeed``."""

    name = "django-rt-redis"
    SERVERS = ("a", "b")


STACKS: dict[str, type[Stack]] = {
    stack.name: stack
    for stack in (DjangoRT, DjangoRTApart, BareASGI, BareWebsockets, SocketIO, Naive, DjangoRTRedis)
}
