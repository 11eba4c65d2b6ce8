"""The fan-out benchmark: scenarios, checks and the report (``bench/fanout.py``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .httpcall import checked
from .load import Client, Load, Page, load_page
from .load import run as run_loop
from .stacks import NODE_DIR, ROOT, STACKS, Stack, cpu_delta

ALL_STACKS = ["django-rt", "django-rt-apart", "asgi", "websockets", "socketio", "naive"]
#: django-rt with its writes made by a process of their own (see stacks.DjangoRTApart).
APART_STACK = "django-rt-apart"
REDIS_STACK = "django-rt-redis"
#: The baselines, in the order of the ratio columns.
BASELINES = ["asgi", "websockets", "socketio", "naive"]
SCENARIOS = ["rename", "swap", "event", "join", "rate", "redis"]
ROWS = 100
TAG = re.compile(r"c(\d{6})z")
NAME = re.compile(r'<span class="name">(.*?)</span>')
#: Latency (ms) under which a change rate counts as sustained.
SUSTAINED_P99_MS = 100.0


def tag(seq: int) -> str:
    """The name a change gives its row: unique, and found in a frame by substring."""
    return f"c{seq:06d}z"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


# -- the run: its directory, database and settings ------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.directory = Path(tempfile.mkdtemp(prefix="django-rt-fanout-"))
        self.database = str(self.directory / "db.sqlite3")
        self.redis = args.redis
        self.channel = f"django-rt-fanout:{os.getpid()}"
        self.stream = f"django_rt:fanout:{os.getpid()}"
        self.sizes: dict[str, int] = {}
        self.rows: list[int] = []
        self.seq = 0
        self.logs = 0
        #: The CPUs of a stack's lone server, and the clients' (None: not pinned).
        self.pin: tuple[set[int], set[int]] | None = None

    def env(self, feed: Any = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
        env.update(
            DJANGO_SETTINGS_MODULE="bench.fanout.settings",
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
            DJANGO_RT_FANOUT=json.dumps(
                {"database": self.database, "feed": feed, "redis": self.redis}
            ),
        )
        if self.args.trace_memory:
            env["BENCH_TRACE_MEMORY"] = "1"
        return env

    def log(self, stack: str, name: str) -> Path:
        self.logs += 1
        return self.directory / f"{self.logs:03d}-{stack}-{name}.log"

    # the rows ------------------------------------------------------------------------

    def setup_database(self) -> None:
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers and writers at once

    def reset_rows(self) -> None:
        """The list the pages show: ``ROWS`` rows, before any server of a session runs."""
        from tests.testapp.models import Entry

        Entry.objects.all().delete()
        Entry.objects.bulk_create(Entry(name=f"row{i:03d}", position=i) for i in range(ROWS))
        self.rows = list(Entry.objects.order_by("pk").values_list("pk", flat=True))

    def names(self) -> list[str]:
        """What every page of the list should show now."""
        from django.db import close_old_connections
        from tests.testapp.models import Entry

        close_old_connections()
        return list(Entry.objects.order_by("position", "name").values_list("name", flat=True))

    def change(self, op: str) -> dict[str, Any]:
        """The next change: a row renamed, or a row inserted and the oldest one deleted."""
        self.seq += 1
        seq = self.seq
        change: dict[str, Any] = {"op": op, "seq": seq, "name": tag(seq), "size": self.sizes[op]}
        if op == "rename":
            change["pk"] = self.rows[seq % len(self.rows)]
        else:
            change["position"] = (seq * 37) % ROWS
            change["delete"] = self.rows[0]
        return change

    def applied(self, change: dict[str, Any], done: dict[str, Any]) -> None:
        if change["op"] == "swap" and "pk" in done:
            self.rows.pop(0)
            self.rows.append(int(done["pk"]))


# -- checks -----------------------------------------------------------------------------


def frame_type(text: str) -> str | None:
    match = re.match(r'\{"t":"(\w+)"', text)
    if match:
        return match.group(1)
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    return frame.get("t") if isinstance(frame, dict) else None


def check_rt(clients: list[Client], names: list[str]) -> dict[str, Any]:
    """Apply every client's patch frames to a model of its page (``django_rt.testing``'s
    ``Document``, which applies them as ``rt.js`` does), and compare the list it shows
    with the database. Clients that loaded the same page and received the same frames
    are checked once."""
    from django_rt.testing.dom import Document

    groups: dict[tuple[Any, ...], list[Client]] = {}
    errors: list[str] = []
    for client in clients:
        patches = []
        for _, text in client.frames:
            kind = frame_type(text)
            if kind == "patch":
                patches.append(text)
            elif kind == "error":
                errors.append(text[:300])
        groups.setdefault((id(client.page), tuple(patches)), []).append(client)
    equal = differ = missed = 0
    for (_, patches), members in groups.items():
        page = members[0].page
        assert page is not None
        document = Document(page.html)
        misses = 0
        for text in patches:
            for op in json.loads(text).get("ops") or []:
                kind = op.get("o")
                if kind == "region":
                    misses += not document.replace_region(str(op["id"]), op["html"])
                elif kind == "list":
                    keys = [str(k) for k in op.get("keys") or []]
                    misses += not document.apply_list(str(op["id"]), keys, op.get("items") or {})
                elif kind == "morph":
                    document.morph(op["html"], op.get("title"))
                elif kind == "head":
                    document.patch_head(op.get("title"), op.get("html"))
                else:
                    errors.append(f"unexpected op {kind!r}: {json.dumps(op)[:200]}")
        shown = [el.text for el in document.select("#list .name")]
        if misses:
            missed += len(members)
        if shown == names:
            equal += len(members)
        else:
            differ += len(members)
            if len(errors) < 20:
                errors.append(f"a page shows {shown[:3]}... (of {len(shown)}), not {names[:3]}...")
    return {
        "pages_equal": differ == 0,
        "equal": equal,
        "differ": differ,
        "missed_regions": missed,
        "frame_errors": errors[:20],
        "groups": len(groups),
    }


def check_naive(clients: list[Client], names: list[str]) -> dict[str, Any]:
    """Each page's last render shows the database's rows."""
    equal = differ = 0
    seen: dict[str, bool] = {}
    for client in clients:
        last = next((text for _, text in reversed(client.frames) if '"page"' in text), None)
        if last is None:
            differ += 1
            continue
        if last not in seen:
            seen[last] = NAME.findall(json.loads(last)["html"]) == names
        equal += seen[last]
        differ += not seen[last]
    return {"pages_equal": differ == 0, "equal": equal, "differ": differ}


def check_last(clients: list[Client], last: str | None) -> dict[str, Any]:
    """Each socket's last frame names the last change (the baselines keep no page)."""
    if last is None:
        return {"pages_equal": True, "equal": len(clients), "differ": 0}
    equal = 0
    for client in clients:
        changes = (text for _, text in reversed(client.frames) if "patch" in text)
        equal += last in next(changes, "")
    return {"pages_equal": equal == len(clients), "equal": equal, "differ": len(clients) - equal}


