from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..requirements import CHROMIUM, need
from .servers import ThreadServer

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Pages served by route.fulfill() count as public; let them reach loopback.
    "--disable-features=LocalNetworkAccessChecks",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need("chromium", os.path.exists(CHROMIUM), f"no browser at {CHROMIUM} (set DJANGO_RT_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        need("chromium", False, "playwright is not installed")
    # Playwright's sync API runs an event loop in the test's thread, where Django would
    # refuse the tests' own ORM calls (and the database flushes between them). Browser
    # tests run last, so this holds for them alone.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def asgi_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[ThreadServer]:
    from .asgi import application

    with django_db_blocker.unblock():
        server = ThreadServer(application).start()
        yield server
        server.stop()
        close_server_connections()


def close_server_connections() -> None:
    """The server's worker threads keep their database connections; on PostgreSQL they
    would stop the test database from being dropped."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
        # Terminating is asynchronous: wait until the sessions are gone (a few ms).
        for _ in range(100):
            cursor.execute(f"SELECT count(*) {others}")
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)
    # This one too: teardown may run in another context, with a connection of its own.
    connection.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context
    context.close()


def new_page(context: Any) -> Any:
    """A page that keeps its uncaught errors in ``page.errors``, for tests to assert."""
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


@pytest.fixture
def page(context: Any) -> Any:
    return new_page(context)


def open_page(page: Any, url: str) -> Any:
    page.goto(url)
    page.wait_for_selector("html.rt-connected")
    return page
