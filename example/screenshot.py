"""Take the README's screenshot of the team board: two browsers side by side.

From the repository root::

    .venv/bin/python example/screenshot.py            # writes docs/demo.png
    .venv/bin/python example/screenshot.py --out /tmp/board.png

It serves the demo on a fresh SQLite database in a temporary folder (``migrate``,
``seed_entries``, ``runserver`` on a free port: your own demo database is not touched),
opens the board in two Chromium windows as two team members (Ana and Ben), lets Ana add
a task for Ben and Ben tick one off, waits until each window shows the other's change,
and saves both windows side by side in one PNG. It needs Playwright (in the test extras)
and Chromium at ``/usr/bin/chromium`` (or ``DJANGO_RT_CHROMIUM``).
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROMIUM = os.environ.get("DJANGO_RT_CHROMIUM", "/usr/bin/chromium")
WINDOW = {"width": 960, "height": 1000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(database: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "DEMO_DATABASE": str(database),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
    }
    manage = [sys.executable, str(HERE / "manage.py")]
    for command in (["migrate", "--noinput"], ["seed_entries"]):
        subprocess.run([*manage, *command], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                server.terminate()
                raise
            time.sleep(0.1)


def window(browser: Any, base: str, username: str) -> Any:
    page = browser.new_context(viewport=WINDOW).new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/board/")
    page.click(f".picker button[value={username}]")
    page.wait_for_selector("html.rt-connected")
    return page


def frame(label: str, png: bytes) -> str:
    """One window: a title bar with its label, then the page."""
    data = base64.b64encode(png).decode()
    return (
        f'<figure><div class="bar"><i></i><i></i><i></i><span>{label}</span></div>'
        f'<img src="data:image/png;base64,{data}" width="{WINDOW["width"]}"></figure>'
    )


SHEET = """
body { margin: 0; padding: 28px; background: #d9dcea; display: flex; gap: 28px;
       font: 14px system-ui, sans-serif; width: max-content; }
figure { margin: 0; border-radius: 10px; overflow: hidden; background: #fff;
         box-shadow: 0 10px 30px rgb(20 24 40 / 22%); }
.bar { display: flex; align-items: center; gap: 7px; height: 34px; padding: 0 12px;
       background: #eceef5; border-bottom: 1px solid #d5d8e3; color: #4a5163; }
.bar i { width: 11px; height: 11px; border-radius: 50%; background: #c4c8d6; }
.bar span { margin-left: 10px; }
img { display: block; }
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "demo.png")
    out = parser.parse_args().out

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        server, base = serve(Path(folder) / "demo.sqlite3")
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            ana, ben = window(browser, base, "ana"), window(browser, base, "ben")

            ana.fill("#new-title", "Record the demo video")
            ana.select_option("#new-assignee", label="Ben")
            ana.fill("#new-points", "3")
            ana.press("#new-title", "Enter")
            ben.wait_for_selector("#my-tasks li:has-text('Record the demo video')")

            profile = "#open-tasks .task:has(input.title[value='Profile the search page'])"
            ben.check(f"{profile} input.check")
            done = ".task:has(.title:text-is('Profile the search page'))"
            for page in (ana, ben):
                page.wait_for_selector(f"#done-tasks {done}")
                page.mouse.move(0, 0)
                page.evaluate("document.activeElement && document.activeElement.blur()")

            shots = [
                frame(f"{name}'s browser: /board/", page.screenshot())
                for name, page in (("Ana", ana), ("Ben", ben))
            ]
            sheet = browser.new_page(
                viewport={"width": 2 * WINDOW["width"] + 90, "height": WINDOW["height"] + 100}
            )
            sheet.set_content(f"<style>{SHEET}</style>{''.join(shots)}")
            out.parent.mkdir(parents=True, exist_ok=True)
            sheet.locator("body").screenshot(path=str(out))
            browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
