"""What the feeds that cross processes share: the wire form of a batch, the list of
subscribers, the background thread that reads (or sends), and the backoff between two
tries of a connection that failed."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from . import Change, Subscriber, own_model

logger = logging.getLogger("django_rt")


def encode(changes: Sequence[Change]) -> str:
    """A batch as compact JSON: ``[["app.model", "pk", "kind"], ...]``."""
    return json.dumps([[c.model, c.pk, c.kind] for c in changes], separators=(",", ":"))


def decode(text: str | bytes) -> list[Change]:
    """The batch that :func:`encode` wrote; ``ValueError`` for anything else."""
    return changes_from(json.loads(text))


def changes_from(items: object) -> list[Change]:
    """The batch of a decoded JSON value, as :func:`encode` wrote it."""
    if not isinstance(items, list):
        raise ValueError("a batch of changes is a JSON list")
    changes = []
    for item in items:
        if not (
            isinstance(item, list) and len(item) == 3 and all(isinstance(v, str) for v in item)
        ):
            raise ValueError(f"not a change: {item!r}")
        changes.append(Change(*item))
    return changes


def visible(changes: Sequence[Change]) -> list[Change]:
    """``changes`` without those of django-rt's own models."""
    return [change for change in changes if not own_model(change.model)]


class Subscribers:
    """The subscribers of one feed. ``on_first`` runs when the first one comes,
    ``on_last`` when the last one leaves (to start and stop a reader)."""

    def __init__(
        self,
        on_first: Callable[[], None] | None = None,
        on_last: Callable[[], None] | None = None,
    ) -> None:
        # Reentrant: a hub that is garbage-collected unsubscribes from wherever it is.
        self._lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self._on_first = on_first
        self._on_last = on_last

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def add(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)
            first = len(self._subscribers) == 1
        if first and self._on_first is not None:
            self._on_first()

        def unsubscribe() -> None:
            with self._lock:
                if subscriber not in self._subscribers:
                    return
                self._subscribers.remove(subscriber)
                last = not self._subscribers
            if last and self._on_last is not None:
                self._on_last()

        return unsubscribe

    def deliver(self, changes: Sequence[Change]) -> None:
        """Call every subscriber; one that raises costs nothing to the others."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(changes)
            except Exception:
                logger.exception("django-rt: a change feed subscriber failed")


class Worker:
    """One background thread at a time, running ``target(stop)`` until ``stop`` is set.
    A worker stopped and started again runs a new thread; the old one sees its own
    ``stop`` set and ends."""

    def __init__(self, name: str, target: Callable[[threading.Event], None]) -> None:
        self.name = name
        self._target = target
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stopping: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name=self.name, daemon=True
            )
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        try:
            self._target(stop)
        except Exception:  # a bug: say so, instead of going silent
            logger.exception("django-rt: %s stopped", self.name)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end, and wait up to ``timeout`` seconds for it and for
        the threads stopped before without waiting."""
        with self._lock:
            if self._thread is not None:
                self._stopping.append(self._thread)
            self._thread = None
            self._stop.set()
            self._stopping = [thread for thread in self._stopping if thread.is_alive()]
            threads = list(self._stopping)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


class Backoff:
    """Delays between the tries of a connection: doubling from ``first`` up to
    ``longest``, with jitter so that many processes do not retry in step."""

    def __init__(self, longest: float, first: float = 0.05) -> None:
        self.first = min(first, longest)
        self.longest = longest
        self.delay = self.first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.longest)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.delay = self.first
