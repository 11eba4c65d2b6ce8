"""The in-process feed: changes reach the hubs of this process only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from . import Change, ChangeFeed, Subscriber


class MemoryFeed(ChangeFeed):
    """One process, no server: the embedded default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []

    def publish(self, changes: Sequence[Change]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(changes)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe
