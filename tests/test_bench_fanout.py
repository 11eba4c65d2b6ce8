"""bench/fanout.py on five pages: django-rt, the bare ASGI baseline, (with redis-server)
django-rt with its writes made by a process of their own and (with Node and npm too) the
socket.io baseline, renames and inserts + deletes. Only what the
harness checks is asserted: every page received every change, every django-rt page
shows what the database holds once the patches are applied, and the report has its
rows. Never a timing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .requirements import need
from .test_feeds_support import RedisServer

ROOT = Path(__file__).resolve().parents[1]
PAGES = 5
SCENARIOS = ("join", "rename", "swap")


def socketio_missing() -> tuple[str, str] | None:
    """What the socket.io baseline lacks here: the service and why."""
    if shutil.which("node") is None:
        return "node", "no node on PATH"
    if shutil.which("npm") is None and not (ROOT / "bench" / "node" / "node_modules").exists():
        return "node", "no npm on PATH to install bench/node"
    if shutil.which("redis-server") is None:
        return "redis", "no redis-server binary"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One run of the harness for the module (with socket.io where it can run)."""
    directory = tmp_path_factory.mktemp("fanout")
    stacks = ["django-rt", "asgi"]
    redis = None
    if shutil.which("redis-server") is not None:
        stacks.append("django-rt-apart")
        redis = RedisServer().start()
    if socketio_missing() is None:
        stacks.append("socketio")
    results = directory / "fanout.json"
    argv = [
        sys.executable,
        "bench/fanout.py",
        "--pages",
        str(PAGES),
        "--stacks",
        ",".join(stacks),
        "--scenarios",
        "rename,swap",
        "--changes",
        "3",
        "--budget",
        "5",
        "--json",
        str(results),
        "--plot",
        "",
    ]
    if redis is not None:
        argv += ["--redis", redis.url]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    finally:
        if redis is not None:
            redis.close()
    assert done.returncode == 0, f"bench/fanout.py failed:\n{done.stdout}\n{done.stderr}"
    data = json.loads(results.read_text())
    data["stdout"] = done.stdout
    yield data


def result(report: dict[str, Any], stack: str, scenario: str) -> dict[str, Any]:
    found = [
        r
        for r in report["results"]
        if r["stack"] == stack and r["scenario"] == scenario and r["pages"] == PAGES
    ]
    assert len(found) == 1, f"{stack} {scenario}: {found}"
    return found[0]


def check_stack(report: dict[str, Any], stack: str) -> None:
    for scenario in SCENARIOS:
        figures = result(report, stack, scenario)
        assert figures["server_log_problems"] == 0, figures.get("server_log")
    for scenario in ("rename", "swap"):
        figures = result(report, stack, scenario)
        assert figures["changes"] >= 3
        assert figures["lost"] == 0, figures
        assert figures["closed"] == 0, figures
        assert figures["pages_equal"] is True, figures
        assert figures["equal"] == PAGES and figures["differ"] == 0, figures
        assert figures["p99_ms"] is not None
    assert result(report, stack, "join")["pages"] == PAGES


def test_django_rt_pages_equal_the_database(report: dict[str, Any]) -> None:
    check_stack(report, "django-rt")
    for scenario in ("rename", "swap"):
        figures = result(report, "django-rt", scenario)
        # The patches were applied as rt.js applies them, without a miss.
        assert figures["missed_regions"] == 0, figures
        assert figures["frame_errors"] == [], figures
    sizes = report["meta"]["frame_bytes"]
    assert sizes["rename"] > 0 and sizes["swap"] > 0


def test_the_servers_cpu_is_kept_from_the_clients(report: dict[str, Any]) -> None:
    pinned = report["meta"]["pinned"]
    if len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None:
        assert pinned is None
        return
    servers, clients = set(pinned["servers"]), set(pinned["clients"])
    assert servers and clients and not servers & clients
    assert "a stack's one server on CPU" in report["stdout"]


