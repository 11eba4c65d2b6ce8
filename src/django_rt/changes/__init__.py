"""Where database changes come from: a feed that the hub of every process reads.

The ORM's signals hand each batch of changes to the feed inside the transaction that
made them (:meth:`ChangeFeed.record`); by default the feed publishes the batch after
the transaction commits, so a rolled-back transaction publishes nothing. A feed that
keeps its own record in the database (the outbox of
:class:`~django_rt.changes.database.DatabaseFeed`) writes it right there, in the same
transaction.

``DJANGO_RT['CHANGE_FEED']`` names the backend like ``CACHES`` does: a dict with
``BACKEND``, ``LOCATION`` and ``OPTIONS``, or the backend's dotted path alone:

- :class:`~django_rt.changes.memory.MemoryFeed`: one process (the default);
- :class:`~django_rt.changes.database.DatabaseFeed`: an outbox table, any database;
- :class:`~django_rt.changes.redis.RedisFeed`: Redis Streams, many hosts;
- :class:`~django_rt.changes.postgres.PostgresFeed`: PostgreSQL triggers and NOTIFY,
  which also see writes made outside Django.

A feed that may have lost changes tells its subscribers with :data:`RESYNC_ALL`.
"""

from __future__ import annotations

import contextvars
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models.signals import post_migrate, pre_migrate
from django.dispatch import receiver
from django.utils.module_loading import import_string

from ..conf import rt_settings

SAVE = "save"
DELETE = "delete"
#: The kind of the resync signal, :data:`RESYNC_ALL`.
RESYNC = "resync"


@dataclass(frozen=True)
class Change:
    """One row of one model changed: saved (created or updated) or deleted.

    An empty ``pk`` is a change to the table: any of its rows may have been saved,
    added or deleted (a statement whose rows are unknown, or too many to list). The
    kind :data:`RESYNC` is the resync signal, :data:`RESYNC_ALL`.
    """

    model: str  # "app_label.modelname", the concrete model's
    pk: str
    kind: str = SAVE


#: The resync signal, delivered in a batch like any change: changes may have been lost
#: (a feed was disconnected, a buffer overflowed, a stream was trimmed past a reader),
#: so every page must be brought up to date by running its view again. Its model and
#: pk are empty; what else the batch holds is covered by it.
RESYNC_ALL = Change("", "", RESYNC)


def needs_resync(changes: Sequence[Change]) -> bool:
    """Whether ``changes`` holds the resync signal."""
    return any(change.kind == RESYNC for change in changes)


def own_model(label: str) -> bool:
    """Whether ``label`` is one of django-rt's own models (the outbox): no page shows
    them, and no feed carries their changes. (The messages that django-rt sends through
    the feed, a session's end or a broadcast, have labels of their own that name no
    model, and travel like any change.)"""
    app_label, _, model = label.partition(".")
    if app_label != "django_rt":
        return False
    from django.apps import apps

    return model in apps.all_models.get("django_rt", {})


Subscriber = Callable[[Sequence[Change]], None]


@dataclass(frozen=True)
class Option:
    """One of a backend's ``OPTIONS``: its default, and what a value must be."""

    default: Any
    expected: str  # "a positive number of seconds", for the check's message
    accepts: Callable[[Any], bool]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def seconds(default: float) -> Option:
    return Option(default, "a positive number of seconds", lambda v: _number(v) and v > 0)


def count(default: int) -> Option:
    return Option(
        default,
        "a positive integer",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    )


