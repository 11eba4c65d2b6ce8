"""One database change pushed to many open pages: django-rt against baselines measured
in the same run.

    .venv/bin/python bench/fanout.py [--pages 100,1000] [--stacks ...] [--scenarios ...]

Real processes on loopback: uvicorn serving the benchmark's Django project (a live list
of 100 rows), the baselines (a bare ``websockets`` server, a bare ASGI app under the same
uvicorn, a Node socket.io server fed by Redis, a Django consumer that renders every page
again), and this process, which drives every WebSocket from one asyncio loop. See
docs/benchmarks.md (Fan-out) and ``--help``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from bench.fanout.harness import main  # noqa: E402

if __name__ == "__main__":
    main()