def test_bare_asgi_baseline_and_ratios(report: dict[str, Any]) -> None:
    check_stack(report, "asgi")
    # The baseline sends frames of django-rt's size for the same change.
    for scenario in ("rename", "swap"):
        assert (
            result(report, "asgi", scenario)["frame_bytes"]
            == result(report, "django-rt", scenario)["frame_bytes"]
        )
    figures = {row["figure"]: row for row in report["ratios"] if row["pages"] == PAGES}
    for figure in ("rename p50", "rename p99", "rename CPU/change", "insert+delete p99"):
        assert figures[figure]["asgi"] is not None, figures
    for heading in ("1. One row of 100 renamed", "2. One row inserted", "Ratios django-rt"):
        assert heading in report["stdout"]


def test_socketio_baseline(report: dict[str, Any]) -> None:
    missing = socketio_missing()
    if missing is None and "socketio" in report["skipped"]:  # npm ci failed
        missing = "node", report["skipped"]["socketio"]
    service, why = missing or ("node", "")
    need(service, missing is None, f"the socket.io baseline cannot run: {why}")
    check_stack(report, "socketio")
    figures = {row["figure"]: row for row in report["ratios"] if row["pages"] == PAGES}
    assert figures["rename p99"]["socketio"] is not None


def test_django_rt_with_its_writes_apart(report: dict[str, Any]) -> None:
    """One server, fed by RedisFeed from a writer process of its own: every page still
    gets every change and ends equal to the database."""
    need("redis", shutil.which("redis-server") is not None, "no redis-server binary")
    check_stack(report, "django-rt-apart")
    for scenario in ("rename", "swap"):
        figures = result(report, "django-rt-apart", scenario)
        assert figures["missed_regions"] == 0, figures
        assert figures["frame_errors"] == [], figures
        # The writes are the writer's: the server's CPU with no page open is the feed's.
        assert figures["helpers_cpu_ms_per_change"] > 0, figures
    figures = {row["figure"]: row for row in report["ratios"] if row["pages"] == PAGES}
    assert figures["writes apart: rename CPU/change"]["asgi"] is not None, figures


def test_rounds_give_medians_and_the_median_of_each_rounds_ratio() -> None:
    """--repeat: the tables show each figure's median over the rounds, a lost frame in
    any round shows, and a ratio is the median of the ratios of stacks measured in the
    same round."""
    from bench.fanout.harness import medians, ratios

    def row(stack: str, round_: int, cpu: float, lost: int = 0) -> dict[str, Any]:
        return {
            "stack": stack,
            "pages": 10,
            "scenario": "rename",
            "round": round_,
            "cpu_ms_per_change": cpu,
            "lost": lost,
            "pages_equal": True,
        }

    results = [
        row("django-rt", 0, 30.0),
        row("asgi", 0, 10.0),
        row("django-rt", 1, 20.0, lost=2),
        row("asgi", 1, 20.0),
        row("django-rt", 2, 12.0),
        row("asgi", 2, 4.0),
    ]
    merged = {r["stack"]: r for r in medians(results)}
    assert merged["django-rt"]["cpu_ms_per_change"] == 20.0
    assert merged["django-rt"]["lost"] == 2 and merged["django-rt"]["rounds"] == 3
    assert merged["asgi"]["pages"] == 10 and isinstance(merged["asgi"]["pages"], int)
    cpu = next(r for r in ratios(results) if r["figure"] == "rename CPU/change")
    # The rounds' ratios are 3.0, 1.0 and 3.0: their median, not the medians' 20 / 10.
    assert cpu["asgi"] == 3.0 and cpu["asgi_range"] == [1.0, 3.0]


def test_trace_memory_counts_the_python_heap_of_each_page(tmp_path: Path) -> None:
    results = tmp_path / "fanout.json"
    argv = [sys.executable, "bench/fanout.py", "--pages", str(PAGES), "--stacks", "django-rt"]
    argv += ["--scenarios", "rename", "--changes", "3", "--budget", "1", "--trace-memory"]
    argv += ["--json", str(results), "--plot", ""]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, f"bench/fanout.py failed:\n{done.stdout}\n{done.stderr}"
    join = [r for r in json.loads(results.read_text())["results"] if r["scenario"] == "join"]
    (figures,) = join
    # Each open page holds something (its socket, its consumer), and not megabytes.
    assert 1 < figures["traced_kib_per_page"] < 1024, figures
    assert "traced KiB/page" in done.stdout