# -- one stack at one number of pages ----------------------------------------------------


class Session:
    def __init__(self, run: Run, stack: Stack, pages: int) -> None:
        self.run = run
        self.stack = stack
        self.pages = pages
        self.args = run.args
        self.load = Load()
        self.results: list[dict[str, Any]] = []
        self.handler = "ping"
        self.last_change: str | None = None
        self.fanout_p50: float | None = None
        self.alone_cpu = 0.0

    async def settle(self, awaited: Any) -> None:
        """Wait until every socket got the awaited frame, or until none got it for
        ``--round-timeout`` seconds (a slow fan-out is not a lost frame)."""
        remaining, since = awaited.remaining, time.monotonic()
        while not awaited.done.is_set():
            try:
                await asyncio.wait_for(awaited.done.wait(), 1.0)
            except TimeoutError:
                if awaited.remaining != remaining:
                    remaining, since = awaited.remaining, time.monotonic()
                elif time.monotonic() - since > self.args.round_timeout:
                    return

    def record(self, scenario: str, **figures: Any) -> dict[str, Any]:
        result = {"stack": self.stack.name, "pages": self.pages, "scenario": scenario, **figures}
        self.results.append(result)
        return result

    async def run_all(self) -> list[dict[str, Any]]:
        args, stack = self.args, self.stack
        if stack.writes:
            self.run.reset_rows()
        stack.start()
        try:
            await self.warm_up()
            await self.open_pages()
            # The load process: no collection pauses while frames come in (frames are
            # kept, so there is little garbage to collect).
            gc.collect()
            gc.disable()
            scenarios = args.scenarios
            if stack.name == REDIS_STACK:
                scenarios = ["rename"]
            if "rename" in scenarios:
                await self.changes("rename")
            if "swap" in scenarios:
                await self.changes("swap")
            if "event" in scenarios:
                await self.events()
            if "rate" in scenarios and stack.writes_over_http:
                await self.rates()
        finally:
            await self.load.close()
            gc.enable()
            stack.stop()
        problems = stack.problems()
        for result in self.results:
            result["server_log_problems"] = len(problems)
        if problems:
            self.results[0]["server_log"] = problems[:20]
        return self.results

    async def warm_up(self) -> None:
        """One socket, a few changes and events: templates compiled, connections open."""
        warm = Load()
        await self.join(warm, 1)
        for op in ("rename", "swap"):
            for _ in range(2):
                await self.one_change(warm, op)
        for _ in range(3):
            await warm.event(warm.clients[0], self.handler)
        await warm.close()
        await asyncio.sleep(0.2)
        # What a change costs the server with no page open (the write, the trigger).
        before = self.stack.cpu()
        for _ in range(5):
            change = self.run.change("rename")
            self.run.applied(change, await self.stack.trigger(change))
            await asyncio.sleep(self.args.gap)
        self.alone_cpu = cpu_delta(before, self.stack.cpu()) / 5

    async def join(self, load: Load, count: int) -> dict[str, Any]:
        pages, figures = await self.load_pages(count)
        figures.update(await load.open(self.stack.protocol, self.stack.endpoints(), count, pages))
        return figures

    async def load_pages(self, count: int) -> tuple[list[Page | None], dict[str, Any]]:
        """The pages that ``count`` sockets join with: one GET per page up to --gets
        page loads; beyond, sockets share them (each socket still joins on its own: the
        server runs the view for every join)."""
        stack = self.stack
        pages: list[Page | None] = []
        figures: dict[str, Any] = {}
        if stack.loads_pages:
            loads = min(count, self.args.gets)
            loads += (-loads) % len(stack.endpoints())  # socket i goes to the server of its page
            before = stack.cpu()
            started = time.perf_counter()
            ports = stack.page_ports()
            pages = list(
                await asyncio.gather(*(load_page(ports[i % len(ports)], "/") for i in range(loads)))
            )
            figures["page_loads"] = loads
            figures["page_load_wall_s"] = round(time.perf_counter() - started, 3)
            figures["page_load_cpu_ms"] = round(cpu_delta(before, stack.cpu()) / loads * 1000, 3)
            self.handler = pages[0].handler("#ping") if pages[0] is not None else "ping"
        return pages, figures

    async def open_pages(self) -> None:
        """The join storm: every page joins at once. The server's memory per page is
        its RSS after the storm (and a second for what the joins left to do) over its
        RSS once the pages were loaded: the page loads' own memory is not counted."""
        stack = self.stack
        pages, opened = await self.load_pages(self.pages)
        before_traced = await self.traced()
        before_rss = stack.rss()
        before = stack.cpu()
        opened.update(await self.load.open(stack.protocol, stack.endpoints(), self.pages, pages))
        joins_cpu = cpu_delta(before, stack.cpu())
        await asyncio.sleep(1.0)  # what the joins left to do
        after_rss = stack.rss()
        if before_traced is not None:
            after_traced = await self.traced()
            assert after_traced is not None
            opened["traced_kib_per_page"] = round(
                (after_traced - before_traced) / self.pages / 1024, 2
            )
        self.record(
            "join",
            join_wall_s=round(opened.pop("wall_s"), 3),
            join_cpu_ms_per_page=round(joins_cpu / self.pages * 1000, 3),
            memory_kib_per_page=round((after_rss - before_rss) / self.pages / 1024, 2),
            rss_mib_before=round(before_rss / 2**20, 1),
            rss_mib_after=round(after_rss / 2**20, 1),
            **opened,
        )

    async def traced(self) -> int | None:
        """The Python heap of the stack's servers (``--trace-memory``, django-rt's
        servers): what ``tracemalloc`` counts, garbage collected; else None."""
        if not (self.args.trace_memory and self.stack.loads_pages):
            return None
        total = 0
        for port in self.stack.page_ports():
            answer = await checked(port, "GET", "/bench/traced/")
            if answer["traced"] is None:
                return None
            total += answer["traced"]
        return total

    async def one_change(self, load: Load, op: str) -> tuple[list[float], int, dict[str, Any]]:
        """One change awaited at every socket: the latencies, the sockets that missed it."""
        change = self.run.change(op)
        awaited = load.expect(change["name"])
        done = await self.stack.trigger(change)
        self.run.applied(change, done)
        self.last_change = change["name"]
        await self.settle(awaited)
        load.round = None
        latencies = [at - done["t"] for at in awaited.times if at is not None]
        return latencies, awaited.remaining, done

    async def changes(self, op: str) -> None:
        """Changes one after the other: each one awaited at every page, then a pause."""
        args, stack = self.args, self.stack
        for _ in range(1):  # not measured: the first change after the joins
            await self.one_change(self.load, op)
            await asyncio.sleep(args.gap)
        latencies: list[float] = []
        firsts: list[float] = []
        lasts: list[float] = []
        lost = rounds = 0
        before, helpers_before = stack.cpu(), stack.helpers_cpu()
        client_before = time.process_time()
        started = time.monotonic()
        while rounds < args.changes and (rounds < 3 or time.monotonic() - started < args.budget):
            round_latencies, missed, _ = await self.one_change(self.load, op)
            rounds += 1
            lost += missed
            latencies += round_latencies
            if round_latencies:
                firsts.append(min(round_latencies))
                lasts.append(max(round_latencies))
            await asyncio.sleep(args.gap)
        cpu = cpu_delta(before, stack.cpu())
        helpers_cpu = cpu_delta(helpers_before, stack.helpers_cpu())
        client_cpu = time.process_time() - client_before
        checks = await self.check()
        scenario = "redis" if stack.name == REDIS_STACK else op
        result = self.record(
            scenario,
            changes=rounds,
            p50_ms=ms(percentile(latencies, 0.5)),
            p99_ms=ms(percentile(latencies, 0.99)),
            max_ms=ms(max(latencies) if latencies else None),
            first_page_p50_ms=ms(statistics.median(firsts) if firsts else None),
            last_page_p50_ms=ms(statistics.median(lasts) if lasts else None),
            cpu_ms_per_change=round(cpu / rounds * 1000, 3),
            cpu_ms_per_change_without_pages=round(self.alone_cpu * 1000, 3),
            helpers_cpu_ms_per_change=round(helpers_cpu / rounds * 1000, 3),
            load_cpu_ms_per_change=round(client_cpu / rounds * 1000, 3),
            lost=lost,
            frame_bytes=self.run.sizes[op],
            closed=sum(c.closed is not None for c in self.load.clients),
            **checks,
        )
        if op == "rename":
            self.fanout_p50 = (result["p50_ms"] or 0) / 1000

    async def check(self) -> dict[str, Any]:
        clients = self.load.clients
        if self.stack.protocol == "rt":
            names = await asyncio.to_thread(self.run.names)
            return await asyncio.to_thread(check_rt, clients, names)
        if self.stack.name == "naive":
            names = await asyncio.to_thread(self.run.names)
            return check_naive(clients, names)
        return check_last(clients, self.last_change)

    async def events(self) -> None:
        """Event round trips with every page open, from a client in a process of its own
        (one page more): idle, then sent as soon as the first page received a change,
        while the others are still being updated."""
        endpoint = self.stack.endpoints()[0]
        spec = {"protocol": self.stack.protocol, "port": endpoint[0], "path": endpoint[1]}
        probe = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fanout.probe",
            json.dumps(spec),
            cwd=ROOT,
            env=self.run.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert probe.stdin is not None and probe.stdout is not None
        ready = await asyncio.wait_for(probe.stdout.readline(), self.args.round_timeout)
        if ready.strip() != b"ready":
            raise RuntimeError(f"the event client did not start: {ready!r}")

        async def event() -> float:
            assert probe.stdin is not None and probe.stdout is not None
            probe.stdin.write(b"e\n")
            await probe.stdin.drain()
            return float(await probe.stdout.readline())

        try:
            idle = [await event() for _ in range(self.args.events)]
            busy = []
            started = time.monotonic()
            for k in range(max(3, self.args.changes // 2)):
                if k >= 3 and time.monotonic() - started > self.args.budget:
                    break
                change = self.run.change("rename")
                awaited = self.load.expect(change["name"])
                triggered = asyncio.create_task(self.stack.trigger(change))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(awaited.first.wait(), self.args.round_timeout)
                busy.append(await event())
                done = await triggered
                self.run.applied(change, done)
                self.last_change = change["name"]
                await self.settle(awaited)
                self.load.round = None
                await asyncio.sleep(self.args.gap)
        finally:
            probe.stdin.close()
            await asyncio.wait_for(probe.wait(), 30)
        self.record(
            "event",
            events=len(idle),
            idle_p50_ms=ms(percentile(idle, 0.5)),
            idle_p99_ms=ms(percentile(idle, 0.99)),
            during_change_events=len(busy),
            during_change_p50_ms=ms(percentile(busy, 0.5)),
            during_change_max_ms=ms(max(busy) if busy else None),
        )

    async def rates(self) -> None:
        """Renames at a fixed rate, stepped up while the p99 stays under 100 ms. Skipped
        when one change alone reaches half the pages in more than 100 ms (scenario 1's
        p50): no rate can then keep the p99 under it."""
        sustained = 0.0
        steps: list[dict[str, Any]] = []
        if self.fanout_p50 is not None and self.fanout_p50 * 1000 > SUSTAINED_P99_MS:
            steps.append({"skipped": f"one change alone: p50 {self.fanout_p50 * 1000:.0f} ms"})
        else:
            for rate in self.args.rates:
                step = await self.rate_step(rate)
                steps.append(step)
                if not step["sustained"]:
                    break
                sustained = rate
        every = bool(steps) and all(step.get("sustained") for step in steps)
        self.record(
            "rate",
            max_sustained_per_s=sustained,
            every_rate_sustained=every,
            steps=steps,
            **(await self.check()),
        )

    async def drain(
        self, marks: list[int], committed: dict[int, float], first: int, last: int, rows: int
    ) -> tuple[list[float], int]:
        """The rate step's latencies and lost frames, once every committed change reached
        every page, or none more arrived for ``--round-timeout`` seconds."""
        clients = self.load.clients
        latencies, lost = rate_latencies(clients, marks, committed, first, last, rows)
        since = time.monotonic()
        while lost and time.monotonic() - since < self.args.round_timeout:
            await asyncio.sleep(0.25)
            latencies, fewer = rate_latencies(clients, marks, committed, first, last, rows)
            if fewer < lost:
                since = time.monotonic()
            lost = fewer
        return latencies, lost

    async def rate_step(self, rate: float) -> dict[str, Any]:
        load, run = self.load, self.run
        count = max(3, int(rate * self.args.rate_seconds))
        changes = [run.change("rename") for _ in range(count)]
        first, last = changes[0]["seq"], changes[-1]["seq"]
        rows = len(run.rows)
        marks = [len(client.frames) for client in load.clients]
        awaited = load.expect(changes[-1]["name"])
        before = self.stack.cpu()
        spec = {"rate": rate, "requests": [self.stack.request(c) for c in changes]}
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fanout.writer",
            "rate",
            cwd=ROOT,
            env=run.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        output, _ = await writer.communicate(json.dumps(spec).encode())
        written = json.loads(output)
        await self.settle(awaited)
        failed = [w for w in written if "error" in w]
        committed = {c["seq"]: w["t"] for c, w in zip(changes, written, strict=True) if "t" in w}
        # Several writes are in flight at once: the last one sent may commit before
        # others, whose frames are then still on their way.
        latencies, lost = await self.drain(marks, committed, first, last, rows)
        drained = awaited.done.is_set() and not lost
        load.round = None
        cpu = cpu_delta(before, self.stack.cpu())
        self.last_change = changes[-1]["name"]
        times = sorted(committed.values())
        achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        p99 = percentile(latencies, 0.99)
        why = [
            reason
            for reason, bad in (
                ("not drained", not drained),
                (f"{len(failed)} writes failed", failed),
                (f"{lost} lost", lost),
                (
                    f"p99 over {SUSTAINED_P99_MS:.0f} ms",
                    p99 is None or p99 * 1000 >= SUSTAINED_P99_MS,
                ),
                (f"the writer reached {achieved:.0f}/s only", achieved < 0.9 * rate),
            )
            if bad
        ]
        sustained = not why
        return {
            "rate_per_s": rate,
            "changes": count,
            "achieved_per_s": round(achieved, 1),
            "p50_ms": ms(percentile(latencies, 0.5)),
            "p99_ms": ms(p99),
            "max_ms": ms(max(latencies) if latencies else None),
            "lost": lost,
            "write_errors": len(failed),
            "drained": drained,
            "frames_per_page": round(
                sum(len(c.frames) - m for c, m in zip(load.clients, marks, strict=True))
                / max(1, len(load.clients)),
                1,
            ),
            "cpu_ms_per_change": round(cpu / count * 1000, 3),
            "sustained": sustained,
            "why_not": ", ".join(why),
        }


def rate_latencies(
    clients: list[Client],
    marks: list[int],
    committed: dict[int, float],
    first: int,
    last: int,
    rows: int,
) -> tuple[list[float], int]:
    """For every change and page: the time from its commit to the first frame that shows
    it, or a later change of the same row (a batch may carry the later one only)."""
    latencies: list[float] = []
    lost = 0
    tags: dict[str, list[int]] = {}
    for client, mark in zip(clients, marks, strict=True):
        upto: dict[int, int] = {}  # row -> the newest change of it seen so far
        for at, text in client.frames[mark:]:
            seqs = tags.get(text)
            if seqs is None:
                seqs = tags[text] = [int(s) for s in TAG.findall(text)]
            for seq in seqs:
                if not first <= seq <= last:
                    continue
                row = seq % rows
                seen = upto.get(row)
                if seen is not None and seq <= seen:
                    continue
                # This change, and the row's older ones that no frame showed, are seen now.
                older = seen + rows if seen is not None else first + (row - first) % rows
                for change in range(older, seq + 1, rows):
                    if change in committed:
                        latencies.append(at - committed[change])
                upto[row] = seq
        lost += sum(seq > upto.get(seq % rows, first - 1) for seq in committed)
    return latencies, lost


# -- calibration, the run, the report ----------------------------------------------------


async def calibrate(run: Run) -> None:
    """The size of django-rt's patch frame for each change (one page, three changes
    each): the asgi, websockets and socket.io baselines send frames of that size."""
    run.sizes = {"rename": 0, "swap": 0}
    stack = STACKS["django-rt"](run)
    run.reset_rows()
    stack.start()
    load = Load()
    try:
        port, path = stack.endpoints()[0]
        page = await load_page(port, "/")
        await load.open("rt", [(port, path)], 1, [page])
        sizes = {}
        for op in ("rename", "swap"):
            lengths = []
            for _ in range(3):
                change = run.change(op)
                awaited = load.expect(change["name"])
                done = await stack.trigger(change)
                run.applied(change, done)
                await asyncio.wait_for(awaited.done.wait(), run.args.round_timeout)
                text = next(t for _, t in reversed(load.clients[0].frames) if change["name"] in t)
                lengths.append(len(text.encode()))
            sizes[op] = max(lengths)
        run.sizes = sizes
    finally:
        await load.close()
        stack.stop()


def versions() -> dict[str, Any]:
    from importlib.metadata import version

    found: dict[str, Any] = {"python": platform.python_version()}
    for package in ("django", "channels", "uvicorn", "websockets", "orjson", "uvloop"):
        try:
            found[package] = version(package)
        except Exception:
            found[package] = None
    node = shutil.which("node")
    if node:
        found["node"] = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        for package in ("socket.io", "redis"):
            manifest = NODE_DIR / "node_modules" / package / "package.json"
            if manifest.exists():
                found[f"npm {package}"] = json.loads(manifest.read_text())["version"]
    return found


def redis_answers(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except Exception:
        return False


def available(stacks: list[str], run: Run) -> dict[str, str]:
    """Why a stack cannot run here, by stack."""
    missing: dict[str, str] = {}
    needs_redis = [s for s in stacks if s in ("socketio", APART_STACK, REDIS_STACK)]
    if needs_redis and not redis_answers(run.redis):
        for stack in needs_redis:
            missing[stack] = f"no Redis answers at {run.redis}"
    if "socketio" in stacks and "socketio" not in missing:
        if shutil.which("node") is None:
            missing["socketio"] = "no node on PATH"
        elif not (NODE_DIR / "node_modules").exists():
            npm = shutil.which("npm")
            if npm is None:
                missing["socketio"] = "bench/node/node_modules is missing and no npm on PATH"
            else:
                done = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"],
                    cwd=NODE_DIR,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode:
                    missing["socketio"] = f"npm ci failed: {done.stderr.strip()[-300:]}"
    return missing


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/fanout.py",
        description="One database change pushed to many open pages: django-rt against "
        "baselines measured in the same run.",
    )
    parser.add_argument("--pages", default="100,1000", help="open pages, comma-separated")
    parser.add_argument("--stacks", default=",".join(ALL_STACKS), help=f"of {','.join(ALL_STACKS)}")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"of {','.join(SCENARIOS)} (join is always measured)",
    )
    parser.add_argument(
        "--changes",
        type=int,
        default=20,
        help="measured changes per scenario (at least 3, see --budget)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="seconds of measured changes per scenario, after the first 3",
    )
    parser.add_argument("--events", type=int, default=30, help="idle event round trips")
    parser.add_argument(
        "--rates",
        default="5,10,20,50,100,200,500,1000",
        help="changes per second tried in turn (the rate scenario)",
    )
    parser.add_argument("--rate-seconds", type=float, default=3.0, help="seconds per rate")
    parser.add_argument(
        "--gets",
        type=int,
        default=100,
        help="page loads at most per stack (sockets share them beyond)",
    )
    parser.add_argument("--gap", type=float, default=0.05, help="pause after each change")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every stack in turn; tables show medians, ratios the median of "
        "each round's ratio",
    )
    parser.add_argument(
        "--round-timeout",
        type=float,
        default=60.0,
        help="seconds a change may take to reach every page",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", default="docs/fanout.json", help="results file ('' for none)")
    parser.add_argument("--plot", default="docs/fanout.png", help="PNG plot ('' for none)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="django-rt's servers run tracemalloc: the joins' table shows the Python heap "
        "each page keeps (every figure of such a run is slower; measure them apart)",
    )
    parser.add_argument(
        "--pin",
        choices=("auto", "off"),
        default="auto",
        help="auto: a stack's one server process on CPU 0, this process (the clients, the "
        "writers) on the others, where there are two CPUs or more and taskset exists",
    )
    args = parser.parse_args(argv)
    args.pages = [int(p) for p in args.pages.split(",") if p]
    args.stacks = [s for s in args.stacks.split(",") if s]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.rates = [float(r) for r in args.rates.split(",") if r]
    for stack in args.stacks:
        if stack not in ALL_STACKS:
            parser.error(f"unknown stack {stack!r}")
    for scenario in args.scenarios:
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario!r}")
    if "redis" in args.scenarios and "django-rt" in args.stacks:
        args.stacks.append(REDIS_STACK)
    return args


