"""Several processes, one database, a change feed between them, in Chromium: two real
uvicorn servers of the test project (``--ws-max-size 131072``), pages open on both, and
writes made through either server, through shells (``python -c`` with
``django.setup()``) and, with PostgresFeed, through ``psql``. Every open page ends equal
to a fresh load of it, whoever wrote: while Redis is down, after a server was killed,
after a burst of a thousand saves; and ``broadcast()`` from a shell reaches the pages
of both servers.

Each feed runs the module's tests again, on servers of its own started once: RedisFeed
on a ``redis-server`` of the module's own, DatabaseFeed and PostgresFeed on a
PostgreSQL database that the module creates and drops, and DatabaseFeed on a SQLite
file (no other server)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..requirements import need
from ..test_feeds_support import RedisServer
from .conftest import new_page, open_page
from .multiprocess import Deployment, PostgresDatabase, Server, Shell
from .test_live_truth import SHOWN, shown

ENTRIES = "/procs/entries/"  # the live entries page, whose handlers write
PICKED = "/truth/picked/"  # values the view picked and computed with queries
PATHS = (ENTRIES, PICKED)
WEBSOCKET_PATH = "/rt/ws/"
#: Long enough for a loaded machine; every wait is a bounded poll.
WAIT_MS = 30_000

REDIS = "django_rt.changes.redis.RedisFeed"
DATABASE = "django_rt.changes.database.DatabaseFeed"
POSTGRES = "django_rt.changes.postgres.PostgresFeed"
#: The feeds, by parameter: which database, and the feed's settings. Short retries, so
#: that a feed is back soon after the server it needs.
FEEDS: dict[str, tuple[str, dict[str, Any]]] = {
    "redis": ("postgresql", {"BACKEND": REDIS, "OPTIONS": {"RETRY_MAX_SECONDS": 0.5}}),
    "database": ("postgresql", {"BACKEND": DATABASE, "OPTIONS": {"RETRY_MAX_SECONDS": 0.5}}),
    "postgres": ("postgresql", {"BACKEND": POSTGRES, "OPTIONS": {"RETRY_MAX_SECONDS": 0.5}}),
    "sqlite": ("sqlite", {"BACKEND": DATABASE, "OPTIONS": {"RETRY_MAX_SECONDS": 0.5}}),
}

RESET = """
from django.db import connection
from tests.testapp.models import Author, Entry
Entry.objects.all().delete()
Author.objects.all().delete()
Entry.objects.bulk_create(
    [Entry(name=name, position=position) for position, name in enumerate(
        ["apple", "banana", "cherry"], 1)]
)
"""


@dataclass
class Cluster:
    """Two servers and a shell on one database and one feed."""

    feed: str
    deployment: Deployment
    a: Server
    b: Server
    shell: Shell
    postgres: PostgresDatabase | None = None
    redis: RedisServer | None = None


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[PostgresDatabase]:
    database = PostgresDatabase()
    need("postgres", database.available(), f"no PostgreSQL answers at {database.host}")
    database.create()
    yield database
    database.drop()


@pytest.fixture(scope="module", params=list(FEEDS))
def cluster(request: Any) -> Iterator[Cluster]:
    engine, feed = FEEDS[request.param]
    feed = {**feed, "OPTIONS": dict(feed["OPTIONS"])}
    directory = Path(tempfile.mkdtemp(prefix=f"django-rt-e2e-{request.param}-"))
    postgres = redis = None
    if engine == "postgresql":
        postgres = request.getfixturevalue("postgres_database")
        database = postgres.settings
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / "db.sqlite3")}
    if feed["BACKEND"] == REDIS:
        need("redis", shutil.which("redis-server") is not None, "no redis-server binary")
        redis = RedisServer().start()
        feed["LOCATION"] = redis.url
    deployment = Deployment(database, feed, directory)
    try:
        # The tables once (on SQLite, with the outbox feed: the migrate that creates the
        # outbox writes before it exists); then the triggers of this feed, or none.
        deployment.migrate()
        yield Cluster(
            request.param,
            deployment,
            deployment.server(),
            deployment.server(),
            deployment.shell(),
            postgres,
            redis,
        )
    finally:
        deployment.close()
        if redis is not None:
            redis.close()
        shutil.rmtree(directory, ignore_errors=True)


def only(*feeds: str) -> Any:
    """Run a test with these feeds only (the module's servers of those feeds)."""
    return pytest.mark.parametrize("cluster", feeds, indirect=True)


@dataclass
class Open:
    """A page open on one server, with the WebSocket frames it received."""

    server: Server
    path: str
    page: Any
    frames: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url + self.path


class Pages:
    """The entries and picked pages, open on both servers of a cluster."""

    def __init__(self, cluster: Cluster, context: Any) -> None:
        self.cluster = cluster
        self.context = context
        self.open: list[Open] = []
        self.fresh: Any = None
        for server in (cluster.a, cluster.b):
            for path in PATHS:
                opened = Open(server, path, new_page(context))
                opened.page.on(
                    "websocket",
                    lambda ws, frames=opened.frames: ws.on(
                        "framereceived", lambda payload: frames.append(payload)
                    ),
                )
                open_page(opened.page, opened.url)
                self.open.append(opened)

    def crossed(self, loaded_from: Server, socket_to: Server, path: str = ENTRIES) -> Any:
        """A page loaded from one server whose socket goes to the other, as a load
        balancer without sticky sessions may send it (listed as ``socket_to``'s)."""
        socket = f"ws://127.0.0.1:{socket_to.port}{WEBSOCKET_PATH}"

        def elsewhere(route: Any) -> None:
            response = route.fetch()
            body = response.text().replace(f'"url":"{WEBSOCKET_PATH}"', f'"url":"{socket}"')
            assert socket in body
            route.fulfill(response=response, body=body)

        opened = Open(socket_to, path, new_page(self.context))
        opened.page.route(loaded_from.url + path, elsewhere)
        sockets: list[str] = []
        opened.page.on("websocket", lambda ws: sockets.append(ws.url))
        open_page(opened.page, loaded_from.url + path)
        assert sockets == [socket]
        self.open.append(opened)
        return opened.page

    def on(self, server: Server, path: str = ENTRIES) -> Any:
        return next(o.page for o in self.open if o.server is server and o.path == path)

    def of(self, server: Server) -> list[Open]:
        return [o for o in self.open if o.server is server]

    def converge(self) -> None:
        """Wait until every open page shows what a fresh load of it shows."""
        expected = {path: self.reload(path) for path in PATHS}
        for opened in self.open:
            try:
                opened.page.wait_for_function(
                    f"(expected) => JSON.stringify(({SHOWN})()) === JSON.stringify(expected)",
                    arg=expected[opened.path],
                    timeout=WAIT_MS,
                )
            except Exception:
                now = shown(opened.page)
                assert now == expected[opened.path], (
                    f"{opened.url} differs from a reload\n{self.cluster.deployment.logs()}"
                )
                raise
        for opened in self.open:
            assert opened.page.errors == []

    def reload(self, path: str) -> Any:
        """What a fresh load of ``path`` shows (from the first server that runs: both
        show the one database)."""
        if self.fresh is None:
            self.fresh = new_page(self.context)
            # Only what the server rendered: no socket, no join, no work for the servers.
            self.fresh.route("**/django_rt/rt*.js", lambda route: route.abort())
        server = next(s for s in (self.cluster.a, self.cluster.b) if s.process is not None)
        self.fresh.goto(server.url + path)
        return shown(self.fresh)


@pytest.fixture
def pages(cluster: Cluster, context: Any) -> Pages:
    cluster.shell(RESET)
    return Pages(cluster, context)


def names(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#list .name", "els => els.map((el) => el.textContent)"))


def wait_names(page: Any, expected: list[str]) -> None:
    try:
        page.wait_for_function(
            "(expected) => JSON.stringify([...document.querySelectorAll('#list .name')]"
            ".map((el) => el.textContent)) === JSON.stringify(expected)",
            arg=expected,
            timeout=WAIT_MS,
        )
    except Exception:
        assert names(page) == expected
        raise


def rename_through(page: Any, old: str, new: str) -> None:
    """A save through the server of ``page``: its handler renames the entry."""
    page.fill("#typing", new)
    page.click(f"#list li:has(.name:text-is('{old}'))")


def add_through(page: Any, name: str) -> None:
    """A create through the server of ``page``: its handler adds the entry."""
    page.fill("#typing", name)
    page.press("#typing", "Enter")


def test_writes_through_either_server_and_a_shell_reach_every_page(
    cluster: Cluster, pages: Pages
) -> None:
    a, b, shell = pages.on(cluster.a), pages.on(cluster.b), cluster.shell
    pages.converge()

    rename_through(a, "apple", "apricot")  # a save through A, seen on B
    wait_names(b, ["apricot", "banana", "cherry"])
    pages.converge()
    add_through(b, "date")  # a create through B, seen on A (position 0: first)
    wait_names(a, ["date", "apricot", "banana", "cherry"])
    pages.converge()

    shell("Entry.objects.create(name='elder', position=9)")
    pages.converge()
    assert names(a) == names(b) == ["date", "apricot", "banana", "cherry", "elder"]

    shell("Entry.objects.filter(position__gte=2).update(done=True)")
    pages.converge()
    assert len(a.query_selector_all("#list em.done")) == 3

    shell("Entry.objects.bulk_create([Entry(name='fig', position=4), Entry(name='grape')])")
    pages.converge()
    assert names(b) == ["date", "grape", "apricot", "banana", "cherry", "fig", "elder"]

    shell("Entry.objects.filter(name__in=['banana', 'date']).delete()")
    pages.converge()
    assert names(a) == ["grape", "apricot", "cherry", "fig", "elder"]

    shell(
        """
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE testapp_entry SET position = position + 100 WHERE name = %s",
                ["apricot"],
            )
        """
    )
    pages.converge()
    assert names(b) == ["grape", "cherry", "fig", "elder", "apricot"]
    assert pages.on(cluster.a, PICKED).text_content("#total") == "5 entries, top 101, sum 117"


@only("postgres")
def test_writes_from_psql_reach_every_page(cluster: Cluster, pages: Pages) -> None:
    assert cluster.postgres is not None
    pages.converge()
    cluster.postgres.psql("UPDATE testapp_entry SET name = 'blueberry' WHERE name = 'banana'")
    pages.converge()
    assert names(pages.on(cluster.a)) == ["apple", "blueberry", "cherry"]
    cluster.postgres.psql(
        "INSERT INTO testapp_entry (name, done, position) VALUES ('kiwi', true, 0)"
    )
    pages.converge()
    assert names(pages.on(cluster.b)) == ["kiwi", "apple", "blueberry", "cherry"]
    assert pages.on(cluster.b, PICKED).text_content("#newest") == "kiwi"


@only("redis")
def test_redis_stopped_while_writes_go_on(cluster: Cluster, pages: Pages) -> None:
    assert cluster.redis is not None
    a, b = pages.on(cluster.a), pages.on(cluster.b)
    pages.converge()
    cluster.redis.stop()
    try:
        rename_through(a, "apple", "apricot")
        wait_names(a, ["apricot", "banana", "cherry"])  # its own pages: at once
        add_through(b, "date")
        b.wait_for_selector("#list .name:text-is('date')", timeout=WAIT_MS)  # its own too
        cluster.shell("Entry.objects.filter(name='cherry').update(done=True)")
        time.sleep(3)  # Redis stays away a while: the feeds retry, the writes wait
    finally:
        cluster.redis.start()  # empty: no persistence
    pages.converge()
    assert names(a) == names(b) == ["date", "apricot", "banana", "cherry"]
    assert b.query_selector("#list li:has(.name:text-is('cherry')) em.done") is not None


@only("redis", "database")
def test_a_killed_server_comes_back_and_its_pages_converge(cluster: Cluster, pages: Pages) -> None:
    b = pages.on(cluster.b)
    crossed = pages.crossed(loaded_from=cluster.a, socket_to=cluster.b)
    pages.converge()
    cluster.a.kill()
    for opened in pages.of(cluster.a):
        opened.page.wait_for_selector("html.rt-disconnected", timeout=WAIT_MS)
    add_through(b, "date")  # while A is away: through B and a shell
    wait_names(b, ["date", "apple", "banana", "cherry"])
    cluster.shell("Entry.objects.filter(name='apple').update(position=50)")
    # A page that A served, on a socket of B's, stays live meanwhile.
    wait_names(crossed, ["date", "banana", "cherry", "apple"])
    assert crossed.query_selector("html.rt-connected") is not None
    cluster.a.start()  # on the same port
    for opened in pages.of(cluster.a):
        opened.page.wait_for_selector("html.rt-connected", timeout=WAIT_MS)
    pages.converge()
    cluster.shell("Entry.objects.create(name='elder', position=9)")  # A's feed reads again
    pages.converge()
    assert names(pages.on(cluster.a)) == ["date", "banana", "cherry", "elder", "apple"]


SAVES = 1000


@only("redis", "postgres")
def test_a_burst_of_saves_from_a_shell_ends_equal_in_far_fewer_frames(
    cluster: Cluster, pages: Pages
) -> None:
    pages.converge()
    for opened in pages.open:
        opened.frames.clear()
    cluster.deployment.run(
        f"""
        from tests.testapp.models import Entry
        entries = list(Entry.objects.order_by("pk"))
        for i in range({SAVES}):  # one commit each
            entry = entries[i % len(entries)]
            entry.name = f"{{entry.name[0]}}{{i}}"
            entry.position = i
            entry.save()
        """
    )
    pages.converge()
    assert names(pages.on(cluster.b)) == ["b997", "c998", "a999"]
    # A page gets one frame per update of its process's hub, which takes in the changes
    # that arrived meanwhile: how many depends on how fast the saves come (seen: 70 to
    # 110 frames a page on a loaded machine of two cores).
    counts = {opened.url: len(opened.frames) for opened in pages.open}
    for opened in pages.open:
        assert 0 < len(opened.frames) < SAVES / 4, counts


def test_broadcast_from_a_shell_reaches_the_pages_of_both_servers(
    cluster: Cluster, pages: Pages
) -> None:
    for opened in pages.open:
        opened.frames.clear()
    cluster.deployment.run(
        """
        from django_rt import RTResponse, broadcast
        from tests.testapp.views import LiveEntriesView
        # The entries pages' view inherits from this one; the picked pages' does not.
        broadcast(LiveEntriesView, RTResponse("#typing", {"data-view": "heard"}, action="attr"))
        broadcast("writers", RTResponse("#typing", {"data-group": "heard"}, action="attr"))
        """
    )
    for server in (cluster.a, cluster.b):
        pages.on(server).wait_for_selector(
            "#typing[data-view='heard'][data-group='heard']", state="attached", timeout=WAIT_MS
        )
    for opened in pages.open:
        replies = [
            frame
            for frame in map(json.loads, opened.frames)
            if frame.get("t") == "reply" and frame.get("ref") is None
        ]
        assert len(replies) == (2 if opened.path == ENTRIES else 0), opened.url
