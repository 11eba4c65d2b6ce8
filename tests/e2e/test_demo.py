"""The demo as a user runs it: under `manage.py runserver` (daphne) and under uvicorn,
with DEBUG on and no static configuration, every page loads its stylesheet and the
client, events work, and the team board follows in every open browser."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import new_page, open_page
from .servers import ROOT, free_port, wait_for_port

EXAMPLE = ROOT / "example"
PAGES = ["/", "/board/", "/example/", "/entries/", "/events/"]


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


@pytest.fixture(scope="module", params=sorted(SERVERS))
def demo(request: pytest.FixtureRequest, demo_env: dict[str, str]) -> Iterator[str]:
    """The demo served by one server, as ``(name, base URL)``; the database is shared."""
    port = free_port()
    process = subprocess.Popen(
        SERVERS[request.param](port),
        cwd=EXAMPLE,
        env=demo_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        yield request.param, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def pick(page: Any, base: str, username: str) -> Any:
    """Log in through the board's "who are you" picker."""
    open_page(page, f"{base}/board/")
    page.click(f".picker button[value={username}]")
    page.wait_for_selector("#you-title:has-text('Hi,')")
    page.wait_for_selector("html.rt-connected")
    return page


def activity(what: str, title: str) -> str:
    """A line of the activity feed (its quotes are the stylesheet's)."""
    return f"#activity li:has-text('{what}'):has-text('{title}')"


def contexts(browser: Any, count: int) -> list[Any]:
    """Browser contexts of their own (their own cookies: their own users)."""
    made = [browser.new_context() for _ in range(count)]
    for context in made:
        context.set_default_timeout(10_000)
    return made


def number(page: Any, selector: str) -> int:
    return int(page.inner_text(selector))


def row(title: str, where: str = "#open-tasks") -> str:
    """The row of a task: an open one by its title field, a done one by its text."""
    if where == "#open-tasks":
        return f"{where} .task:has(input.title[value='{title}'])"
    return f"{where} .task:has(.title:text-is('{title}'))"


def test_demo_click_example(demo, page):
    server, base = demo
    open_page(page, f"{base}/example/")
    page.fill("#myinput", server)
    page.click("#mybutton")
    page.wait_for_selector(f"#result:text-is('Result: {server}')")
    open_page(page, f"{base}/entries/")
    page.fill("#add-entry input[name=name]", f"durian-{server}")
    page.press("#add-entry input[name=name]", "Enter")
    page.wait_for_selector(f"#entries li:has-text('durian-{server}')")
    assert page.url.endswith("/entries/")


def test_every_page_is_live_and_styled(demo, page):
    _, base = demo
    failed = []
    page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
    for path in PAGES:
        open_page(page, base + path)
        status = page.evaluate("getComputedStyle(document.querySelector('.status')).color")
        assert status == "rgb(21, 128, 61)", path  # the stylesheet's "live" colour
        assert page.locator("main h1").count() == 1, path
    assert failed == []
    assert page.errors == []


def test_board_follows_in_two_browsers(demo, browser):
    server, base = demo
    title = f"Ship the demo on {server}"
    ana_context, visitor_context = contexts(browser, 2)
    try:
        ana = pick(new_page(ana_context), base, "ana")
        visitor = open_page(new_page(visitor_context), f"{base}/board/")
        done_before = number(visitor, "#done-count")
        open_before = number(visitor, "#open-count")

        ana.fill("#new-title", title)
        ana.fill("#new-points", "3")
        ana.press("#new-title", "Enter")
        for page in (ana, visitor):
            page.wait_for_selector(row(title))
            page.wait_for_selector(f"#open-count:text-is('{open_before + 1}')")
        # Ana's own panel lists it (new tasks go to whoever adds them); the visitor has none.
        ana.wait_for_selector(f"#my-tasks li:has-text('{title}')")
        assert visitor.locator("#my-tasks").count() == 0
        visitor.wait_for_selector(activity("Ana added", title))

        # A click, not check(): check() then looks for the box again where it was, and
        # the task may have moved to the done list already.
        ana.click(f"{row(title)} input.check")
        for page in (ana, visitor):
            page.wait_for_selector(row(title, "#done-tasks"))
            page.wait_for_selector(f"#done-count:text-is('{done_before + 1}')")
            page.wait_for_selector(f"#open-count:text-is('{open_before}')")
            done, total = done_before + 1, open_before + done_before + 1
            percent = round(100 * done / total)
            page.wait_for_selector(f"#progress:text-is('{percent}')")
            bar = page.get_attribute(".summary .bar > span", "style")
            assert re.fullmatch(rf"width: {percent}%;?", bar), bar
            assert page.locator(row(title)).count() == 0
        visitor.wait_for_selector(activity("Ana completed", title))
        ana.wait_for_selector(f"#my-tasks li:has-text('{title}')", state="detached")
        assert ana.errors == visitor.errors == []
    finally:
        ana_context.close()
        visitor_context.close()


