"""The PostgreSQL feed: row changes come from triggers, through ``LISTEN``/``NOTIFY``.

``migrate`` installs statement-level triggers on the tables that pages can show (every
concrete model's, less ``IGNORE_MODELS`` and django-rt's own): after each ``INSERT``,
``UPDATE``, ``DELETE`` or ``TRUNCATE`` they send the keys of the rows that the statement
touched (from its transition tables) with ``pg_notify``, at commit and not at all on
rollback. So writes from anywhere reach the pages: the ORM, ``QuerySet.update()``, raw
SQL, ``psql``, another service. A statement that touches more than ``MAX_KEYS`` rows,
or whose keys would not fit in NOTIFY's 8000 bytes, sends one change of the whole
table instead.

A reader thread in each process listens on its own connection and reconnects with
backoff; notifications sent while it was disconnected are lost, so after a reconnect
its subscribers receive :data:`~django_rt.changes.RESYNC_ALL`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..conf import rt_settings
from . import (
    DELETE,
    RESYNC_ALL,
    SAVE,
    Change,
    ChangeFeed,
    Subscriber,
    count,
    name,
    own_model,
    publish_on_commit,
)
from . import seconds as seconds_option
from .transport import Backoff, Subscribers, Worker, changes_from, encode

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("django_rt")

#: The trigger function, and the triggers' names (the same on every table).
FUNCTION = "django_rt_notify"
TRIGGERS = {
    "django_rt_insert": "AFTER INSERT ON {table} REFERENCING NEW TABLE AS django_rt_new",
    "django_rt_update": (
        "AFTER UPDATE ON {table} REFERENCING OLD TABLE AS django_rt_old NEW TABLE AS django_rt_new"
    ),
    "django_rt_delete": "AFTER DELETE ON {table} REFERENCING OLD TABLE AS django_rt_old",
    "django_rt_truncate": "AFTER TRUNCATE ON {table}",
}
#: NOTIFY refuses payloads of 8000 bytes or more; keep a margin.
MAX_PAYLOAD = 7900
#: Longest wait for a notification in one call, so that a stopping reader ends soon.
LISTEN_SLICE = 0.25

# TG_ARGV: the channel, the most keys to send, then the columns that make a row's key.
FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $django_rt$
DECLARE
    op text := lower(left(TG_OP, 1));
    max_keys int := TG_ARGV[1]::int;
    columns text := '';
    source text;
    keys jsonb;
    payload text;
BEGIN
    IF TG_OP <> 'TRUNCATE' THEN
        FOR i IN 2 .. TG_NARGS - 1 LOOP
            columns := columns || CASE WHEN i > 2 THEN ', ' ELSE '' END
                || quote_ident(TG_ARGV[i]);
        END LOOP;
        source := CASE TG_OP
            WHEN 'INSERT' THEN format('SELECT %s FROM django_rt_new', columns)
            WHEN 'DELETE' THEN format('SELECT %s FROM django_rt_old', columns)
            ELSE format(
                'SELECT %s FROM django_rt_new UNION ALL SELECT %s FROM django_rt_old',
                columns, columns)
        END;
        EXECUTE format(
            'SELECT jsonb_agg(k) FROM (SELECT DISTINCT jsonb_build_array(%s) AS k '
            'FROM (%s) AS r LIMIT %s) AS s', columns, source, max_keys + 1) INTO keys;
        IF keys IS NULL THEN
            RETURN NULL;  -- the statement touched no row
        END IF;
        IF jsonb_array_length(keys) > max_keys THEN
            keys := NULL;  -- too many rows: the table changed
        END IF;
    END IF;
    payload := jsonb_build_object('t', TG_TABLE_NAME, 'o', op, 'k', keys)::text;
    IF octet_length(payload) > {MAX_PAYLOAD} THEN
        payload := jsonb_build_object('t', TG_TABLE_NAME, 'o', op, 'k', NULL)::text;
    END IF;
    PERFORM pg_notify(TG_ARGV[0], payload);
    RETURN NULL;
END
$django_rt$
"""


