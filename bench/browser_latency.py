"""The latency a user sees: from ``save()`` to the new value in the DOM of every open page.

    .venv/bin/python bench/browser_latency.py [--saves 30] [--pages 1,20]
        [--stacks django-rt,tetra,liveview] [--layer redis|memory] [--json PATH]

The same two pages on three stacks: django-rt (this repository, ``src/`` first on the
path), Tetra and django-liveview (each in its own virtualenv under ``bench/peers/``, made
from PyPI on first use; ``--setup`` only makes them). Page ``value`` shows one row's
name; page ``list`` shows 20 rows. Each stack's project (``bench/peers/<stack>/``) runs
in its own uvicorn process on loopback, on a fresh SQLite file.

For each page and each number of pages, the stacks take turns: the benchmark opens that
many pages (one browser context each, all in one headless Chromium), waits until each is
live, then renames a row through an HTTP endpoint of the stack's server process
(``benchcommon.save_view``: it takes ``time.time()`` just before ``save()`` and returns
it) and waits until every page shows the new name. A ``MutationObserver`` in each page
records ``performance.timeOrigin + performance.now()`` when an element marked
``data-bench`` first holds the new text. Latency = that time - the time before
``save()``; one machine, one clock (each page's clock is checked against this process's).
Repeated ``--saves`` times after ``--warmup`` saves (``--rounds`` repeats it all, the
stacks' order rotated); the table shows the median and p90, for one page and for the last
of N pages to update, and the ratios django-rt / peer (lower is better). Wall-clock
figures here are noisy (2 shared cores, the browser on the same cores): compare stacks
within one run. docs/benchmarks.md describes the pages and the setup.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.e2e.servers import free_port, wait_for_port  # noqa: E402
from tests.requirements import CHROMIUM  # noqa: E402

PEERS = ROOT / "bench" / "peers"
COMMON = PEERS / "common"
ROWS = 20
ESBUILD_VERSION = "0.27.2"  # the version Tetra 0.9.1 downloads for itself
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Twenty pages open at once: none of them may be throttled as a background tab.
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
]
PAGES = {"value": "/value/", "list": "/list/"}

# In every page, before its own scripts: note when each text first appears in an element
# marked data-bench, and let the benchmark wait for a text without polling.
OBSERVER_JS = """
(() => {
  const seen = {}, waiters = {}, frames = [];
  // When each WebSocket message arrives, before the page's own handler sees it.
  const Native = window.WebSocket;
  if (Native) {
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', () => {
          frames.push(performance.timeOrigin + performance.now());
        });
      }
    };
  }
  const record = () => {
    const now = performance.timeOrigin + performance.now();
    for (const el of document.querySelectorAll('[data-bench]')) {
      const text = el.textContent.trim();
      if (!(text in seen)) {
        seen[text] = now;
        if (waiters[text]) waiters[text](now);
      }
    }
  };
  new MutationObserver(record).observe(document, {
    subtree: true, childList: true, characterData: true,
  });
  document.addEventListener('DOMContentLoaded', record);
  window.__bench = {
    seen,
    // The last message that arrived at or before `at`: the one that changed the DOM.
    frameBefore: (at) => frames.reduce((last, t) => (t <= at ? t : last), null),
    wait: (text, timeout) => new Promise((resolve) => {
      if (text in seen) return resolve(seen[text]);
      const timer = setTimeout(() => resolve(null), timeout);
      waiters[text] = (at) => { clearTimeout(timer); resolve(at); };
    }),
  };
})();
"""
WAIT_JS = "([text, timeout]) => window.__bench.wait(text, timeout)"
FRAME_JS = "(at) => window.__bench.frameBefore(at)"
NOW_JS = "() => performance.timeOrigin + performance.now()"


@dataclass
class Stack:
    """One framework's side: where its project lives, how to run it, when a page is live."""

    name: str
    folder: str
    # JS expression, true once the page receives updates (its socket joined/subscribed).
    ready: str
    # Distributions whose versions the results record.
    packages: list[str]
    # Runs in the page before its scripts (what ``ready`` needs).
    init: str = ""
    prepare: list[str] = field(default_factory=list)
    own_venv: bool = True

    @property
    def path(self) -> Path:
        return PEERS / self.folder

    @property
    def venv(self) -> Path:
        return self.path / ".venv"

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python") if self.own_venv else sys.executable

    def env(self, database: Path, layer: str, rt_settings: str = "{}") -> dict[str, str]:
        pythonpath = [str(self.path), str(COMMON)]
        if not self.own_venv:
            pythonpath.insert(0, str(ROOT / "src"))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "BENCH_DB": str(database),
            "BENCH_LAYER": layer,
            "BENCH_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:12]}",
            "BENCH_DJANGO_RT": rt_settings,
        }
        if self.name == "tetra":
            env["TETRA_ESBUILD_PATH"] = str(esbuild(self))
        return env