def pinning(mode: str) -> tuple[set[int], set[int]] | None:
    """The CPUs of a stack's server and of the clients, when they are kept apart: the
    clients and writers then never take the server's CPU from it, and each stack's
    server runs alone on one CPU, as one process per CPU would in production."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "off" or len(cpus) < 2 or shutil.which("taskset") is None:
        return None
    return {cpus[0]}, set(cpus[1:])


async def run_all(run: Run, stacks: list[str]) -> list[dict[str, Any]]:
    await calibrate(run)
    print(
        f"django-rt's patch frames: {run.sizes['rename']} bytes (rename), "
        f"{run.sizes['swap']} bytes (insert + delete)",
        flush=True,
    )
    results = []
    repeat = run.args.repeat
    for pages in run.args.pages:
        # Round after round of every stack in turn: a slow minute of a shared machine
        # falls on one round of each, not on every round of one stack.
        for round_ in range(repeat):
            for name in stacks:
                of = f", round {round_ + 1}/{repeat}" if repeat > 1 else ""
                print(f"{name}, {pages} pages{of} ...", flush=True)
                session = Session(run, STACKS[name](run), pages)
                for result in await session.run_all():
                    results.append({**result, "round": round_})
    return results


def medians(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per stack, pages and scenario: the median of each number over the
    rounds (the first round's value for anything else)."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault((result["stack"], result["pages"], result["scenario"]), []).append(result)
    merged = []
    for rows in groups.values():
        row = dict(rows[0])
        row.pop("round", None)
        for key in rows[0]:
            values = [r.get(key) for r in rows]
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if key != "round" and numbers and len(set(values)) > 1:
                row[key] = round(statistics.median(values), 3)
        if len(rows) > 1:
            row["rounds"] = len(rows)
            # Lost frames and pages that differ are never a median: any round's count.
            for key in ("lost", "differ", "closed", "server_log_problems"):
                if key in row:
                    row[key] = max(r.get(key, 0) or 0 for r in rows)
            if "pages_equal" in row:
                row["pages_equal"] = all(r.get("pages_equal") for r in rows)
        merged.append(row)
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    run = Run(args)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.fanout.settings"
    os.environ["DJANGO_RT_FANOUT"] = json.dumps({"database": run.database, "redis": run.redis})
    # The harness reads and resets the rows between the sessions, from its event loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django

    django.setup()
    run.setup_database()
    run.pin = pinning(args.pin)
    if run.pin is not None:
        os.sched_setaffinity(0, run.pin[1])
    skipped = available(args.stacks, run)
    stacks = [s for s in args.stacks if s not in skipped]
    for stack, why in skipped.items():
        print(f"skipping {stack}: {why}", flush=True)
    meta = {
        # Aware: django.setup() sets the process's TZ to the settings' TIME_ZONE.
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "cpus": os.cpu_count(),
        "pinned": None
        if run.pin is None
        else {"servers": sorted(run.pin[0]), "clients": sorted(run.pin[1])},
        "load_average_before": os.getloadavg(),
        "argv": sys.argv[1:] if argv is None else argv,
        "rows": ROWS,
        "database": "sqlite (WAL)",
    }
    try:
        results = run_loop(run_all(run, stacks))
    finally:
        cleanup(run)
    meta["load_average_after"] = os.getloadavg()
    meta["frame_bytes"] = run.sizes
    report = {
        "meta": meta,
        "skipped": skipped,
        "results": medians(results),
        "ratios": ratios(results),
        "rounds": results,
    }
    print_report(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"results: {args.json}")
    if args.plot:
        plot(report, args.plot)
        print(f"plot: {args.plot}")
    if args.keep:
        print(f"logs and database: {run.directory}")
    return report


def cleanup(run: Run) -> None:
    if redis_answers(run.redis):
        import redis

        redis.Redis.from_url(run.redis).delete(run.stream)
    if not run.args.keep:
        shutil.rmtree(run.directory, ignore_errors=True)


# -- the report --------------------------------------------------------------------------


def find(results: list[dict[str, Any]], stack: str, pages: int, scenario: str) -> dict[str, Any]:
    return next(
        (
            r
            for r in results
            if r["stack"] == stack and r["pages"] == pages and r["scenario"] == scenario
        ),
        {},
    )


#: The ratios: (label, django-rt's stack, its scenario, figure); each against the
#: baselines' rename for the redis scenario, the same scenario otherwise.
RATIO_FIGURES = [
    ("rename p50", "django-rt", "rename", "p50_ms"),
    ("rename p99", "django-rt", "rename", "p99_ms"),
    ("rename first page p50", "django-rt", "rename", "first_page_p50_ms"),
    ("rename last page p50", "django-rt", "rename", "last_page_p50_ms"),
    ("rename CPU/change", "django-rt", "rename", "cpu_ms_per_change"),
    ("insert+delete p99", "django-rt", "swap", "p99_ms"),
    ("insert+delete CPU/change", "django-rt", "swap", "cpu_ms_per_change"),
    ("event idle p50", "django-rt", "event", "idle_p50_ms"),
    ("event during change p50", "django-rt", "event", "during_change_p50_ms"),
    ("join CPU/page", "django-rt", "join", "join_cpu_ms_per_page"),
    ("memory/page", "django-rt", "join", "memory_kib_per_page"),
    ("max sustained rate", "django-rt", "rate", "max_sustained_per_s"),
    ("writes apart: rename p50", APART_STACK, "rename", "p50_ms"),
    ("writes apart: rename p99", APART_STACK, "rename", "p99_ms"),
    ("writes apart: rename first page p50", APART_STACK, "rename", "first_page_p50_ms"),
    ("writes apart: rename last page p50", APART_STACK, "rename", "last_page_p50_ms"),
    ("writes apart: rename CPU/change", APART_STACK, "rename", "cpu_ms_per_change"),
    ("writes apart: insert+delete p99", APART_STACK, "swap", "p99_ms"),
    ("writes apart: insert+delete CPU/change", APART_STACK, "swap", "cpu_ms_per_change"),
    ("redis: rename p99", REDIS_STACK, "redis", "p99_ms"),
    ("redis: rename CPU/change", REDIS_STACK, "redis", "cpu_ms_per_change"),
]


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each figure of django-rt over the baseline's, in each round (stacks measured
    one after the other, minutes apart at most), then the median of those ratios."""
    rows = []
    rounds = sorted({r.get("round", 0) for r in results})
    for pages in sorted({r["pages"] for r in results}):
        for label, stack, scenario, figure in RATIO_FIGURES:
            row: dict[str, Any] = {"pages": pages, "figure": label}
            found = False
            for baseline in BASELINES:
                each = []
                for round_ in rounds:
                    these = [r for r in results if r.get("round", 0) == round_]
                    ours = find(these, stack, pages, scenario).get(figure)
                    found = found or ours is not None
                    theirs = find(
                        these, baseline, pages, "rename" if scenario == "redis" else scenario
                    ).get(figure)
                    if ours is not None and theirs:
                        each.append(ours / theirs)
                row[baseline] = round(statistics.median(each), 2) if each else None
                if len(each) > 1:
                    row[f"{baseline}_range"] = [round(min(each), 2), round(max(each), 2)]
            if found:
                rows.append(row)
    return rows


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def ratio_text(row: dict[str, Any], baseline: str) -> str:
    """A ratio, and the lowest and highest of the rounds' when there were several."""
    spread = row.get(f"{baseline}_range")
    text = fmt(row.get(baseline), 2)
    return text if not spread else f"{text} ({spread[0]:.2f}-{spread[1]:.2f})"


