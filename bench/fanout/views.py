"""The benchmark's page, its write endpoint, and the naive baseline.

- :class:`EntriesView`: an ``RTView`` listing the rows of ``Entry`` (100 in the
  benchmark), with a button bound to a handler (the event round trips).
- :func:`write`: one change per request, made with the ORM in one transaction: a row
  renamed, or a row inserted and another deleted. It answers the commit's ``time.time()``.
  With ``publish``, it then publishes a frame on Redis, as the socket.io stack's Django
  app did for its Node server.
- :class:`NaiveConsumer`: what a page-level approach does. Every change renders every
  connected page again whole, with Django alone (one query per page), and sends it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
import tracemalloc
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.template.loader import get_template
from django.views.decorators.csrf import csrf_exempt
from tests.testapp.models import Entry

from django_rt import RTResponse, RTView

from .frames import reply, sized_frame

TEMPLATE = "fanout/list.html"


def entries() -> Any:
    return Entry.objects.order_by("position", "name")


class EntriesView(RTView):
    template_name = TEMPLATE

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = entries()
        return context

    @RTView.event("click", "#ping")
    def ping(self, request: HttpRequest) -> RTResponse:
        return RTResponse("#result", "pong")


_redis: Any = None
_redis_lock = threading.Lock()


def publisher() -> Any:
    global _redis
    with _redis_lock:
        if _redis is None:
            import redis

            settings = json.loads(os.environ.get("DJANGO_RT_FANOUT") or "{}")
            _redis = redis.Redis.from_url(settings.get("redis") or "redis://127.0.0.1:6379/0")
        return _redis


def change(data: dict[str, Any]) -> dict[str, Any]:
    """Make one change in one transaction; returns the commit's time and the row's key."""
    committed: dict[str, float] = {}
    with transaction.atomic():
        # Registered first, so it runs first once the transaction has committed.
        transaction.on_commit(lambda: committed.setdefault("t", time.time()))
        if data["op"] == "rename":
            entry = Entry.objects.get(pk=data["pk"])
            entry.name = data["name"]
            entry.save(update_fields=["name"])
        elif data["op"] == "swap":
            entry = Entry.objects.create(name=data["name"], position=data["position"])
            Entry.objects.get(pk=data["delete"]).delete()
        else:
            raise ValueError(f"unknown op {data['op']!r}")
        transaction.on_commit(NAIVE.changed)
    return {"t": committed["t"], "pk": entry.pk}


@csrf_exempt
def write(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    done = change(data)
    if data.get("publish"):
        publisher().publish(data["publish"], sized_frame(data["seq"], data["name"], data["size"]))
    return JsonResponse(done)


def traced(request: HttpRequest) -> JsonResponse:
    """What Python's heap holds now, garbage collected, while ``tracemalloc`` runs
    (``--trace-memory``); ``null`` otherwise."""
    if not tracemalloc.is_tracing():
        return JsonResponse({"traced": None})
    gc.collect()
    return JsonResponse({"traced": tracemalloc.get_traced_memory()[0]})


class Naive:
    """The naive baseline's connections, all on the server's event loop."""

    #: Pages rendered in the worker thread before their frames are handed to the loop.
    CHUNK = 10

    def __init__(self) -> None:
        self.consumers: dict[NaiveConsumer, None] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock: asyncio.Lock | None = None

    def add(self, consumer: NaiveConsumer) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self.lock = asyncio.Lock()
        self.consumers[consumer] = None

    def discard(self, consumer: NaiveConsumer) -> None:
        self.consumers.pop(consumer, None)

    def changed(self) -> None:
        """After a commit, in the writing thread: render every page again."""
        if self.loop is not None and self.consumers:
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self.rerender()))

    async def rerender(self) -> None:
        assert self.lock is not None
        async with self.lock:  # one change after the other, as they came
            consumers = list(self.consumers)
            for start in range(0, len(consumers), self.CHUNK):
                chunk = consumers[start : start + self.CHUNK]
                pages = await sync_to_async(render_pages, thread_sensitive=False)(len(chunk))
                for consumer, page in zip(chunk, pages, strict=True):
                    await consumer.send(text_data=page)


def render_pages(count: int) -> list[str]:
    template = get_template(TEMPLATE)
    return [
        json.dumps({"t": "page", "html": template.render({"entries": entries()})})
        for _ in range(count)
    ]


NAIVE = Naive()


class NaiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        NAIVE.add(self)

    async def disconnect(self, code: int) -> None:
        NAIVE.discard(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        answer = reply(text_data or "")
        if answer is not None:
            await self.send(text_data=answer)