STACKS = {
    "django-rt": Stack(
        name="django-rt",
        folder="djangort",
        ready="document.documentElement.classList.contains('rt-connected')",
        packages=["Django", "channels", "uvicorn", "websockets"],
        own_venv=False,
    ),
    "tetra": Stack(
        name="tetra",
        folder="tetra",
        # Each component subscribes to its row's channel: live once all are confirmed.
        init="window.__subscribed = 0; document.addEventListener("
        "'tetra:component-subscribed', () => { window.__subscribed += 1; });",
        ready="window.__subscribed > 0 && window.__subscribed >= "
        "document.querySelectorAll('[tetra-subscription]').length",
        packages=["tetra", "Django", "channels", "channels-redis", "uvicorn", "websockets"],
        prepare=["tetrabuild"],
    ),
    "liveview": Stack(
        name="liveview",
        folder="liveview",
        ready="!!window.myWebSocket && window.myWebSocket.readyState === 1",
        packages=[
            "django-liveview",
            "Django",
            "channels",
            "channels-redis",
            "uvicorn",
            "websockets",
        ],
    ),
}


# -- setup ---------------------------------------------------------------------------------


def esbuild(stack: Stack) -> Path:
    return stack.path / ".npm" / "node_modules" / ".bin" / "esbuild"


def ensure_env(stack: Stack) -> None:
    """The peer's own virtualenv from its pinned requirements, made again when they change."""
    if not stack.own_venv:
        return
    requirements = stack.path / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = stack.venv / ".requirements.sha256"
    if not (stamp.exists() and stamp.read_text() == digest):
        print(f"[{stack.name}] making {stack.venv.relative_to(ROOT)} from PyPI", flush=True)
        if stack.venv.exists():
            shutil.rmtree(stack.venv)
        subprocess.run([sys.executable, "-m", "venv", str(stack.venv)], check=True)
        pip = [stack.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(requirements)], check=True)
        stamp.write_text(digest)
    if stack.name == "tetra" and not esbuild(stack).exists():
        # Tetra builds its components' scripts with esbuild: from the npm registry.
        print(f"[{stack.name}] installing esbuild {ESBUILD_VERSION} with npm", flush=True)
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("Tetra's side needs npm (for esbuild)")
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(stack.path / ".npm"),
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"esbuild@{ESBUILD_VERSION}",
            ],
            check=True,
        )


def versions(stack: Stack) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, platform, sys;"
        "print(json.dumps({**{n: m.version(n) for n in sys.argv[1:]},"
        " 'python': platform.python_version()}))"
    )
    out = subprocess.run(
        [stack.python, "-c", code, *stack.packages], check=True, capture_output=True, text=True
    )
    found: dict[str, str] = json.loads(out.stdout)
    if not stack.own_venv:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        found = {"django-rt": commit or "worktree", **found}
    return found


# -- one stack's server --------------------------------------------------------------------


