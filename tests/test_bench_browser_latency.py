"""bench/browser_latency.py's django-rt side runs: one page, two saves, both seen in the DOM.

Its timings are not asserted (the benchmark reports them); only that the harness opens
the page, triggers the saves and sees each new value appear.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from .requirements import CHROMIUM, need

ROOT = Path(__file__).resolve().parents[1]


def test_django_rt_side_sees_every_save(tmp_path: Path) -> None:
    need("chromium", os.path.exists(CHROMIUM), f"no browser at {CHROMIUM} (set DJANGO_RT_CHROMIUM)")
    playwright = importlib.util.find_spec("playwright") is not None
    need("chromium", playwright, "playwright is not installed")
    output = tmp_path / "results.json"
    # In a process of its own: Playwright's sync API must not share this one's event loop.
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "browser_latency.py"),
            "--stacks=django-rt",
            "--kinds=value",
            "--pages=1",
            "--saves=2",
            "--warmup=0",
            "--gap=0",
            f"--json={output}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(output.read_text())["stacks"]["django-rt"]["runs"]["value"]["1"]
    assert run["summary"]["saves"] == 2
    assert run["summary"]["missed"] == 0
    assert [len(row) for row in run["latencies_ms"]] == [1, 1]
    assert all(latency is not None for row in run["latencies_ms"] for latency in row)
    # Each save's frame was seen arriving before its text reached the DOM, after save().
    arrivals = [at for row in run["frame_arrival_ms"] for at in row]
    assert len(arrivals) == 2 and all(at is not None for at in arrivals)
    for (latency,), (arrival,) in zip(run["latencies_ms"], run["frame_arrival_ms"], strict=True):
        assert 0 < arrival <= latency
    assert "| frame to DOM |" in done.stdout
