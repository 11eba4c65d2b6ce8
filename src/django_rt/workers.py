"""Threads for sync work: a bounded pool for the connections, one thread for the hub.

Channels' ``database_sync_to_async`` (like asgiref's ``sync_to_async``) is thread
sensitive: every call of a process runs in one shared thread, so one handler that
sleeps for two seconds delays every other page's events, joins and live updates by as
much. Here a connection's work (its joins, handlers, access checks and resync renders)
runs in a pool of ``DJANGO_RT['WORKER_THREADS']`` threads, and the hub's updates in a
thread of their own, so that they never queue behind a handler.

A connection handles its frames one at a time, so it occupies at most one thread: a slow
connection delays only itself while fewer connections than threads are slow.

Each call closes the thread's database connections that Django would close at the end
of a request (``CONN_MAX_AGE``, a broken connection), before and after, as
``database_sync_to_async`` does for its thread.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django.db import close_old_connections

from .conf import rt_settings

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_pools: dict[str, ThreadPoolExecutor] = {}


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(threads, thread_name_prefix=name)
        return pool


def worker_pool() -> ThreadPoolExecutor:
    """The process's pool for connections' work (created on first use)."""
    return _pool("django-rt-worker", rt_settings.WORKER_THREADS)


def hub_executor() -> ThreadPoolExecutor:
    """The process's one thread for the hub's updates: batches apply in order."""
    return _pool("django-rt-hub", 1)


def _with_connections(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return run


async def _run(
    executor: ThreadPoolExecutor, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    # asgiref's SyncToAsync carries the context variables into the thread, and lets
    # async_to_sync() inside `function` run on this event loop.
    call = SyncToAsync(_with_connections(function), thread_sensitive=False, executor=executor)
    return await call(*args, **kwargs)


async def run_in_worker(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run sync ``function`` in the connections' pool and return its result."""
    return await _run(worker_pool(), function, *args, **kwargs)


async def run_in_hub_thread(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run sync ``function`` in the hub's own thread and return its result."""
    return await _run(hub_executor(), function, *args, **kwargs)
