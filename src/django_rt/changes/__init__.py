"""Where database changes come from: a feed that the hub of every process reads.

The ORM's ``post_save``, ``post_delete`` and ``m2m_changed`` signals publish after the
transaction commits (``transaction.on_commit``), so a rolled-back transaction publishes
nothing. The feed is one small interface, :class:`ChangeFeed`; the in-process
:class:`~django_rt.changes.memory.MemoryFeed` is the default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from django.utils.module_loading import import_string

from ..conf import rt_settings

SAVE = "save"
DELETE = "delete"


@dataclass(frozen=True)
class Change:
    """One row of one model changed: saved (created or updated) or deleted."""

    model: str  # "app_label.modelname", the concrete model's
    pk: str
    kind: str = SAVE


Subscriber = Callable[[Sequence[Change]], None]


class ChangeFeed(ABC):
    """Carries committed changes to every subscribed hub."""

    @abstractmethod
    def publish(self, changes: Sequence[Change]) -> None:
        """Called after commit, in the thread that committed."""

    @abstractmethod
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every batch published from now on; returns a
        function that unsubscribes. Subscribers may be called from any thread."""


@cache
def get_feed() -> ChangeFeed:
    """The process's feed, as ``DJANGO_RT['CHANGE_FEED']`` names it."""
    feed_class = import_string(rt_settings.CHANGE_FEED)
    feed = feed_class()
    if not isinstance(feed, ChangeFeed):
        raise TypeError(f"{rt_settings.CHANGE_FEED} is not a ChangeFeed")
    return feed
