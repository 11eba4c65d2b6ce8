"""The benchmark's writers, each a process of its own.

``python -m bench.fanout.writer rate``: reads ``{"rate": R, "requests": [...]}`` (JSON)
on stdin, each request ``{"port", "method", "path", "body"}``; sends them at R per
second on a fixed schedule (several in flight when an answer is slow), then prints one
JSON list: for each request, its answer (``{"t": ...}``: the change's time) and when it
was sent, or its error.

``python -m bench.fanout.writer orm``: a process with Django set up (the benchmark's
settings, its change feed), as a worker or a shell would be. Each line of stdin is the
JSON of a change (``bench.fanout.views.change``); each line of stdout its result.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

#: Requests in flight at most: more would measure the writer, not the server.
IN_FLIGHT = 16


async def rate(spec: dict[str, Any]) -> list[dict[str, Any]]:
    from .httpcall import call

    requests = spec["requests"]
    interval = 1.0 / spec["rate"]
    results: list[dict[str, Any]] = [{} for _ in requests]
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one(index: int, request: dict[str, Any]) -> None:
        async with slots:
            sent = time.time()
            try:
                status, body = await call(
                    request["port"], request["method"], request["path"], request.get("body")
                )
            except OSError as error:
                results[index] = {"sent": sent, "error": repr(error)}
                return
            if status != 200 or not isinstance(body, dict):
                results[index] = {"sent": sent, "error": f"{status}: {body!r}"}
            else:
                results[index] = {"sent": sent, **body}

    tasks = []
    start = time.monotonic() + 0.05
    for index, request in enumerate(requests):
        delay = start + index * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, request)))
    await asyncio.gather(*tasks)
    return results


def orm() -> None:
    import django

    django.setup()
    from .views import change

    for line in sys.stdin:
        try:
            result = change(json.loads(line))
        except Exception as error:  # the harness reports it
            result = {"error": repr(error)}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def main() -> None:
    mode = sys.argv[1]
    if mode == "rate":
        from .load import run

        print(json.dumps(run(rate(json.load(sys.stdin)))))
    elif mode == "orm":
        orm()
    else:
        raise SystemExit(f"unknown mode {mode!r}: rate or orm")


if __name__ == "__main__":
    main()