class PostgresFeed(ChangeFeed):
    """Every process of a PostgreSQL project, and every writer of its tables."""

    location_help = "a database alias of DATABASES on PostgreSQL (default: 'default')"
    options_spec = {
        "CHANNEL": name("django_rt_changes"),
        # A statement that touches more rows sends one change of its table.
        "MAX_KEYS": count(100),
        # Longest wait between two tries of a connection that failed.
        "RETRY_MAX_SECONDS": seconds_option(5),
    }

    def __init__(self, location: str = "", options: Mapping[str, Any] | None = None) -> None:
        super().__init__(location, options)
        self.alias = location or DEFAULT_DB_ALIAS
        #: Set while the reader listens.
        self.ready = threading.Event()
        self._subscribers = Subscribers(on_first=self._start, on_last=self._stop)
        self._reader = Worker("django-rt postgres feed", self._listen)
        self._watched: dict[str, Watched] | None = None

    @classmethod
    def check_settings(cls, location: str, options: Mapping[str, Any]) -> list[str]:
        problems = super().check_settings(location, options)
        alias = location or DEFAULT_DB_ALIAS
        database = settings.DATABASES.get(alias)
        if database is None:
            problems.append(
                f"DJANGO_RT['CHANGE_FEED']['LOCATION'] {alias!r} is not a database alias; "
                f"DATABASES has {', '.join(map(repr, settings.DATABASES))}."
            )
        elif "postgresql" not in str(database.get("ENGINE", "")):
            problems.append(
                f"DJANGO_RT['CHANGE_FEED']: PostgresFeed needs PostgreSQL, and database "
                f"{alias!r} is {database.get('ENGINE')!r}."
            )
        try:
            import psycopg  # noqa: F401
        except ImportError:
            problems.append(
                "DJANGO_RT['CHANGE_FEED']: PostgresFeed listens with psycopg 3: "
                'pip install "django-rtview[postgres]".'
            )
        return problems

    # the tables ---------------------------------------------------------------------

    @property
    def watched(self) -> dict[str, Watched]:
        """The tables that have triggers, by name."""
        if self._watched is None:
            self._watched = {table.name: table for table in watched_tables(self.alias)}
        return self._watched

    def covered(self, changes: Sequence[Change], using: str) -> list[Change]:
        """``changes`` less those that the triggers send already."""
        if using != self.alias:
            return list(changes)
        own = {table.labels[0][0] for table in self.watched.values()}
        return [change for change in changes if change.model not in own]

    def migrated(self, using: str) -> None:
        if using == self.alias and connections[using].vendor == "postgresql":
            install_triggers(using, self.options["CHANNEL"], self.options["MAX_KEYS"])

    # writing ------------------------------------------------------------------------

    def record(self, changes: Sequence[Change], using: str) -> None:
        """The triggers send the changes of the tables they watch (an ORM ``save()``
        is sent once, by its trigger); the others are published after commit."""
        rest = self.covered(changes, using)
        if rest:
            publish_on_commit(self.publish, rest, using)

    def publish(self, changes: Sequence[Change]) -> None:
        """NOTIFY the changes that no trigger sends (a resync, another database's
        models), in payloads under NOTIFY's limit."""
        rest = self.covered(changes, self.alias)
        if not rest:
            return
        with connections[self.alias].cursor() as cursor:
            for payload in _payloads(rest):
                cursor.execute("SELECT pg_notify(%s, %s)", [self.options["CHANNEL"], payload])

    # reading ------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(subscriber)

    def _start(self) -> None:
        self.ready.clear()
        self._reader.start()

    def _stop(self) -> None:
        self._reader.stop(timeout=0)

    def close(self) -> None:
        self._reader.stop()

    def _listen(self, stop: threading.Event) -> None:
        from psycopg import sql

        backoff = Backoff(self.options["RETRY_MAX_SECONDS"])
        lost = False  # notifications may have been sent while not listening
        while not stop.is_set():
            connection: psycopg.Connection[Any] | None = None
            try:
                connection = connect(self.alias, "django-rt listener")
                channel = sql.Identifier(self.options["CHANNEL"])
                connection.execute(sql.SQL("LISTEN {}").format(channel))
                self.ready.set()
                if lost:
                    lost = False
                    self._subscribers.deliver([RESYNC_ALL])
                backoff.reset()
                while not stop.is_set():
                    for notify in connection.notifies(timeout=LISTEN_SLICE):
                        changes = self.translate(notify.payload)
                        if changes:
                            self._subscribers.deliver(changes)
            except Exception as error:
                if stop.is_set():
                    break
                logger.warning("django-rt: PostgreSQL listener failed (%s); reconnecting", error)
                lost = True
                self.ready.clear()
                stop.wait(backoff.next())
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
        self.ready.clear()

    def translate(self, payload: str) -> list[Change]:
        """The changes that one notification carries."""
        try:
            data = json.loads(payload)
            if "c" in data:
                changes = changes_from(data["c"])
            else:
                table = self.watched.get(data["t"])
                if table is None:
                    return []
                changes = list(table.changes(data["o"], data["k"]))
        except (ValueError, KeyError, TypeError):
            logger.exception("django-rt: a notification is not a change: %r", payload[:200])
            return []
        ignored = set(rt_settings.IGNORE_MODELS)
        return list(dict.fromkeys(c for c in changes if c.model not in ignored))


def _payloads(changes: Sequence[Change]) -> Iterator[str]:
    """``{"c": [...]}`` payloads under NOTIFY's limit; a change too long for one alone
    becomes a change of its table."""
    payload = '{"c":' + encode(changes) + "}"
    if len(payload.encode()) <= MAX_PAYLOAD:
        yield payload
    elif len(changes) > 1:
        half = len(changes) // 2
        yield from _payloads(changes[:half])
        yield from _payloads(changes[half:])
    else:
        (change,) = changes
        yield '{"c":' + encode([Change(change.model[:200], "", change.kind)]) + "}"


