"""Several processes of the test project on one database, as a deployment runs it:
uvicorn servers, shells (``python -c`` with ``django.setup()``, as ``manage.py shell``),
the database they share and the change feed between them (tests/e2e/test_processes.py).

Every process reads its database and its feed from ``DJANGO_RT_E2E``
(tests/e2e/feed_settings.py); what it logs goes to a file of its own, which a failing
test shows.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO, Any

from .servers import ROOT, free_port, wait_for_port

SETTINGS = "tests.e2e.feed_settings"
#: Generous: the machine is shared, and nothing here measures speed.
TIMEOUT = 60.0
#: Twice django-rt's MAX_FRAME_BYTES, as docs/deploy.md says to run uvicorn.
WS_MAX_SIZE = 131072


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Deployment:
    """The processes of one test module: they share ``database`` (a
    ``DATABASES['default']`` dict) and ``feed`` (a ``CHANGE_FEED`` value)."""

    def __init__(self, database: dict[str, Any], feed: Any, directory: Path) -> None:
        self.database = database
        self.feed = feed
        self.directory = directory
        self.servers: list[Server] = []
        self.shells: list[Shell] = []
        self.scripts = 0

    @property
    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # The browser fixture lets the test's own thread use the ORM; the servers must
            # keep Django's async-safety checks.
            if key not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            DJANGO_SETTINGS_MODULE=SETTINGS,
            PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            DJANGO_RT_E2E=json.dumps({"database": self.database, "feed": self.feed}),
        )
        return env

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def logs(self) -> str:
        """The end of every process's log, for a failure's message."""
        parts = []
        for path in sorted(self.directory.glob("*.log")):
            text = tail(path)
            if text.strip():
                parts.append(f"--- {path.name}\n{text}")
        return "\n".join(parts) or "(the processes logged nothing)"

    def manage(self, *args: str) -> str:
        """``manage.py ARGS`` (``django-admin`` with the test project's settings)."""
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def migrate(self) -> None:
        """``migrate``: creates the tables the first time; installs PostgresFeed's
        triggers, or removes them for another feed, every time."""
        self.manage("migrate", "--noinput", "-v", "0")

    def run(self, code: str) -> str:
        """Run ``code`` in a new process with Django set up, until it exits (as a
        management command or a cron job would); returns what it printed."""
        self.scripts += 1
        script = "import django\ndjango.setup()\n" + textwrap.dedent(code)
        with self.log(f"script-{self.scripts}").open("w") as log:
            done = subprocess.run(
                [sys.executable, "-c", script],
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=TIMEOUT,
            )
        assert done.returncode == 0, f"the script failed:\n{self.logs()}"
        return done.stdout

    def server(self) -> Server:
        server = Server(self, f"server-{len(self.servers) + 1}").start()
        self.servers.append(server)
        return server

    def shell(self) -> Shell:
        shell = Shell(self, f"shell-{len(self.shells) + 1}")
        self.shells.append(shell)
        return shell

    def close(self) -> None:
        for shell in self.shells:
            shell.close()
        for server in self.servers:
            server.stop()


class Server:
    """``uvicorn`` serving the test project in a process of its own, on one port for
    its whole life (a restart comes back where its pages reconnect)."""

    def __init__(self, deployment: Deployment, name: str) -> None:
        self.deployment = deployment
        self.name = name
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        assert self.process is None, f"{self.name} runs already"
        self.starts += 1
        log = self.deployment.log(f"{self.name}.{self.starts}")
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.e2e.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--ws-max-size",
                    str(WS_MAX_SIZE),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=self.deployment.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port, timeout=TIMEOUT)
        except TimeoutError:
            self.kill()
            raise AssertionError(f"{self.name} did not start:\n{tail(log)}") from None
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to its sockets or its database."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(TIMEOUT)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(TIMEOUT)
            self.process = None


#: The loop of a shell: each line of its input is the JSON of some code to run; each
#: line of its output says what that code printed, or how it failed.
SHELL = """
import contextlib, io, json, sys, traceback
import django
django.setup()
namespace = {"__name__": "__shell__"}
for line in sys.stdin:
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(json.loads(line), namespace)
        reply = {"printed": printed.getvalue()}
    except BaseException:
        reply = {"error": traceback.format_exc()}
    sys.__stdout__.write(json.dumps(reply) + "\\n")
    sys.__stdout__.flush()
"""


class Shell:
    """A long-lived process with Django set up, as ``manage.py shell`` (or a worker)
    is: it runs code on demand, and exits, sending what its feed still holds, when
    closed."""

    def __init__(self, deployment: Deployment, name: str) -> None:
        self.deployment = deployment
        self.name = name
        self._log = deployment.log(name)
        with self._log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SHELL],
                cwd=ROOT,
                env=deployment.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def __call__(self, code: str) -> str:
        """Run ``code`` (its statements commit one by one, as in a shell); returns
        what it printed."""
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(textwrap.dedent(code)) + "\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], TIMEOUT)
        line = stdout.readline() if ready else ""
        assert line, f"{self.name} did not answer:\n{tail(self._log)}"
        reply = json.loads(line)
        assert "error" not in reply, f"{self.name} failed:\n{reply['error']}"
        return str(reply["printed"])

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()


class PostgresDatabase:
    """A database of its own on the PostgreSQL server of the tests (the ``DJANGO_RT_PG_*``
    variables, as ``./dev`` sets them), created and dropped by a fixture."""

    def __init__(self) -> None:
        self.host = os.environ.get("DJANGO_RT_PG_HOST", "127.0.0.1")
        self.port = os.environ.get("DJANGO_RT_PG_PORT", "5432")
        self.user = os.environ.get("DJANGO_RT_PG_USER", "postgres")
        self.password = os.environ.get("DJANGO_RT_PG_PASSWORD", "")
        self.name = f"django_rt_e2e_{os.getpid()}"

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": self.host,
            "PORT": self.port,
            "USER": self.user,
            "PASSWORD": self.password,
            "NAME": self.name,
        }

    def _connect(self, dbname: str) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            connect_timeout=3,
            autocommit=True,
        )

    def available(self) -> bool:
        try:
            self._connect("postgres").close()
        except Exception:
            return False
        return True

    def create(self) -> PostgresDatabase:
        self.drop()
        with self._connect("postgres") as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self) -> None:
        with self._connect("postgres") as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def psql(self, statement: str) -> str:
        """Run ``statement`` as ``psql`` would, on a connection that is not Django's
        (with ``psql`` itself where it is installed)."""
        binary = shutil.which("psql")
        if binary is None:
            with self._connect(self.name) as connection:
                connection.execute(statement)
            return ""
        done = subprocess.run(
            [
                binary,
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                self.name,
                "-c",
                statement,
            ],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, f"psql failed: {done.stderr}"
        return done.stdout
