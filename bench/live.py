"""One changed row, many open pages: django-rt's hub against re-rendering every page.

    .venv/bin/python bench/live.py [--pages 100,1000] [--rows 20] [--repeat 5]

N pages show the same list (``Entry.objects.order_by("name")``, ``<li>{{ entry }}</li>``),
each joined to one in-process hub with its own live state. Then one row changes, and
the hub brings every page up to date (refetch, queries, re-renders, patch operations),
timed until every page has its patch. The baseline, measured in the same run, is what a
page-level approach does on a change: render the whole template again for every page
(one query per page), with Django alone. Ratio = django-rt time / baseline time, lower is
better. Figures are medians of ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
# The benchmark drives the hub from its own event loop and sets up data around it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.backends.utils import CursorWrapper  # noqa: E402
from django.template.loader import get_template  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from tests.testapp.models import Entry  # noqa: E402

from django_rt.changes import Change  # noqa: E402
from django_rt.hub import Hub  # noqa: E402
from django_rt.live import audience  # noqa: E402
from django_rt.live.page import LivePage  # noqa: E402

TEMPLATE = "testapp/entries.html"


class Page:
    """A stand-in for a connection: the hub's client interface, counting patches. With
    ``shared``, its page is rendered for a request of its own, as a join renders it, and
    may share the live page of its audience (every page here shows the same)."""

    def __init__(self, shared: bool = False) -> None:
        self.request = None
        if shared:
            self.request = RequestFactory().get("/entries/")
            audience.watch(self.request)
        self.page = LivePage(TEMPLATE, {"entries": Entry.objects.order_by("name")}, self.request)
        self.page.render()
        if shared:
            self.page.audience_parts = ("bench", TEMPLATE)
            self.page.find_audience()
        self.patches: list[list[dict[str, Any]]] = []

    async def send_patch(self, ops: list[dict[str, Any]]) -> None:
        self.patches.append(ops)

    def push_patch(self, ops: list[dict[str, Any]], text: str | None = None) -> None:
        self.patches.append(ops)

    def refresh(self) -> list[dict[str, Any]]:
        raise AssertionError("no deletes in this benchmark")

    def own_page(self, before: str) -> Any:
        raise AssertionError("every page here renders alike")


def baseline(pages: int) -> float:
    template = get_template(TEMPLATE)
    started = time.perf_counter()
    for _ in range(pages):
        template.render({"entries": Entry.objects.order_by("name")})
    return time.perf_counter() - started


class QueryCounter:
    """Counts SQL statements in every thread (the hub queries from a worker thread)."""

    def __init__(self) -> None:
        self.count = 0
        original = CursorWrapper.execute

        def execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(cursor, *args, **kwargs)

        CursorWrapper.execute = execute  # type: ignore[method-assign]


QUERIES = QueryCounter()
RENAMES = itertools.count(1000)


async def hub_round(hub: Hub, clients: list[Page], change: Change) -> tuple[float, int]:
    before = QUERIES.count
    started = time.perf_counter()
    await hub.process([change])
    elapsed = time.perf_counter() - started
    queries = QUERIES.count - before
    missed = [client for client in clients if not client.patches]
    assert not missed, f"{len(missed)} pages missed their patch ({len(hub.members)} live pages)"
    for client in clients:
        client.patches.clear()
    return elapsed, queries


async def scenario(pages: int, rows: int, repeat: int, shared: bool) -> None:
    hub = Hub.current()
    hub.unsubscribe()  # only the rounds below: not the saves that set them up
    clients = [Page(shared) for _ in range(pages)]
    for client in clients:
        await hub.ready(client)  # shares its audience's page, if it may
    entries = list(Entry.objects.order_by("name"))
    results: dict[str, list[float]] = {"rename": [], "add": [], "baseline": []}
    queries: dict[str, int] = {}
    for round_ in range(repeat):
        entry = entries[round_ % rows]
        entry.name = f"entry {next(RENAMES)}"  # a name no round used: a real change
        entry.save()
        elapsed, queries["rename"] = await hub_round(
            hub, clients, Change("testapp.entry", str(entry.pk))
        )
        results["rename"].append(elapsed)
        added = Entry.objects.create(name=f"zz-added-{round_}")
        elapsed, queries["add"] = await hub_round(
            hub, clients, Change("testapp.entry", str(added.pk))
        )
        results["add"].append(elapsed)
        added.delete()
        await hub.process([Change("testapp.entry", str(added.pk), "delete")])
        for client in clients:
            client.patches.clear()
        results["baseline"].append(baseline(pages))
    base = statistics.median(results["baseline"])
    kind = "audience" if shared else "own"
    for name in ("rename", "add"):
        ours = statistics.median(results[name])
        print(
            f"{pages:>6} {kind:>8} {name:>7} {ours * 1000:>12.1f}ms {base * 1000:>12.1f}ms "
            f"{ours / base:>6.3f} {ours / pages * 1e6:>10.1f}us {queries[name]:>8} "
            f"{len(hub.members):>6}"
        )
    for client in clients:
        hub.detach(client)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", default="100,1000")
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--pages-kind",
        default="own,audience",
        help="own: every page keeps its own live page; audience: pages share theirs",
    )
    args = parser.parse_args()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    Entry.objects.bulk_create(Entry(name=f"entry {i:03}") for i in range(args.rows))
    columns = ("pages", 6), ("kind", 8), ("change", 7), ("django-rt", 14), ("baseline", 14)
    columns += ("ratio", 6), ("per page", 12), ("queries", 8), ("live", 6)
    print(" ".join(f"{name:>{width}}" for name, width in columns))

    async def run() -> None:
        for pages in (int(p) for p in args.pages.split(",")):
            for kind in args.pages_kind.split(","):
                await scenario(pages, args.rows, args.repeat, shared=kind == "audience")

    asyncio.run(run())


if __name__ == "__main__":
    main()