def name(default: str) -> Option:
    return Option(default, "a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()))


def flag(default: bool) -> Option:
    return Option(default, "True or False", lambda v: isinstance(v, bool))


def mapping(default: Mapping[str, Any]) -> Option:
    return Option(
        default,
        "a dict with string keys",
        lambda v: isinstance(v, dict) and all(isinstance(key, str) for key in v),
    )


class ChangeFeed(ABC):
    """Carries committed changes to every subscribed hub.

    A backend is built once per process (:func:`get_feed`) with the ``LOCATION`` and
    ``OPTIONS`` of ``DJANGO_RT['CHANGE_FEED']``; building it connects to nothing (the
    first :meth:`subscribe` or :meth:`publish` does).
    """

    #: The ``OPTIONS`` this backend reads, with their defaults.
    options_spec: ClassVar[Mapping[str, Option]] = {}
    #: What ``LOCATION`` names; empty for a backend that takes none.
    location_help: ClassVar[str] = ""
    #: Whether ``LOCATION`` must be given.
    location_required: ClassVar[bool] = False

    def __init__(self, location: str = "", options: Mapping[str, Any] | None = None) -> None:
        self.location = location
        self.options: dict[str, Any] = {
            key: option.default for key, option in self.options_spec.items()
        }
        self.options.update(options or {})

    @abstractmethod
    def publish(self, changes: Sequence[Change]) -> None:
        """Called after commit, in the thread that committed."""

    @abstractmethod
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every batch published from now on; returns a
        function that unsubscribes. Subscribers may be called from any thread."""

    def record(self, changes: Sequence[Change], using: str) -> None:
        """Called inside the transaction, on the database alias ``using``, that made
        ``changes`` (in autocommit mode: right after the statement). The default
        publishes them once that transaction commits, and not at all if it rolls back;
        a backend may write them in the transaction itself instead."""
        publish_on_commit(self.publish, changes, using)

    def migrated(self, using: str) -> None:
        """Called after ``migrate`` (and ``flush``) on the database alias ``using``: a
        backend that needs objects in the database (triggers) creates them here."""
        return None

    def close(self) -> None:
        """Stop the backend's threads and close its connections (at shutdown, in
        tests). Publishing or subscribing afterwards starts them again."""
        return None

    @classmethod
    def check_settings(cls, location: str, options: Mapping[str, Any]) -> list[str]:
        """Problems with this backend's ``LOCATION`` and ``OPTIONS``, as sentences."""
        where = "DJANGO_RT['CHANGE_FEED']"
        problems = []
        if cls.location_required and not location:
            problems.append(f"{where} needs a 'LOCATION' for {cls.__name__}: {cls.location_help}.")
        for key, value in options.items():
            option = cls.options_spec.get(key)
            if option is None:
                known = ", ".join(sorted(cls.options_spec)) or "none"
                problems.append(
                    f"{where}['OPTIONS'] has an unknown key {key!r} for {cls.__name__}; "
                    f"known keys: {known}."
                )
            elif not option.accepts(value):
                problems.append(
                    f"{where}['OPTIONS'][{key!r}] must be {option.expected}, not {value!r}."
                )
        return problems


_committing: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "django_rt_committing", default=False
)


def committing() -> bool:
    """Whether the caller runs inside a commit's callback that publishes the changes
    it made (in the thread that committed: a subscriber may act on them at once)."""
    return _committing.get()


class _Published:
    """The ``on_commit`` callback of one statement's changes. The statements of one
    transaction whose callbacks follow each other, in the same savepoint, form a
    group: the first of them to run publishes its changes and those of the group's
    later ones, whose callbacks then publish nothing. A transaction reaches the hubs as
    one batch rather than one per statement, while Django keeps one callback per
    statement (a savepoint's rollback drops its own; ``captureOnCommitCallbacks()``
    sees and runs each). An ``atomic(savepoint=False)`` block, which Django records as
    a savepoint of ``None``, is no savepoint: nothing rolls it back alone."""

    __slots__ = ("changes", "done", "group", "publish")

    def __init__(self, publish: Callable[[Sequence[Change]], None], changes: Sequence[Change]):
        self.publish = publish
        self.changes = changes
        self.done = False
        #: The group's callbacks in order; None for a callback alone (a group refers to
        #: its members and they to it: a cycle, which only a group makes, and which
        #: its first callback to run breaks).
        self.group: list[_Published] | None = None

    def __call__(self) -> None:
        if self.done:
            return
        token = _committing.set(True)
        try:
            self._publish()
        finally:
            _committing.reset(token)

    def _publish(self) -> None:
        group = self.group
        if group is None:
            self.done = True
            self.publish(self.changes)
            return
        start = next(index for index, member in enumerate(group) if member is self)
        batch: list[Change] = []
        for member in group[start:]:
            if not member.done:
                member.done = True
                batch.extend(member.changes)
        for member in group:
            member.group = None
        self.publish(batch)


def publish_on_commit(
    publish: Callable[[Sequence[Change]], None], changes: Sequence[Change], using: str
) -> None:
    """Call ``publish(changes)`` once the transaction on ``using`` commits (at once in
    autocommit mode), in one batch with the changes that the same transaction's next
    statements hand it (see :class:`_Published`)."""
    connection = transaction.get_connection(using)
    callback = _Published(publish, changes)
    hooks = connection.run_on_commit if connection.in_atomic_block else None
    if hooks:
        sids, last, *_ = hooks[-1]
        if (
            type(last) is _Published
            and not last.done
            and last.publish == publish
            and sids - {None} == set(connection.savepoint_ids) - {None}
        ):
            if last.group is None:
                last.group = [last]
            callback.group = last.group
            last.group.append(callback)
    transaction.on_commit(callback, using=using)


