"""Proxies that behave like the model instances and querysets they wrap, and record
what a template reads from them.

A read is recorded as a dependency of the template node being rendered (see
``recorder.py``):

- ``("i", "app.model", "pk")``: any attribute, method, property or ``str()`` of an
  instance;
- ``("t", "app.model")``: iterating, counting, indexing or testing a queryset, or any
  method of a related manager that runs a query;
- ``("v",)``: any attribute of the view (``{{ view.counter }}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import Manager, Model, QuerySet
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.query_utils import DeferredAttribute

from . import reads, recorder

Dependency = tuple[str, ...]
VIEW: Dependency = ("v",)


def label(model: type[Model] | Model) -> str:
    """The label changes are published under: the concrete model's, in lower case."""
    return model._meta.concrete_model._meta.label_lower  # type: ignore[union-attr]


def instance_dependency(instance: Model) -> Dependency | None:
    if instance.pk is None:
        return None
    return ("i", label(instance), str(instance.pk))


def table_dependency(model: type[Model]) -> Dependency:
    return ("t", label(model))


def query_dependencies(queryset: QuerySet[Any]) -> list[Dependency]:
    """The tables a query reads: its model's, and those its filters and orderings join
    (``filter(author__name="Ann")`` changes with the authors too)."""
    cached: list[Dependency] | None = getattr(queryset, "_rt_dependencies", None)
    if cached is None:
        tables = {join.table_name for join in queryset.query.alias_map.values()}
        models = _models_by_table()
        found = [table_dependency(queryset.model)]
        found += [table_dependency(models[table]) for table in sorted(tables) if table in models]
        cached = list(dict.fromkeys(found))
        queryset._rt_dependencies = cached  # type: ignore[attr-defined]
    return cached


_TABLES: dict[str, type[Model]] = {}


def _models_by_table() -> dict[str, type[Model]]:
    if not _TABLES:
        from django.apps import apps

        for model in apps.get_models(include_auto_created=True):
            _TABLES.setdefault(model._meta.db_table, model)
    return _TABLES


def wrap(value: Any) -> Any:
    """``value`` with model instances, querysets and managers behind tracking proxies."""
    if isinstance(value, _ObjectProxy | RTQuerySetProxy | RTManagerProxy):
        return value
    if isinstance(value, Model):
        return _proxy_for(value)
    if isinstance(value, QuerySet):
        return RTQuerySetProxy(value)
    if isinstance(value, Manager):
        return RTManagerProxy(value)
    return value


def _proxy_for(instance: Model) -> RTModelProxy:
    """One proxy per row per page: a row reached again (through a foreign key, say)
    comes back as the proxy that already has the freshest copy of it, not as the stale
    copy a related-object cache may hold."""
    session = recorder.current()
    dependency = instance_dependency(instance)
    if session is not None and dependency is not None:
        proxy = session.registry.get(dependency)
        if proxy is not None:
            return proxy
    return RTModelProxy(instance)