@contextmanager
def serve(stack: Stack, layer: str, rt_settings: str = "{}") -> Iterator[str]:
    """Prepares a fresh database and runs the stack's uvicorn; yields its base URL."""
    folder = Path(tempfile.mkdtemp(prefix=f"browser-latency-{stack.folder}-"))
    env = stack.env(folder / "db.sqlite3", layer, rt_settings)
    prepare = [stack.python, str(COMMON / "prepare.py"), *stack.prepare]
    done = subprocess.run(prepare, cwd=stack.path, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"[{stack.name}] prepare failed:\n{done.stdout}{done.stderr}")
    port = free_port()
    log = open(folder / "server.log", "w+")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            stack.python,
            "-m",
            "uvicorn",
            "project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            "websockets-sansio",
            "--ws-max-size",
            "131072",
            "--lifespan",
            "off",
        ],
        cwd=stack.path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        log.seek(0)
        sys.stderr.write(f"[{stack.name}] server log:\n{log.read()[-4000:]}\n")
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def check_redis() -> None:
    """The peers' channel layer must answer before their pages can subscribe."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as error:
        answer = str(error).encode()
    if not answer.startswith(b"+PONG"):
        raise SystemExit(
            f"Redis does not answer on 127.0.0.1:6379 ({answer!r}): start it, or run the "
            "peers with --layer memory"
        )


def trigger(base: str, pk: int, value: str) -> dict[str, float]:
    body = urllib.parse.urlencode({"pk": pk, "value": value}).encode()
    with urllib.request.urlopen(base + "/bench/save/", body, timeout=10) as response:
        return json.loads(response.read())


# -- one measurement -----------------------------------------------------------------------


def measure(
    browser: Any,
    stack: Stack,
    base: str,
    kind: str,
    pages: int,
    saves: int,
    warmup: int,
    gap: float,
    tag: str,
) -> dict[str, Any]:
    """Opens ``pages`` pages of ``kind``, saves ``warmup + saves`` times, and returns each
    counted save's latency on each page (ms, ``None`` where the page never showed it)."""
    contexts, opened = [], []
    try:
        for _ in range(pages):
            context = browser.new_context()
            context.set_default_timeout(30_000)
            context.add_init_script(stack.init + OBSERVER_JS)
            contexts.append(context)
            page = context.new_page()
            page.goto(base + PAGES[kind])
            opened.append(page)
        for page in opened:
            page.wait_for_function(stack.ready, timeout=30_000)
        clock = [clock_offset(page) for page in opened]
        time.sleep(0.2)
        latencies: list[list[float | None]] = []
        arrivals: list[list[float | None]] = []
        save_ms: list[float] = []
        for n in range(warmup + saves):
            # A new text for every save (never seen before in this run), on a rotating row
            # of the list; the value page shows row 1.
            pk = 1 if kind == "value" else n % ROWS + 1
            value = f"{tag}-{kind}-{pages}-{n}"  # tag: this run and round
            result = trigger(base, pk, value)
            seen = [page.evaluate(WAIT_JS, [value, 10_000]) for page in opened]
            if n >= warmup:
                started = result["started"] * 1000
                latencies.append([None if at is None else at - started for at in seen])
                frames = [
                    None if at is None else page.evaluate(FRAME_JS, at)
                    for page, at in zip(opened, seen, strict=True)
                ]
                arrivals.append([None if at is None else at - started for at in frames])
                save_ms.append((result["returned"] - result["started"]) * 1000)
            time.sleep(gap)
        return {
            "latencies_ms": latencies,
            "frame_arrival_ms": arrivals,
            "save_call_ms": save_ms,
            "clock_offset_ms": clock,
        }
    finally:
        for context in contexts:
            context.close()


def clock_offset(page: Any, samples: int = 5) -> dict[str, float]:
    """The page's clock minus this process's, in ms, from the tightest of a few reads, and
    the half round trip that bounds that estimate."""
    best: dict[str, float] | None = None
    for _ in range(samples):
        before = time.time() * 1000
        at = page.evaluate(NOW_JS)
        after = time.time() * 1000
        if best is None or (after - before) / 2 < best["bound"]:
            best = {"offset": at - (before + after) / 2, "bound": (after - before) / 2}
    assert best is not None
    return best


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(latencies: list[list[float | None]]) -> dict[str, Any]:
    complete = [row for row in latencies if all(at is not None for at in row)]
    missed = sum(at is None for row in latencies for at in row)
    summary: dict[str, Any] = {"saves": len(latencies), "missed": missed}
    if not complete:
        return summary
    last = [max(row) for row in complete]  # type: ignore[type-var]
    first = [min(row) for row in complete]  # type: ignore[type-var]
    summary.update(
        last_median=statistics.median(last),
        last_p90=percentile(last, 0.9),
        first_median=statistics.median(first),
        all_median=statistics.median(at for row in complete for at in row),  # type: ignore[type-var]
    )
    return summary


# -- report --------------------------------------------------------------------------------


