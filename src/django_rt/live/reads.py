"""Read sets: the tables behind every SQL statement that a tracked render or a view's
``get_context_data()`` executes.

The proxies see what a template reads from the objects they wrap; they cannot see a
value that the view computed with a query (``qs.count()``, ``aggregate()``,
``latest()``), a subquery or an annotation over other tables, a prefetch, or a model
method that queries on its own. Every statement does go through Django's connection,
though: a wrapper on each connection (``connection.execute_wrappers``) hands the SQL of
each statement to the collectors active in the current context, and the tables named in
it become dependencies. Matching table names in the SQL text over-approximates (a
column that happens to share a table's name adds a dependency): coarser, never wrong.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

from . import recorder

_collectors: contextvars.ContextVar[tuple[set[Read], ...]] = contextvars.ContextVar(
    "django_rt_read_collectors", default=()
)

_precise: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "django_rt_precise_read", default=False
)

#: What a statement read: a table (a model's label), or one row of it, ``(label, pk)``
#: (a statement that selects by primary key alone, see :func:`row_read`).
Read = str | tuple[str, str]

_pattern: re.Pattern[str] | None = None
_labels: dict[str, str] = {}
_cache: dict[str, frozenset[str]] = {}
_CACHE_SIZE = 4096


def _table_pattern() -> re.Pattern[str]:
    global _pattern
    if _pattern is None:
        from django.apps import apps

        for model in apps.get_models(include_auto_created=True):
            concrete = model._meta.concrete_model or model
            _labels.setdefault(model._meta.db_table.lower(), concrete._meta.label_lower)
        names = sorted(_labels, key=len, reverse=True)
        # A table name as a whole word: quoted ("t", `t`, [t]) or bare in raw SQL.
        alternatives = "|".join(re.escape(name) for name in names) or r"(?!x)x"
        _pattern = re.compile(rf"(?<![\w$])(?:{alternatives})(?![\w$])", re.IGNORECASE)
    return _pattern


def tables_in(sql: str) -> frozenset[str]:
    """The labels (``app_label.modelname``) of the models whose tables ``sql`` names."""
    found = _cache.get(sql)
    if found is None:
        found = frozenset(_labels[name.lower()] for name in _table_pattern().findall(sql))
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[sql] = found
    return found


#: One table's columns, as Django's SQL compiler writes a query on one model (each
#: column of the table, with an optional alias), where its primary key is one value.
_ROW_SELECT = re.compile(
    r"SELECT (?P<columns>[^()]+?) FROM (?P<q>[\"`])(?P<table>[^\"`]+)(?P=q)"
    r" WHERE (?P=q)(?P=table)(?P=q)\.(?P=q)(?P<column>[^\"`]+)(?P=q) = %s"
    r"(?: ORDER BY (?P<order>[^()]+?))?(?: LIMIT \d+)?"
)
#: Primary keys whose value in a statement's parameters reads as the change feed
#: names the row (``str(instance.pk)``) once the field converts it. Not text keys: a
#: case-insensitive collation (MySQL's default) finds the row "abc" for "ABC", and the
#: feed would name it otherwise.
_ROW_KEYS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
        "UUIDField",
    }
)
_row_cache: dict[str, Any] = {}


def _row_statement(sql: str) -> Any:
    """The primary key field that ``sql`` selects one row of a table by, alone (no
    join, no subquery, no other condition), or None."""
    found = _row_cache.get(sql, _row_cache)
    if found is not _row_cache:
        return found
    found = None
    match = _ROW_SELECT.fullmatch(sql)
    if match is not None:
        q, table = match["q"], match["table"]
        label = _labels.get(table.lower()) if _table_pattern() else None
        own = f"{q}{table}{q}."
        columns = match["columns"].split(", ")
        order = match["order"].split(", ") if match["order"] else []
        if label is not None and all(_own_column(c, own, q) for c in columns + order):
            from django.apps import apps

            field = apps.get_model(label)._meta.pk
            if (
                field is not None
                and field.column == match["column"]
                and field.get_internal_type() in _ROW_KEYS
            ):
                found = (label, field)
    if len(_row_cache) >= _CACHE_SIZE:
        _row_cache.clear()
    _row_cache[sql] = found
    return found


def _own_column(item: str, own: str, quote: str) -> bool:
    """Whether ``item`` (a selected column, or an ordering) is a column of the table
    whose quoted name and dot ``own`` is, with an alias or a direction or not."""
    item = re.sub(rf" (?:AS {quote}[^{quote}]+{quote}|ASC|DESC)$", "", item)
    if not item.startswith(own):
        return False
    column = item[len(own) :]
    return len(column) > 2 and column[0] == column[-1] == quote and quote not in column[1:-1]


def row_read(sql: str, params: Any) -> tuple[str, str] | None:
    """``(label, pk)`` when ``sql`` with ``params`` selects one row by its primary key
    and nothing else (``get(pk=...)``, ``filter(pk=...).first()``, ``.values()`` of
    it): what it returns changes only when that row does (it is saved,
    added or deleted). None for any other statement."""
    if (
        not sql.startswith("SELECT ")
        or not isinstance(params, list | tuple)
        or len(params) != 1
        or " WHERE " not in sql
    ):
        return None
    statement = _row_statement(sql)
    if statement is None:
        return None
    label, field = statement
    try:
        value = field.to_python(params[0])
    except Exception:  # not a value of the key: nothing precise to say
        return None
    return None if value is None else (label, str(value))


def reset() -> None:
    """Forget the table names (after models were added, in tests)."""
    global _pattern
    _pattern = None
    _labels.clear()
    _cache.clear()
    _row_cache.clear()


@contextmanager
def collect() -> Iterator[set[Read]]:
    """Collect what the statements executed inside read: the labels of the tables,
    and ``(label, pk)`` for a statement that read one row by primary key alone."""
    tables: set[Read] = set()
    token = _collectors.set((*_collectors.get(), tables))
    try:
        yield tables
    finally:
        _collectors.reset(token)


@contextmanager
def precise() -> Iterator[None]:
    """Statements inside read what the caller records more precisely itself (a proxy
    loading a foreign key's row or a deferred field depends on that row, not its
    table): they add nothing."""
    token = _precise.set(True)
    try:
        yield
    finally:
        _precise.reset(token)


def note(tables: frozenset[Read] | set[Read]) -> None:
    """Record ``tables`` as read, as if a statement reading them had run here (for
    results served from a cache): into every active collector, and into the innermost
    frame of the tracked render, if any (a row read counts as its table's there)."""
    for collector in _collectors.get():
        collector |= tables
    session = recorder.current()
    if session is not None:
        frame = session.frames[-1]
        for table in tables:
            dependency = ("t", table if isinstance(table, str) else table[0])
            frame.deps.add(dependency)
            frame.whole.add(dependency)


_WRITE = re.compile(r"\s*(?:INSERT|UPDATE|DELETE|REPLACE|MERGE|TRUNCATE|UPSERT)\b", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)
_write_listeners: list[Callable[[frozenset[str], str], None]] = []


def _after_close(cursor: Any, callback: Callable[[], None]) -> None:
    """Run ``callback`` once ``cursor`` (Django's cursor wrapper) is closed."""
    pending: list[Callable[[], None]] | None = cursor.__dict__.get("_rt_after_close")
    if pending is None:
        pending = cursor.__dict__["_rt_after_close"] = []
        close = cursor.close

        def close_then_notify() -> None:
            try:
                close()
            finally:
                callbacks = cursor.__dict__.pop("_rt_after_close", [])
                cursor.__dict__.pop("close", None)
                for pending_callback in callbacks:
                    pending_callback()

        cursor.close = close_then_notify
    pending.append(callback)


#: Tables whose writes the current statement's caller announces itself, row by row (a
#: model's save: its post_save names the row); their statements publish nothing more.
_covered: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "django_rt_covered", default=frozenset()
)