# tables and triggers -----------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    """A table with triggers: the columns its notifications send for each row, and the
    models whose rows each column names (the first: the row itself, and the models
    that inherit it; then, for a many-to-many link table, the rows on both sides)."""

    name: str
    columns: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]

    def changes(self, op: str, keys: list[list[Any]] | None) -> Iterator[Change]:
        if keys is None:  # too many rows, or TRUNCATE: the tables changed
            for labels in self.labels:
                for label in labels:
                    yield Change(label, "", SAVE)
            return
        for key in keys:
            for position, (value, labels) in enumerate(zip(key, self.labels, strict=True)):
                if value is None:
                    continue
                # A deleted link leaves both sides' rows in place.
                kind = DELETE if op == "d" and position == 0 else SAVE
                for label in labels:
                    yield Change(label, str(value), kind)


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def watched_tables(using: str) -> list[Watched]:
    """The tables that pages can show, on the database ``using``: every concrete
    model's (unmanaged ones too: another service may write them), less
    ``IGNORE_MODELS`` and django-rt's own."""
    ignored = set(rt_settings.IGNORE_MODELS)
    concrete = [
        model
        for model in apps.get_models(include_auto_created=True)
        if not model._meta.proxy
        and not own_model(_label(model))
        and _label(model) not in ignored
        and router.allow_migrate_model(using, model)
    ]
    links: dict[type[models.Model], list[tuple[str, str, str, str]]] = {}
    for model in concrete:
        field: Any
        for field in model._meta.local_many_to_many:
            links.setdefault(field.remote_field.through, []).append(
                (
                    field.m2m_column_name(),
                    _label(model),
                    field.m2m_reverse_name(),
                    _label(field.remote_field.model),
                )
            )
    tables = []
    for model in concrete:
        pk = model._meta.pk
        assert pk is not None
        heirs = [
            _label(other)
            for other in concrete
            if other is not model and model in other._meta.get_parent_list()
        ]
        columns: list[str] = [str(pk.column)]
        labels: list[tuple[str, ...]] = [(_label(model), *heirs)]
        for source_column, source, target_column, target in links.get(model, ()):
            for column, label in ((source_column, source), (target_column, target)):
                if label not in ignored:
                    columns.append(column)
                    labels.append((label,))
        tables.append(Watched(model._meta.db_table, tuple(columns), tuple(labels)))
    return tables


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _existing(connection: BaseDatabaseWrapper) -> dict[tuple[str, str], tuple[str, ...]]:
    """django-rt's triggers in the search path: (table, trigger) -> arguments."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname, t.tgargs FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgname = ANY(%s) AND pg_table_is_visible(c.oid)",
            [list(TRIGGERS)],
        )
        return {
            (table, trigger): tuple(arg.decode() for arg in bytes(args).split(b"\0")[:-1])
            for table, trigger, args in cursor.fetchall()
        }


def install_triggers(using: str, channel: str, max_keys: int) -> None:
    """Create or refresh the triggers on every watched table of ``using``, and drop
    those on tables no longer watched. Idempotent: unchanged triggers stay as they are."""
    connection = connections[using]
    watched = {table.name: table for table in watched_tables(using)}
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') "
            "AND pg_table_is_visible(c.oid) AND c.relname = ANY(%s)",
            [list(watched)],
        )
        present = {row[0] for row in cursor.fetchall()}
        cursor.execute(FUNCTION_SQL)
        existing = _existing(connection)
        for (table, trigger), _ in existing.items():
            if table not in present:
                cursor.execute(
                    f"DROP TRIGGER IF EXISTS {trigger} ON {connection.ops.quote_name(table)}"
                )
        for table in sorted(present):
            quoted = connection.ops.quote_name(table)
            for trigger, when in TRIGGERS.items():
                args = (channel, str(max_keys), *watched[table].columns)
                if existing.get((table, trigger)) == args:
                    continue
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {quoted}")
                cursor.execute(
                    f"CREATE TRIGGER {trigger} {when.format(table=quoted)} FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION {FUNCTION}({', '.join(map(_literal, args))})"
                )
    missing = sorted(set(watched) - present)
    if missing:
        logger.info("django-rt: no table (or not a table) for %s: no triggers", missing)


def remove_triggers(using: str) -> None:
    """Drop django-rt's triggers and their function from ``using`` (PostgreSQL only)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    existing = _existing(connection)
    if not existing:
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for table, trigger in existing:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {quoted}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


def connect(alias: str, application_name: str) -> psycopg.Connection[Any]:
    """A psycopg 3 connection of its own (autocommit) to the database ``alias``, with
    Django's connection settings: for listening, which Django's connections do not."""
    import psycopg

    params = connections[alias].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):  # Django's own
        params.pop(key, None)
    params.setdefault("connect_timeout", 5)
    params["application_name"] = application_name
    return psycopg.connect(**params, autocommit=True)