def table(results: dict[str, Any], pages: list[int]) -> str:
    stacks = list(results["stacks"])
    peers = [name for name in stacks if name != "django-rt"]
    header = ["page", "open pages"]
    for name in stacks:
        header += [f"{name} median", f"{name} p90"]
    if "django-rt" in stacks:
        header += [f"django-rt / {name}" for name in peers]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for kind in results["settings"]["kinds"]:
        for count in pages:
            row = [kind, "1" if count == 1 else f"{count} (last)"]
            medians = {}
            for name in stacks:
                summary = results["stacks"][name]["runs"].get(kind, {}).get(str(count), {})
                summary = summary.get("summary", {})
                if "last_median" in summary:
                    medians[name] = summary["last_median"]
                    missed = f" ({summary['missed']} missed)" if summary["missed"] else ""
                    row += [
                        f"{summary['last_median']:.1f} ms{missed}",
                        f"{summary['last_p90']:.1f} ms",
                    ]
                else:
                    row += ["-", "-"]
            if "django-rt" in stacks:
                for name in peers:
                    if "django-rt" in medians and name in medians:
                        row.append(f"{medians['django-rt'] / medians[name]:.2f}")
                    else:
                        row.append("-")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def split(results: dict[str, Any], pages: list[int]) -> str:
    """Where each stack's time goes, medians over every page and save: the ``save()``
    call itself (a peer's signal handler renders and publishes inside it), from its start
    to the WebSocket message's arrival in the page, and from that arrival to the DOM
    (the page's own script applying the frame)."""
    lines = [
        "| page | open pages | stack | save() call | save() to frame | frame to DOM |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind in results["settings"]["kinds"]:
        for count in pages:
            for name, entry in results["stacks"].items():
                run = entry["runs"].get(kind, {}).get(str(count))
                if not run or not run.get("frame_arrival_ms"):
                    continue
                saves = zip(run["latencies_ms"], run["frame_arrival_ms"], strict=True)
                pairs = [
                    (dom, frame)
                    for doms, frames in saves
                    for dom, frame in zip(doms, frames, strict=True)
                    if dom is not None and frame is not None
                ]
                if not pairs:
                    continue
                arrival = statistics.median(frame for _, frame in pairs)
                applied = statistics.median(dom - frame for dom, frame in pairs)
                call = statistics.median(run["save_call_ms"])
                lines.append(
                    f"| {kind} | {count} | {name} | {call:.1f} ms | {arrival:.1f} ms "
                    f"| {applied:.2f} ms |"
                )
    return "\n".join(lines)


def dump(results: dict[str, Any]) -> str:
    """The results as JSON, to the µs, each list of numbers on one line."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, dict):
            return {key: rounded(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rounded(item) for item in value]
        return value

    def lines(value: Any, depth: int) -> str:
        pad = " " * depth
        if isinstance(value, dict) and value:
            items = [
                f"{pad} {json.dumps(key)}: {lines(item, depth + 1)}" for key, item in value.items()
            ]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, list) and value and isinstance(value[0], list | dict):
            items = [f"{pad} {lines(item, depth + 1)}" for item in value]
            return "[\n" + ",\n".join(items) + f"\n{pad}]"
        return json.dumps(value, separators=(",", ":"))

    return lines(rounded(results), 0) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=30, help="counted saves per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted saves first")
    parser.add_argument("--pages", default="1,20", help="numbers of open pages")
    parser.add_argument("--kinds", default="value,list", help="pages: value, list")
    parser.add_argument("--stacks", default="django-rt,tetra,liveview")
    parser.add_argument(
        "--layer",
        choices=["redis", "memory"],
        default="redis",
        help="the peers' channel layer: Redis on 127.0.0.1:6379 (their docs), or in memory",
    )
    parser.add_argument(
        "--rt-settings",
        default="{}",
        help="django-rt's DJANGO_RT setting as JSON, e.g. '{\"COALESCE_SECONDS\": 0}' "
        "(default: its defaults)",
    )
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between saves")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat everything, stacks in turn (pooled)"
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "browser_latency.json"))
    parser.add_argument("--setup", action="store_true", help="make the peers' venvs and stop")
    args = parser.parse_args(argv)
    # Stopped with SIGTERM, still stop the servers and the browser.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = [name.strip() for name in args.stacks.split(",") if name.strip()]
    unknown = [name for name in names if name not in STACKS]
    if unknown:
        parser.error(f"unknown stacks {unknown}; known: {', '.join(STACKS)}")
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    if any(kind not in PAGES for kind in kinds):
        parser.error(f"--kinds takes {', '.join(PAGES)}")
    pages = [int(count) for count in args.pages.split(",")]
    stacks = [STACKS[name] for name in names]
    for stack in stacks:
        ensure_env(stack)
    if args.setup:
        return {}
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no browser at {CHROMIUM} (set DJANGO_RT_CHROMIUM)")
    if args.layer == "redis" and any(stack.own_venv for stack in stacks):
        check_redis()
    from playwright.sync_api import sync_playwright

    tag = uuid.uuid4().hex[:8]
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()),
            "platform": platform.platform(),
        },
        "settings": {
            "saves": args.saves,
            "warmup": args.warmup,
            "pages": pages,
            "kinds": kinds,
            "layer": args.layer,
            "gap_s": args.gap,
            "rounds": args.rounds,
            "django_rt_settings": json.loads(args.rt_settings),
        },
        "stacks": {},
    }
    entries: dict[str, Any] = results["stacks"]
    for stack in stacks:
        entries[stack.name] = {"versions": versions(stack), "runs": {}}
    with sync_playwright() as playwright, ExitStack() as servers:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        servers.callback(browser.close)
        results["chromium"] = browser.version
        # Every stack's server runs throughout; the measurements take turns, so that the
        # machine's load drifts across all stacks alike.
        bases = {
            stack.name: servers.enter_context(serve(stack, args.layer, args.rt_settings))
            for stack in stacks
        }
        for round_ in range(args.rounds):
            order = stacks[round_ % len(stacks) :] + stacks[: round_ % len(stacks)]
            for kind in kinds:
                for count in pages:
                    for stack in order:
                        label = f"round {round_ + 1}/{args.rounds}: " if args.rounds > 1 else ""
                        print(f"[{stack.name}] {label}{kind}, {count} page(s)", flush=True)
                        run = measure(
                            browser,
                            stack,
                            bases[stack.name],
                            kind,
                            count,
                            args.saves,
                            args.warmup,
                            args.gap,
                            f"{tag}{round_}",
                        )
                        pooled = entries[stack.name]["runs"].setdefault(kind, {})
                        pooled = pooled.setdefault(
                            str(count),
                            {
                                "latencies_ms": [],
                                "frame_arrival_ms": [],
                                "save_call_ms": [],
                                "clock_offset_ms": [],
                            },
                        )
                        for key, values in run.items():
                            pooled[key].extend(values)
                        summary = summarize(run["latencies_ms"])
                        if "last_median" in summary:
                            print(
                                f"    last page: median {summary['last_median']:.1f} ms, "
                                f"p90 {summary['last_p90']:.1f} ms; missed {summary['missed']}",
                                flush=True,
                            )
    for entry in entries.values():
        for by_count in entry["runs"].values():
            for run in by_count.values():
                run["summary"] = summarize(run["latencies_ms"])
    clocks = [
        clock
        for entry in results["stacks"].values()
        for by_count in entry["runs"].values()
        for run in by_count.values()
        for clock in run["clock_offset_ms"]
    ]
    # Each page's clock minus ours: how far it is, and how far beyond what the round trip
    # of its reading explains (at most 0 when the clocks agree).
    results["clock_check_ms"] = {
        "median_offset": statistics.median(abs(c["offset"]) for c in clocks) if clocks else 0.0,
        "largest_offset": max((abs(c["offset"]) for c in clocks), default=0.0),
        "largest_beyond_bound": max((abs(c["offset"]) - c["bound"] for c in clocks), default=0.0),
    }
    results["machine"]["load_average_after"] = list(os.getloadavg())
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(results))
    print()
    print(table(results, pages))
    print()
    print(split(results, pages))
    print()
    check = results["clock_check_ms"]
    print(
        f"page clocks - ours: median {check['median_offset']:.2f} ms, largest "
        f"{check['largest_offset']:.2f} ms, {check['largest_beyond_bound']:+.2f} ms beyond "
        "what its reading's round trip explains"
    )
    before, after = (
        results["machine"]["load_average"][0],
        results["machine"]["load_average_after"][0],
    )
    print(
        f"load average (1 min) before and after: {before:.1f}, {after:.1f} on {os.cpu_count()} CPUs"
    )
    for name, entry in results["stacks"].items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in entry["versions"].items()))
    print(f"Chromium {results['chromium']}; results in {path}")
    return results


if __name__ == "__main__":
    main()