def table(title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cells = [[fmt(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(head), *(len(c[i]) for c in cells)) for i, (head, _) in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(head.rjust(w) for (head, _), w in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))


def print_report(report: dict[str, Any]) -> None:
    results = report["results"]
    meta = report["meta"]
    v = meta["versions"]
    print(
        f"\n{meta['date']}, Python {v['python']}, Django {v['django']}, Channels "
        f"{v['channels']}, uvicorn {v['uvicorn']}, websockets {v['websockets']}, node "
        f"{v.get('node')}, socket.io {v.get('npm socket.io')}; {meta['cpus']} CPUs, load "
        f"average {meta['load_average_before'][0]:.2f} before, "
        f"{meta['load_average_after'][0]:.2f} after; "
        + (
            "not pinned"
            if not meta.get("pinned")
            else f"a stack's one server on CPU {meta['pinned']['servers']}, the clients on "
            f"{meta['pinned']['clients']}"
        )
    )
    changes = [
        ("pages", "pages"),
        ("stack", "stack"),
        ("changes", "changes"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
        ("max ms", "max_ms"),
        ("first page p50 ms", "first_page_p50_ms"),
        ("last page p50 ms", "last_page_p50_ms"),
        ("CPU ms/change", "cpu_ms_per_change"),
        ("frame B", "frame_bytes"),
        ("lost", "lost"),
        ("pages = db", "pages_equal"),
    ]
    for scenario, title in (
        ("rename", "1. One row of 100 renamed: commit -> frame at every page"),
        ("swap", "2. One row inserted and one deleted (one transaction)"),
        ("redis", "6. Renamed, RedisFeed, two server processes, writer in a third"),
    ):
        table(title, changes, [r for r in results if r["scenario"] == scenario])
    table(
        "3. Event round trips with every page open (idle; sent when a change reached "
        "the first page)",
        [
            ("pages", "pages"),
            ("stack", "stack"),
            ("idle p50 ms", "idle_p50_ms"),
            ("idle p99 ms", "idle_p99_ms"),
            ("during change p50 ms", "during_change_p50_ms"),
            ("during change max ms", "during_change_max_ms"),
        ],
        [r for r in results if r["scenario"] == "event"],
    )
    table(
        "4. Joins and idle memory (server process)",
        [
            ("pages", "pages"),
            ("stack", "stack"),
            ("join storm s", "join_wall_s"),
            ("join p50 ms", "join_p50_ms"),
            ("CPU ms/page", "join_cpu_ms_per_page"),
            ("KiB/page", "memory_kib_per_page"),
            ("traced KiB/page", "traced_kib_per_page"),
            ("RSS MiB after", "rss_mib_after"),
        ],
        [r for r in results if r["scenario"] == "join"],
    )
    rate_rows = []
    for r in results:
        if r["scenario"] == "rate":
            steps = ", ".join(
                f"{s['rate_per_s']:g}/s: p99 {fmt(s['p99_ms'], 0)} ms"
                + ("" if s["sustained"] else f" ({s['why_not']})")
                if "rate_per_s" in s
                else s.get("skipped", "")
                for s in r["steps"]
            )
            best = fmt(r["max_sustained_per_s"], 0) + ("+" if r["every_rate_sustained"] else "")
            rate_rows.append({**r, "steps_text": steps, "best": best})
    table(
        f"5. Highest change rate with p99 under {SUSTAINED_P99_MS:.0f} ms",
        [
            ("pages", "pages"),
            ("stack", "stack"),
            ("max /s", "best"),
            ("pages = db", "pages_equal"),
            ("steps", "steps_text"),
        ],
        rate_rows,
    )
    table(
        "Ratios django-rt / baseline (latency, CPU, memory: lower is better for "
        "django-rt; rate: higher)",
        [("pages", "pages"), ("figure", "figure"), *[(f"/ {b}", b) for b in BASELINES]],
        [{**r, **{b: ratio_text(r, b) for b in BASELINES}} for r in report["ratios"]],
    )
    problems = sum(r.get("server_log_problems", 0) for r in results if r["scenario"] == "join")
    if report["skipped"]:
        print("\nskipped: " + "; ".join(f"{k}: {v}" for k, v in report["skipped"].items()))
    if problems:
        print(f"\nserver logs: {problems} lines report problems (see server_log in the JSON)")


def plot(report: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    figure, (latency, cpu) = plt.subplots(1, 2, figsize=(11, 4.5))
    lines = [(s, "rename") for s in [*ALL_STACKS]] + [(REDIS_STACK, "redis")]
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {stack: palette[i % len(palette)] for i, (stack, _) in enumerate(lines)}
    for stack, scenario in lines:
        points = sorted(
            (r["pages"], r) for r in results if r["stack"] == stack and r["scenario"] == scenario
        )
        if not points:
            continue
        pages = [p for p, _ in points]
        style = "o-" if stack.startswith("django-rt") else "s--"
        for axes, key in ((latency, "p99_ms"), (cpu, "cpu_ms_per_change")):
            axes.plot(pages, [r[key] for _, r in points], style, label=stack, color=colors[stack])
    every_pages = sorted({r["pages"] for r in results})
    for axes, label in ((latency, "p99 commit → frame (ms)"), (cpu, "server CPU per change (ms)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(every_pages, [str(p) for p in every_pages])
        axes.minorticks_off()
        axes.set_xlabel("open pages")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
    latency.legend(fontsize=8)
    meta = report["meta"]
    figure.suptitle(
        f"One row of a 100-row list renamed ({meta['date'][:10]}, "
        f"{meta['cpus']} shared CPUs; compare stacks, not absolute figures)",
        fontsize=10,
    )
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
