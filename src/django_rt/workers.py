"""Threads for sync work: a bounded pool for the connections, one thread for the hub.

Channels' ``database_sync_to_async`` (like asgiref's ``sync_to_async``) is thread
sensitive: every call of a process runs in one shared thread, so one handler that
sleeps for two seconds delays every other page's events, joins and live updates by as
much. Here a connection's work (its joins, handlers, access checks and resync renders)
runs in a pool of ``DJANGO_RT['WORKER_THREADS']`` threads, and the hub's updates in a
thread of their own, so that they never queue behind a handler.

A connection handles its frames one at a time, so it occupies at most one thread: a slow
connection delays only itself while fewer connections than threads are slow.

Each call in the pool closes the thread's database connections that Django would close
at the end of a request (``CONN_MAX_AGE``, a broken connection), before and after, as
``database_sync_to_async`` does for its thread. The hub's thread keeps a connection
between batches that follow each other (a change does not wait for a new connection),
and closes it once no batch came for ``HUB_CONNECTION_LINGER`` seconds
(:func:`close_hub_connections` at once); a broken one, or one older than a
``CONN_MAX_AGE`` above 0, is closed before the next batch.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from asgiref.sync import SyncToAsync
from django.db import close_old_connections, connections

from .conf import rt_settings

logger = logging.getLogger("django_rt")

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_pools: dict[str, ThreadPoolExecutor] = {}

#: Seconds the hub's thread keeps its database connections after a batch.
HUB_CONNECTION_LINGER = 1.0


class HubThread(Executor):
    """One thread that runs what is submitted in order, and closes its database
    connections once nothing was submitted for ``HUB_CONNECTION_LINGER`` seconds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.start_lock = threading.Lock()

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        self.work.put((future, functools.partial(fn, *args, **kwargs)))
        if self.thread is None:
            with self.start_lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self.thread.start()
        return future

    def _run(self) -> None:
        holding = False
        while True:
            try:
                future, call = self.work.get(timeout=HUB_CONNECTION_LINGER if holding else None)
            except queue.Empty:
                _close_all()  # idle: nothing is kept open for no batch
                holding = False
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            holding = any(c.connection is not None for c in connections.all(initialized_only=True))


def _close_all() -> None:
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:  # a broken connection is gone all the same
            logger.warning("django-rt: closing a database connection failed", exc_info=True)


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(threads, thread_name_prefix=name)
        return pool


def worker_pool() -> ThreadPoolExecutor:
    """The process's pool for connections' work (created on first use)."""
    return _pool("django-rt-worker", rt_settings.WORKER_THREADS)


_hub: HubThread | None = None


def close_hub_connections(timeout: float | None = 10.0) -> None:
    """Close the database connections that the hub's thread keeps, and wait until they
    are closed: before a test database is dropped (PostgreSQL refuses while a
    connection is open), after tests that served live pages from a real server."""
    with _lock:
        hub = _hub
    if hub is not None and hub.thread is not None:
        hub.submit(_close_all).result(timeout)


def hub_executor() -> HubThread:
    """The process's one thread for the hub's updates: batches apply in order."""
    global _hub
    with _lock:
        if _hub is None:
            _hub = HubThread("django-rt-hub")
        return _hub


def _keeping_connections(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()  # broken ones, and those past a CONN_MAX_AGE above 0
        try:
            return function(*args, **kwargs)
        finally:
            for connection in connections.all(initialized_only=True):
                if connection.settings_dict["CONN_MAX_AGE"] == 0:
                    # Closed once the hub's thread idles (see HubThread) rather than now.
                    connection.close_at = None
            close_old_connections()

    return run


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
    executor: Executor, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    if isinstance(executor, HubThread):
        # The hub's own code, on every change: the shortest way there and back, with
        # the context variables (a copy of the hub task's, which starts empty).
        context = contextvars.copy_context()
        work = executor.submit(context.run, _keeping_connections(function), *args, **kwargs)
        return await asyncio.wrap_future(work)
    # asgiref's SyncToAsync carries the context variables into the thread, and lets
    # async_to_sync() inside `function` (a handler's) run on this event loop.
    # (Any executor does: SyncToAsync asks for a ThreadPoolExecutor, uses its submit.)
    call = SyncToAsync(
        _with_connections(function), thread_sensitive=False, executor=cast(Any, executor)
    )
    return await call(*args, **kwargs)


async def run_in_worker(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run sync ``function`` in the connections' pool and return its result."""
    return await _run(worker_pool(), function, *args, **kwargs)


async def run_in_hub_thread(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run sync ``function`` in the hub's own thread and return its result."""
    return await _run(hub_executor(), function, *args, **kwargs)