@contextmanager
def covered(tables: frozenset[str]) -> Iterator[None]:
    """The writes to ``tables`` (model labels, as :func:`tables_in` names them)
    meanwhile are announced by the caller (see :data:`_covered`)."""
    token = _covered.set(_covered.get() | tables)
    try:
        yield
    finally:
        _covered.reset(token)


def on_write(listener: Callable[[frozenset[str], str], None]) -> None:
    """Call ``listener(tables, using)`` after each statement that writes, with the
    tables it names (every one of them: coarser, never wrong)."""
    if listener not in _write_listeners:
        _write_listeners.append(listener)


def _record(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    if not isinstance(sql, str):
        return execute(sql, params, many, context)
    if (_collectors.get() or recorder.current() is not None) and not _precise.get():
        row = row_read(sql, params) if _collectors.get() else None
        note(tables_in(sql) if row is None else frozenset({row}))
    result = execute(sql, params, many, context)
    if _write_listeners and _WRITE.match(sql):
        tables = tables_in(sql) - _covered.get()
        if tables:
            using = context["connection"].alias

            def notify() -> None:
                for listener in _write_listeners:
                    listener(tables, using)

            if _RETURNING.search(sql):
                # Not done until its rows are read (SQLite commits it only then): the
                # listeners, which may publish or write, wait for the cursor to close.
                _after_close(context["cursor"], notify)
            else:
                notify()
    return result


def _wrap(connection: Any, **kwargs: Any) -> None:
    # First: connection.execute_wrapper() pops the last wrapper when its block ends, and a
    # connection opened inside such a block must not lose ours instead.
    if _record not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _record)


def install() -> None:
    """Put the recording wrapper on every database connection, present and future."""
    connection_created.connect(_wrap, dispatch_uid="django_rt.reads")
    for connection in connections.all(initialized_only=True):
        _wrap(connection)
