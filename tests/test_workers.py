"""The worker threads (``django_rt.workers``): the pool, the hub's thread, and the
database connections they leave behind."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from asgiref.sync import async_to_sync
from django.db import connections

from django_rt import workers
from django_rt.workers import hub_executor, run_in_hub_thread, run_in_worker, worker_pool

from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


def query_and_keep_the_connection():
    Entry.objects.count()
    wrapper = connections["default"]
    assert wrapper.connection is not None
    return wrapper, threading.current_thread().name


async def test_a_workers_database_connection_is_closed_after_the_call():
    # CONN_MAX_AGE = 0 (the test settings): closed at the end, as after a request.
    wrapper, thread = await run_in_worker(query_and_keep_the_connection)
    assert thread.startswith("django-rt-worker")
    assert wrapper.connection is None


async def test_the_hub_has_a_thread_of_its_own():
    names = {await run_in_hub_thread(lambda: threading.current_thread().name) for _ in range(3)}
    assert len(names) == 1 and names.pop().startswith("django-rt-hub")
    assert isinstance(hub_executor(), workers.HubThread)  # one thread, in order
    assert worker_pool()._max_workers == 8


async def test_async_to_sync_in_a_worker_runs_on_the_event_loop():
    loop_thread = threading.current_thread()

    async def where() -> threading.Thread:
        return threading.current_thread()

    assert await run_in_worker(lambda: async_to_sync(where)()) is loop_thread


_caller = contextvars.ContextVar("caller", default="nobody")


async def test_the_hubs_thread_sees_the_context_variables_of_its_caller():
    _caller.set("the hub's task")
    assert await run_in_hub_thread(_caller.get) == "the hub's task"


async def test_async_to_sync_runs_in_the_hubs_thread():
    """A view run again by the hub may wait for a coroutine (``async_to_sync``)."""

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await run_in_hub_thread(lambda: async_to_sync(answer)()) == 42


async def test_exceptions_reach_the_caller():
    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await run_in_worker(fail)


def open_connection():
    Entry.objects.count()
    return connections["default"]


async def test_the_hubs_thread_keeps_its_connection_between_batches(monkeypatch):
    monkeypatch.setattr(workers, "HUB_CONNECTION_LINGER", 0.2)
    first = await run_in_hub_thread(open_connection)
    # CONN_MAX_AGE = 0, as in the test settings: a request would have closed it.
    assert first.connection is not None
    second = await run_in_hub_thread(open_connection)
    assert second is first and second.connection is not None
    for _ in range(100):  # the next batch did not come: closed once the thread idles
        if first.connection is None:
            break
        await asyncio.sleep(0.02)
    assert first.connection is None


async def test_the_hubs_connections_close_at_once_when_asked():
    kept = await run_in_hub_thread(open_connection)
    assert kept.connection is not None
    await asyncio.to_thread(workers.close_hub_connections)
    assert kept.connection is None


async def test_a_broken_hub_connection_is_closed_before_the_next_batch():
    def break_it():
        wrapper = open_connection()
        wrapper.errors_occurred = True
        wrapper.is_usable = lambda: False  # as a connection the server dropped
        return wrapper

    broken = await run_in_hub_thread(break_it)
    assert broken.connection is None  # closed as the batch ended
    await run_in_hub_thread(lambda: broken.__dict__.pop("is_usable"))
    fresh = await run_in_hub_thread(open_connection)
    assert fresh.connection is not None