def wrap_deep(value: Any) -> Any:
    """:func:`wrap`, also inside lists, tuples and dicts (one level of containers each)."""
    if isinstance(value, list):
        return [wrap_deep(item) for item in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(wrap_deep(item) for item in value)
    if type(value) is dict:
        return {key: wrap_deep(item) for key, item in value.items()}
    return wrap(value)


def unwrap(value: Any) -> Any:
    if isinstance(value, _ObjectProxy):
        return object.__getattribute__(value, "_rt_wrapped")
    if isinstance(value, RTQuerySetProxy):
        return object.__getattribute__(value, "_rt_queryset")
    return value


def _wrap_callable(function: Callable[..., Any], on_call: Callable[[], None]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        on_call()
        return wrap(function(*args, **kwargs))

    # The template engine reads these flags before it calls anything.
    for flag in ("do_not_call_in_templates", "alters_data"):
        if hasattr(function, flag):
            setattr(call, flag, getattr(function, flag))
    return call


_ROW_DESCRIPTORS = (DeferredAttribute, ForwardManyToOneDescriptor, ReverseOneToOneDescriptor)


class _ObjectProxy:
    """What the object proxies share: they pass for the object they wrap, and every
    read of it (an attribute, ``str()``) calls :meth:`_rt_read`."""

    __slots__ = ("_rt_wrapped",)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105  (isinstance(proxy, Entry) holds)
        return type(object.__getattribute__(self, "_rt_wrapped"))

    def _rt_read(self) -> None:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        wrapped = object.__getattribute__(self, "_rt_wrapped")
        self._rt_read()
        if isinstance(getattr(type(wrapped), name, None), _ROW_DESCRIPTORS):
            # A field, or the row a foreign key points at: the proxies record the rows.
            with reads.precise():
                value = getattr(wrapped, name)
        else:
            value = getattr(wrapped, name)
        if callable(value) and not isinstance(value, Model | Manager | QuerySet | type):
            return _wrap_callable(value, self._rt_read)
        return wrap(value)

    def __str__(self) -> str:
        self._rt_read()
        return str(object.__getattribute__(self, "_rt_wrapped"))

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_rt_wrapped"))

    def __eq__(self, other: object) -> bool:
        return bool(object.__getattribute__(self, "_rt_wrapped") == unwrap(other))

    def __hash__(self) -> int:
        return hash(object.__getattribute__(self, "_rt_wrapped"))

    def __bool__(self) -> bool:
        return bool(object.__getattribute__(self, "_rt_wrapped"))


class RTModelProxy(_ObjectProxy):
    """A model instance that records, for live regions, that the template read it.

    It passes for the instance: ``isinstance``, equality and hashing, truthiness,
    ``str()``, attributes, methods, properties, foreign keys (which come back as
    proxies themselves) and related managers (whose querysets are proxies).
    """

    __slots__ = ("__weakref__",)

    def __init__(self, instance: Model) -> None:
        object.__setattr__(self, "_rt_wrapped", instance)
        recorder.register(self)

    @property
    def rt_dependency(self) -> Dependency | None:
        return instance_dependency(object.__getattribute__(self, "_rt_wrapped"))

    def rt_swap(self, instance: Model) -> None:
        """Wrap a fresher copy of the same row."""
        object.__setattr__(self, "_rt_wrapped", instance)

    def _rt_read(self) -> None:
        recorder.read(instance_dependency(object.__getattribute__(self, "_rt_wrapped")))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_rt_wrapped"), name, value)


class RTQuerySetProxy:
    """A queryset that records, for live regions, that the template listed its table.

    Iteration gives :class:`RTModelProxy` objects. Within one tracked render the
    queryset runs once; a later re-render runs it again (once per change batch for all
    pages that show the same query).
    """

    __slots__ = ("_rt_queryset", "_rt_results", "__weakref__")

    def __init__(self, queryset: QuerySet[Any]) -> None:
        object.__setattr__(self, "_rt_queryset", queryset)
        object.__setattr__(self, "_rt_results", None)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return type(object.__getattribute__(self, "_rt_queryset"))

    @property
    def rt_model(self) -> type[Model]:
        return object.__getattribute__(self, "_rt_queryset").model  # type: ignore[no-any-return]

    def rt_results(self) -> list[Any]:
        """The rows, wrapped, evaluated once per tracked render."""
        for dependency in query_dependencies(object.__getattribute__(self, "_rt_queryset")):
            recorder.read(dependency)
        session = recorder.current()
        cached = object.__getattribute__(self, "_rt_results")
        if cached is not None and cached[0] is session:
            return cached[1]  # type: ignore[no-any-return]
        queryset = object.__getattribute__(self, "_rt_queryset")
        rows = recorder.evaluate(queryset)
        results = [wrap(row) for row in rows]
        object.__setattr__(self, "_rt_results", (session, results))
        return results

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rt_results())

    def __len__(self) -> int:
        return len(self.rt_results())

    def __bool__(self) -> bool:
        return bool(self.rt_results())

    def __contains__(self, item: object) -> bool:
        return unwrap(item) in [unwrap(row) for row in self.rt_results()]

    def __getitem__(self, index: Any) -> Any:
        # As QuerySet: only integers and slices. A template's {{ qs.count }} tries
        # qs["count"] first, which must not run the whole query.
        if not isinstance(index, int | slice) or isinstance(index, bool):
            kind = type(index).__name__
            raise TypeError(f"QuerySet indices must be integers or slices, not {kind}.")
        return self.rt_results()[index]

    def __reversed__(self) -> Iterator[Any]:
        return iter(list(reversed(self.rt_results())))

    def __getattr__(self, name: str) -> Any:
        # A fresh clone: the original may hold the rows of an earlier render in its cache.
        value = getattr(object.__getattribute__(self, "_rt_queryset").all(), name)
        if callable(value):
            # count(), exists(), first(), filter(), order_by() ... all read the table.
            model = self.rt_model
            return _wrap_callable(value, lambda: recorder.read(table_dependency(model)))
        return wrap(value)

    def __eq__(self, other: object) -> bool:
        return object.__getattribute__(self, "_rt_queryset") is unwrap(other)

    def __hash__(self) -> int:
        return id(object.__getattribute__(self, "_rt_queryset"))

    def __str__(self) -> str:
        # What Django prints for a queryset: its rows, as this render sees them.
        queryset = object.__getattribute__(self, "_rt_queryset")
        rows = [unwrap(row) for row in self.rt_results()]
        return f"<{type(queryset).__name__} {rows!r}>"

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_rt_queryset"))


class RTManagerProxy:
    """A (related) manager whose querysets and query results are tracked."""

    __slots__ = ("_rt_manager",)

    def __init__(self, manager: Manager[Any]) -> None:
        object.__setattr__(self, "_rt_manager", manager)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return type(object.__getattribute__(self, "_rt_manager"))

    def __getattr__(self, name: str) -> Any:
        manager = object.__getattribute__(self, "_rt_manager")
        value = getattr(manager, name)
        if callable(value):
            model = manager.model
            return _wrap_callable(value, lambda: recorder.read(table_dependency(model)))
        return wrap(value)

    def __str__(self) -> str:
        return str(object.__getattribute__(self, "_rt_manager"))

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_rt_manager"))


class RTObjectProxy(_ObjectProxy):
    """Any object whose every read records one dependency (the view's state)."""

    __slots__ = ("_rt_dependency",)

    def __init__(self, wrapped: Any, dependency: Dependency) -> None:
        object.__setattr__(self, "_rt_wrapped", wrapped)
        object.__setattr__(self, "_rt_dependency", dependency)

    def _rt_read(self) -> None:
        recorder.read(object.__getattribute__(self, "_rt_dependency"))


#: A page's instance proxies: one per row it has shown, by dependency.
ProxyRegistry = dict[Dependency, "RTModelProxy"]