def test_board_renames_reassigns_and_deletes(demo, browser):
    server, base = demo
    title, renamed = f"Draft on {server}", f"Final on {server}"
    ben_context, dev_context = contexts(browser, 2)
    try:
        ben = pick(new_page(ben_context), base, "ben")
        dev = pick(new_page(dev_context), base, "dev")
        ben.fill("#new-title", title)
        ben.press("#new-title", "Enter")
        dev.wait_for_selector(row(title))

        ben.fill(f"{row(title)} input.title", renamed)
        ben.press(f"{row(title)} input.title", "Tab")
        dev.wait_for_selector(row(renamed))
        assert dev.locator(row(title)).count() == 0

        ben.select_option(f"{row(renamed)} select.assignee", label="Dev")
        dev.wait_for_selector(f"#my-tasks li:has-text('{renamed}')")
        ben.wait_for_selector(f"#my-tasks li:has-text('{renamed}')", state="detached")
        chosen = "s => s.selectedOptions[0].textContent"
        assert dev.eval_on_selector(f"{row(renamed)} select.assignee", chosen) == "Dev"

        dev.click(f"{row(renamed)} button.delete")
        for page in (ben, dev):
            page.wait_for_selector(row(renamed), state="detached")
            page.wait_for_selector(activity("Dev deleted", renamed))
        assert ben.errors == dev.errors == []
    finally:
        ben_context.close()
        dev_context.close()


def test_invalid_values_show_an_error_on_the_page(demo, page):
    _, base = demo
    open_page(page, f"{base}/board/")
    rows = page.locator("#open-tasks .task").count()
    page.fill("#new-title", "Something")
    page.fill("#new-points", "three")
    page.press("#new-title", "Enter")
    page.wait_for_selector("#add-error:has-text('Points are a whole number from 1 to 13')")
    page.fill("#new-title", "   ")
    page.fill("#new-points", "2")
    page.press("#new-title", "Enter")
    page.wait_for_selector("#add-error:text-is('Give the task a title.')")
    assert page.locator("#open-tasks .task").count() == rows

    # A value the handler's annotation refuses (step: int): the rt:error event's
    # message, shown next to the control by the page's listener.
    open_page(page, f"{base}/events/")
    page.fill("#step", "three")
    page.click("#increment")
    page.wait_for_selector("[data-errors] .error:has-text(\"'three' is not a whole number\")")
    assert page.inner_text("#clicks") == "0"
    page.fill("#step", "2")
    assert page.inner_text("[data-errors] .error") == ""
    page.click("#increment")
    page.wait_for_selector("#clicks:text-is('2')")
    page.click("#increment")
    page.wait_for_selector("#clicks:text-is('4')")
    page.click(".colour[data-colour=teal]")
    page.wait_for_function(
        "getComputedStyle(document.getElementById('swatch')).backgroundColor === 'rgb(0, 128, 128)'"
    )


def test_index_follows_the_board(demo, browser):
    server, base = demo
    title = f"Seen from the index on {server}"
    index_context, board_context = contexts(browser, 2)
    try:
        index = open_page(new_page(index_context), f"{base}/")
        board = pick(new_page(board_context), base, "chloe")
        board.fill("#new-title", title)
        board.press("#new-title", "Enter")
        index.wait_for_selector(f".latest:has-text('Chloé added “{title}”')")
        done = number(index, "#index-done")
        board.click(f"{row(title)} input.check")  # it moves at once (see above)
        index.wait_for_selector(f"#index-done:text-is('{done + 1}')")
        assert index.errors == []
    finally:
        index_context.close()
        board_context.close()


def test_seeded_admin_logs_in(demo, page):
    _, base = demo
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    page.wait_for_selector("text=Site administration")
    page.goto(f"{base}/admin/demo/task/")
    page.wait_for_selector("text=Write the release notes")