# the setting ----------------------------------------------------------------------

FEED_KEYS = ("BACKEND", "LOCATION", "OPTIONS")


@dataclass(frozen=True)
class FeedSettings:
    """``DJANGO_RT['CHANGE_FEED']``, in its dict form."""

    backend: str
    location: str = ""
    options: Mapping[str, Any] | None = None


def feed_settings(value: Any) -> FeedSettings:
    """Read a (valid) ``CHANGE_FEED`` value: a dotted path, or a dict like ``CACHES``."""
    if isinstance(value, str):
        return FeedSettings(value)
    return FeedSettings(value["BACKEND"], value.get("LOCATION") or "", value.get("OPTIONS") or {})


def feed_problems(value: Any) -> list[str]:
    """Problems with a ``CHANGE_FEED`` value, as sentences (``django_rt.E001``)."""
    where = "DJANGO_RT['CHANGE_FEED']"
    if isinstance(value, dict):
        problems = [
            f"{where} has an unknown key {key!r}; known keys: {', '.join(FEED_KEYS)}."
            for key in value
            if key not in FEED_KEYS
        ]
        backend = value.get("BACKEND")
        if not isinstance(backend, str) or not backend:
            return [*problems, f"{where}['BACKEND'] must be a dotted path, not {backend!r}."]
        location = value.get("LOCATION", "")
        if not isinstance(location, str):
            problems.append(f"{where}['LOCATION'] must be a string, not {location!r}.")
            location = ""
        options = value.get("OPTIONS", {})
        if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
            problems.append(f"{where}['OPTIONS'] must be a dict, not {options!r}.")
            options = {}
    elif isinstance(value, str):
        problems, backend, location, options = [], value, "", {}
    else:
        return [
            f"{where} must be a ChangeFeed's dotted path or a dict with "
            f"{', '.join(map(repr, FEED_KEYS))}, not {value!r}."
        ]
    try:
        feed_class = import_string(backend)
    except (ImportError, TypeError, ValueError) as error:
        return [*problems, f"{where} cannot be imported: {backend!r} ({error})."]
    if not (isinstance(feed_class, type) and issubclass(feed_class, ChangeFeed)):
        return [*problems, f"{where}: {backend!r} is not a ChangeFeed subclass."]
    return problems + feed_class.check_settings(location, options)


def create_feed() -> ChangeFeed:
    """A new feed, as ``DJANGO_RT['CHANGE_FEED']`` describes it."""
    config = feed_settings(rt_settings.CHANGE_FEED)
    feed_class = import_string(config.backend)
    if not (isinstance(feed_class, type) and issubclass(feed_class, ChangeFeed)):
        raise ImproperlyConfigured(f"{config.backend} is not a ChangeFeed")
    feed: ChangeFeed = feed_class(config.location, config.options)
    return feed


class _ProcessFeed:
    """``get_feed()``: the process's feed, built once, also when several threads ask
    for it first at the same time (a second instance would miss the first's
    subscribers). ``get_feed.cache_clear()`` forgets it (in tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._feed: ChangeFeed | None = None

    def __call__(self) -> ChangeFeed:
        with self._lock:
            if self._feed is None:
                self._feed = create_feed()
            return self._feed

    def cache_clear(self) -> None:
        with self._lock:
            self._feed = None


get_feed = _ProcessFeed()


#: Set while ``migrate`` runs in this process, until every table exists (django-rt's
#: own ``post_migrate``): the feed's own tables may not exist yet.
migrating = threading.Event()


@receiver(pre_migrate, dispatch_uid="django_rt.changes.migrating")
def _migrating(sender: Any, **kwargs: Any) -> None:
    migrating.set()


@receiver(post_migrate, dispatch_uid="django_rt.changes.migrated")
def _migrated(sender: Any, using: str, **kwargs: Any) -> None:
    """Once per ``migrate`` (django-rt's own ``post_migrate``, when every table exists):
    let the feed create what it needs in the database, and remove the triggers that a
    former :class:`~django_rt.changes.postgres.PostgresFeed` left there."""
    if getattr(sender, "name", None) != "django_rt":
        return
    migrating.clear()
    if feed_problems(rt_settings.CHANGE_FEED):
        return  # a bad setting is the system check's to report
    from . import postgres

    feed = create_feed()
    if not isinstance(feed, postgres.PostgresFeed):
        postgres.remove_triggers(using)
    feed.migrated(using)
