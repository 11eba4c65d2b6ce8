"""The in-process feed: changes reach the hubs of this process only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import Change, ChangeFeed, Subscriber
from .transport import Subscribers


class MemoryFeed(ChangeFeed):
    """One process, no server: the embedded default. ``LOCATION`` and ``OPTIONS`` are
    not used."""

    def __init__(self, location: str = "", options: Mapping[str, Any] | None = None) -> None:
        super().__init__(location, options)
        self._subscribers = Subscribers()

    def publish(self, changes: Sequence[Change]) -> None:
        self._subscribers.deliver(changes)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(subscriber)
