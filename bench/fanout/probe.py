"""The event round trips' client, in a process of its own: one more page, joined like the
load's, whose round trips the load process's backlog does not delay.

    python -m bench.fanout.probe '{"protocol": "rt", "port": 8000, "path": "/rt/ws/"}'

It prints ``ready`` once joined; then each line of its input sends one click of
``#ping`` and prints the seconds until its reply came back.
"""

from __future__ import annotations

import asyncio
import json
import sys

from .load import Load, load_page, run


async def main() -> None:
    spec = json.loads(sys.argv[1])
    load = Load()
    pages = [await load_page(spec["port"], "/")] if spec["protocol"] == "rt" else []
    await load.open(spec["protocol"], [(spec["port"], spec["path"])], 1, list(pages))
    handler = pages[0].handler("#ping") if pages else "ping"
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while await reader.readline():
        print(await load.event(load.clients[0], handler), flush=True)
    await load.close()


if __name__ == "__main__":
    run(main())
