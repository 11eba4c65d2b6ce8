"""The event loop the application runs on during a test, and where django-rt's sync
work runs meanwhile: in the test's thread, with its database connection."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from .. import workers

R = TypeVar("R")

#: How long (seconds) the client waits for a reply or for the page to settle before it
#: fails the test. A safety net, not a measure: nothing waits for it to pass.
TIMEOUT = 10.0


@dataclass
class _Work:
    future: concurrent.futures.Future[Any]
    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Gateway(concurrent.futures.Executor):
    """Where the application's sync work runs while a client is open.

    An executor: django-rt's worker calls (the join's view, handlers, the hub's
    updates) and every thread-sensitive ``sync_to_async`` of the application's loop
    (Channels' session and auth middleware) submit their work here, from that loop.
    The work is run by the client call in progress, on its own loop, with
    ``sync_to_async(thread_sensitive=True)``: in the test's thread under
    ``async_to_sync`` (Django's ``TestCase``), where its database connection and the
    test's transaction are. Work submitted between two calls waits for the next.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: list[_Work] = []
        self.callers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def submit(
        self, fn: Callable[..., R], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[R]:
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        with self.lock:
            self.queue.append(_Work(future, fn, args, kwargs))
            callers = list(self.callers)
        for loop, wake in callers:
            with contextlib.suppress(RuntimeError):  # that call is over
                loop.call_soon_threadsafe(wake.set)
        return future

    async def serve(self, pending: concurrent.futures.Future[R]) -> R:
        """On the caller's loop: run the work submitted until ``pending`` is done."""
        wake = asyncio.Event()
        caller = (asyncio.get_running_loop(), wake)
        done = asyncio.wrap_future(pending)
        with self.lock:
            self.callers.append(caller)
        try:
            while True:
                with self.lock:
                    work = self.queue.pop(0) if self.queue else None
                    if work is None:
                        wake.clear()
                if work is not None:
                    await self._execute(work)
                    continue
                if done.done():
                    return done.result()
                waiting: asyncio.Future[Any] = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait([done, waiting], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiting.cancel()
        finally:
            with self.lock:
                self.callers.remove(caller)

    @staticmethod
    async def _execute(work: _Work) -> None:
        if not work.future.set_running_or_notify_cancel():
            return
        try:
            result = await sync_to_async(_run_here, thread_sensitive=True)(work)
        except BaseException as error:  # handed back to the submitting side, as raised
            work.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
        else:
            work.future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self.lock:
            work, self.queue = self.queue, []
        for item in work:
            item.future.cancel()


def _run_here(work: _Work) -> Any:
    """Run submitted work in the caller's thread, as Django's test client runs a
    request: a connection inside a transaction (a ``TestCase``'s) stays open (closing it
    would end the test's transaction), and asgiref's record of the loop this thread
    serves is the caller's again afterwards."""
    local = SyncToAsync.threadlocal
    saved = dict(vars(local))
    kept = []
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete = _keep  # type: ignore[method-assign]
            kept.append(connection)
    try:
        return work.function(*work.args, **work.kwargs)
    finally:
        for connection in kept:
            del connection.close_if_unusable_or_obsolete
        vars(local).clear()
        vars(local).update(saved)


def _keep() -> None:
    return None


_gateways: dict[asyncio.AbstractEventLoop, Gateway] = {}
_original_run: Callable[..., Awaitable[Any]] | None = None


async def _routed_run(
    executor: Any, function: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``workers._run`` while a client is open: the work of its application's loop
    goes to its gateway, any other loop's as usual."""
    gateway = _gateways.get(asyncio.get_running_loop())
    if gateway is not None:
        # As workers run it: the thread's old connections closed before and after.
        work = workers._with_connections(function)
        run = SyncToAsync(work, thread_sensitive=False, executor=gateway)  # type: ignore[arg-type]
        return await run(*args, **kwargs)
    assert _original_run is not None
    return await _original_run(executor, function, *args, **kwargs)


def _register(loop: asyncio.AbstractEventLoop, gateway: Gateway) -> None:
    global _original_run
    if _original_run is None:
        _original_run = workers._run
        workers._run = _routed_run
    _gateways[loop] = gateway
    # Where asgiref runs a thread-sensitive sync_to_async of this loop.
    AsyncToSync.loop_thread_executors[loop] = gateway  # type: ignore[assignment]


def _unregister(loop: asyncio.AbstractEventLoop) -> None:
    global _original_run
    _gateways.pop(loop, None)
    AsyncToSync.loop_thread_executors.pop(loop, None)
    if not _gateways and _original_run is not None:
        workers._run = _original_run  # type: ignore[assignment]
        _original_run = None


class AppLoop:
    """The event loop the application (the sockets, the hub) runs on, in its thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway = Gateway()
        self.thread = threading.Thread(target=self._run, name="django-rt-test-client", daemon=True)
        _register(self.loop, self.gateway)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def call(self, coroutine: Coroutine[Any, Any, R]) -> R:
        """Run ``coroutine`` on the application's loop; meanwhile, the work it hands
        over runs here."""
        pending = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return await self.gateway.serve(pending)
        except BaseException:
            pending.cancel()
            raise

    def stop(self) -> None:
        async def shutdown() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.gateway.shutdown()
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(TIMEOUT)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
        _unregister(self.loop)
        self.loop.close()


def project_application() -> Any:
    """The project's ASGI application: ``ASGI_APPLICATION``, else django-rt's own
    (Django's HTTP application plus the socket's route)."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    if path:
        return import_string(path)
    from ..asgi import get_asgi_application

    return get_asgi_application()
