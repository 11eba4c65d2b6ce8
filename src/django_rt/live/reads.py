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

A statement that selects one row by its primary key reads that row alone. When it loads
a model instance, the instance is watched until the collection ends (its class is, for
that long, a subclass that notes any attribute read beyond the primary key, then steps
aside): a row that the code passed on without reading it (``get_object_or_404()`` put
in a context) depends on the row's existence only; what a template shows of it, the
proxies see (:meth:`ReadSet.passed`).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models import Model
from django.db.models.signals import post_init

from . import recorder

_collectors: contextvars.ContextVar[tuple[ReadSet, ...]] = contextvars.ContextVar(
    "django_rt_read_collectors", default=()
)
#: The row that the statement executing now selects by primary key, if any: the
#: instance of it that the statement's rows make next is watched (see ReadSet).
_expected: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "django_rt_expected_row", default=None
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


class _Loaded:
    """A model instance that a statement selecting its row by primary key made while
    reads were collected, watched for as long as a collection that saw it lasts."""

    __slots__ = ("holders", "instance", "key", "model", "untouched")

    def __init__(self, instance: Model, model: type[Model], key: tuple[str, str]) -> None:
        self.instance = instance
        self.model = model
        self.key = key
        self.holders = 0
        #: Whether nothing but its primary key, its ``_meta`` and its ``_state`` was read
        #: or set on it since it was made.
        self.untouched = True


class ReadSet(set[Read]):
    """What the statements executed inside :func:`collect` read (tables, and rows read
    by primary key), and the instances those row statements made."""

    def __init__(self) -> None:
        super().__init__()
        #: How many statements (or cached results) read each row by primary key.
        self.row_reads: dict[tuple[str, str], int] = {}
        self.loaded: list[_Loaded] = []

    def passed(self) -> frozenset[tuple[str, str]]:
        """The rows read by primary key whose every read made a model instance that
        nothing read beyond its key (its other fields, its relations, its ``str()``,
        ``__dict__``, ``__class__``), nor changed, while a collection watched it: the
        code passed them on as they came, and what it computed depends on their
        existence alone. A read whose result no instance came from (``values()``, a
        row that was not found, a cached result) counts as a read of the whole row."""
        clean: dict[tuple[str, str], int] = {}
        touched: set[tuple[str, str]] = set()
        for record in self.loaded:
            if record.untouched and not record.instance._state.adding:
                clean[record.key] = clean.get(record.key, 0) + 1
            else:
                touched.add(record.key)
        return frozenset(
            key
            for key, count in self.row_reads.items()
            if key not in touched and clean.get(key, 0) == count
        )


#: A subclass of each model whose instances note their reads (None: the model's own
#: class machinery does not allow one), and the instances watched now, by id().
_watchers: dict[type[Model], type[Model] | None] = {}
_watched: dict[int, _Loaded] = {}
_receivers: set[str] = set()


def _watcher(model: type[Model]) -> type[Model] | None:
    try:
        return _watchers[model]
    except KeyError:
        pass
    watcher: type[Model] | None = None
    # A hook of the project's own that runs for each subclass might register ours (Django's
    # AltersData only marks overriding methods).
    own_hooks = any(
        "__init_subclass__" in vars(klass) and not klass.__module__.startswith("django.")
        for klass in model.__mro__[:-1]
    )
    if model._meta.pk is not None and not own_hooks:
        watcher = _make_watcher(model)
    _watchers[model] = watcher
    return watcher


def _make_watcher(model: type[Model]) -> type[Model]:
    assert model._meta.pk is not None
    keys = frozenset({"_meta", "_state", "pk", "_get_pk_val", "_is_pk_set", model._meta.pk.attname})
    get = model.__getattribute__

    def __getattribute__(self: Model, name: str) -> Any:
        if name in keys:
            return get(self, name)
        _touched(self, model)
        return getattr(self, name)

    def __setattr__(self: Model, name: str, value: Any) -> None:
        _touched(self, model)
        setattr(self, name, value)

    def __delattr__(self: Model, name: str) -> None:
        _touched(self, model)
        delattr(self, name)

    namespace = {
        "__slots__": (),
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__getattribute__": __getattribute__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
    }
    # type.__new__, not the model's metaclass: no second model is registered, and the
    # subclass inherits _meta, managers and fields as they are.
    return type.__new__(type(model), model.__name__, (model,), namespace)


def _touched(instance: Model, model: type[Model]) -> None:
    """Something read or set more than ``instance``'s key: it is an ordinary instance of
    ``model`` again, and its read counts as a read of the whole row."""
    record = _watched.pop(id(instance), None)
    if record is not None:
        record.untouched = False
    object.__setattr__(instance, "__class__", model)


def _release(record: _Loaded) -> None:
    if _watched.pop(id(record.instance), None) is not None:
        object.__setattr__(record.instance, "__class__", record.model)


def _made(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    """``post_init``: watch the instance that the row statement executing now made."""
    expected = _expected.get()
    if expected is None:
        return
    collectors = _collectors.get()
    pk = instance.pk
    if not collectors or pk is None or str(pk) != expected[1]:
        return
    if sender._meta.concrete_model._meta.label_lower != expected[0]:  # type: ignore[union-attr]
        return
    _expected.set(None)
    watcher = _watcher(type(instance))
    if watcher is None:
        return  # not watched: the read counts as a read of the whole row
    record = _Loaded(instance, type(instance), expected)
    record.holders = len(collectors)
    for collector in collectors:
        collector.loaded.append(record)
    _watched[id(instance)] = record
    object.__setattr__(instance, "__class__", watcher)


def _hear_instances(label: str) -> None:
    """Connect :func:`_made` to ``post_init`` of the model with ``label`` and of its
    proxies, once (the models whose rows are read by primary key pay for it)."""
    if label in _receivers:
        return
    from django.apps import apps

    concrete = apps.get_model(label)._meta.concrete_model
    for model in apps.get_models():
        if model._meta.concrete_model is concrete:
            post_init.connect(_made, sender=model, weak=False, dispatch_uid=("django_rt", model))
    _receivers.add(label)


def reset() -> None:
    """Forget the table names (after models were added, in tests)."""
    global _pattern
    _pattern = None
    _labels.clear()
    _cache.clear()
    _row_cache.clear()


@contextmanager
def collect() -> Iterator[ReadSet]:
    """Collect what the statements executed inside read: the labels of the tables,
    and ``(label, pk)`` for a statement that read one row by primary key alone (with
    what became of the instances it made: :meth:`ReadSet.passed`)."""
    tables = ReadSet()
    token = _collectors.set((*_collectors.get(), tables))
    try:
        yield tables
    finally:
        _collectors.reset(token)
        if not _collectors.get():
            _expected.set(None)
        for record in tables.loaded:
            record.holders -= 1
            if record.holders <= 0:
                _release(record)


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
        for table in tables:
            if not isinstance(table, str):
                collector.row_reads[table] = collector.row_reads.get(table, 0) + 1
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
    collectors = _collectors.get()
    if (collectors or recorder.current() is not None) and not _precise.get():
        row = row_read(sql, params) if collectors else None
        note(tables_in(sql) if row is None else frozenset({row}))
        if row is not None:
            _hear_instances(row[0])
        if collectors:
            _expected.set(row)
    elif collectors:
        _expected.set(None)
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
