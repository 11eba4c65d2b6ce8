"""The demo as a user runs it: under `manage.py runserver` (daphne) and under uvicorn,
with DEBUG on and no static configuration, the client loads and events work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .servers import ROOT, free_port, wait_for_port

EXAMPLE = ROOT / "example"


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    database = Path(tmp_path_factory.mktemp("demo")) / "demo.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "DEMO_DATABASE": str(database),
        "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(ROOT / "src")]),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    for command in (["migrate", "--noinput"], ["seed_entries"]):
        subprocess.run(
            [sys.executable, str(EXAMPLE / "manage.py"), *command],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    return env


SERVERS = {
    "runserver": lambda port: [
        sys.executable,
        str(EXAMPLE / "manage.py"),
        "runserver",
        f"127.0.0.1:{port}",
        "--noreload",
    ],
    "uvicorn": lambda port: [
        sys.executable,
        "-m",
        "uvicorn",
        "mysite.asgi:application",
        "--port",
        str(port),
    ],
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_demo_click_example(server, demo_env, page):
    port = free_port()
    process = subprocess.Popen(
        SERVERS[server](port),
        cwd=EXAMPLE,
        env=demo_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        page.goto(f"http://127.0.0.1:{port}/example/")
        page.wait_for_selector("html.rt-connected")
        page.fill("#myinput", server)
        page.click("#mybutton")
        page.wait_for_selector(f"#result:text-is('Result: {server}')")
        page.goto(f"http://127.0.0.1:{port}/entries/")
        page.wait_for_selector("html.rt-connected")
        page.fill("#add-entry input[name=name]", "durian")
        page.press("#add-entry input[name=name]", "Enter")
        page.wait_for_selector("#entries li:has-text('durian')")
        assert page.url.endswith("/entries/")
    finally:
        process.terminate()
        process.wait(timeout=10)
