"""Proxies that behave like the model instances and querysets they wrap, and record
what a template reads from them.

A read is recorded as a dependency of the template node being rendered (see
``recorder.py``):

- ``("i", "app.model", "pk")``: any attribute, method, property or ``str()`` of an
  instance; a plain field (``{{ entry.name }}``) is recorded with the value it showed,
  so that a change that leaves it as it was leaves what shows it alone;
- ``("e", "app.model", "pk")``: its primary key alone (``{{ entry.pk }}``,
  ``{{ entry.id }}``): a row's key does not change while the row exists, so only its
  deletion concerns what shows the key;
- ``("t", "app.model")``: iterating, counting, indexing or testing a queryset, or any
  method of a related manager that runs a query;
- ``("v",)``: any attribute of the view (``{{ view.counter }}``).
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import Manager, Model, QuerySet
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.query import REPR_OUTPUT_SIZE, ModelIterable
from django.db.models.query_utils import DeferredAttribute

from . import reads, recorder

Dependency = tuple[str, ...]
VIEW: Dependency = ("v",)
#: The kinds of dependency on one row: its content, its existence.
ROW_KINDS = ("i", "e")


def label(model: type[Model] | Model) -> str:
    """The label changes are published under: the concrete model's, in lower case."""
    return model._meta.concrete_model._meta.label_lower  # type: ignore[union-attr]


def instance_dependency(instance: Model) -> Dependency | None:
    if instance.pk is None:
        return None
    return ("i", label(instance), str(instance.pk))


def exists_dependency(instance: Model) -> Dependency | None:
    """What reading ``instance``'s primary key depends on: that the row exists."""
    if instance.pk is None:
        return None
    return ("e", label(instance), str(instance.pk))


_PLAIN_FIELDS: dict[type[Model], frozenset[str]] = {}


def plain_fields(model: type[Model]) -> frozenset[str]:
    """The attribute names of ``model``'s own columns, but its primary key: a read of
    one is its value alone (a foreign key's ``author_id``, not the ``author`` row)."""
    found = _PLAIN_FIELDS.get(model)
    if found is None:
        primary_key = model._meta.pk.attname if model._meta.pk is not None else None
        found = frozenset(
            field.attname
            for field in model._meta.concrete_fields
            if field.attname != primary_key
            and isinstance(getattr(model, field.attname, None), DeferredAttribute)
        )
        _PLAIN_FIELDS[model] = found
    return found


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
    """:func:`wrap`, also inside lists, tuples and dicts (at any depth).

    A container comes back as it is when nothing inside it needs a proxy, and keeps
    its type when something does: lists, tuples and dicts are rebuilt, a subclass of
    ``list`` or ``dict`` is copied only if it stores its items as they do (it does not
    override indexing or iteration); any other subclass (a form's ``ErrorList``, an
    ``OrderedDict``, a named tuple) is left as it is, since its own methods decide how it
    renders.
    """
    kind = type(value)
    if kind is list or kind is tuple:
        items = [wrap_deep(item) for item in value]
        return kind(items) if _changed(items, value) else value
    if kind is dict:
        mapping = {key: wrap_deep(item) for key, item in value.items()}
        return mapping if _changed(mapping.values(), value.values()) else value
    if isinstance(value, list) and _stores_as(kind, list):
        items = [wrap_deep(item) for item in value]
        if not _changed(items, value):
            return value
        copied = copy.copy(value)
        copied[:] = items
        return copied if type(copied) is kind else value
    if isinstance(value, dict) and _stores_as(kind, dict):
        mapping = {key: wrap_deep(item) for key, item in value.items()}
        if not _changed(mapping.values(), value.values()):
            return value
        copied_mapping = copy.copy(value)
        copied_mapping.update(mapping)
        return copied_mapping if type(copied_mapping) is kind else value
    if isinstance(value, list | tuple | dict):
        return value
    return wrap(value)


def _changed(new: Iterable[Any], old: Iterable[Any]) -> bool:
    return any(a is not b for a, b in zip(new, old, strict=True))


def _stores_as(kind: type, base: type) -> bool:
    methods = ["__getitem__", "__setitem__", "__iter__", "__len__"]
    if base is dict:
        methods += ["update", "items", "values"]
    return all(getattr(kind, name, None) is getattr(base, name, None) for name in methods)


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

    # inspect.signature() follows __wrapped__: Django tells a method that needs
    # arguments (rendered as string_if_invalid) from one that raised TypeError by it.
    call.__wrapped__ = function  # type: ignore[attr-defined]

    # The template engine reads these flags before it calls anything.
    for flag in ("do_not_call_in_templates", "alters_data"):
        if hasattr(function, flag):
            setattr(call, flag, getattr(function, flag))
    return call


_ROW_DESCRIPTORS = (DeferredAttribute, ForwardManyToOneDescriptor, ReverseOneToOneDescriptor)


class _ObjectProxy:
    """What the object proxies share: they pass for the object they wrap, and every
    read of it (an attribute, ``str()``, ``obj["key"]``, ``len()``) calls :meth:`_rt_read`.

    Python looks up operators (``obj[key]``, ``len()``, ``iter()``, ``<``) on the type,
    never through ``__getattr__``, and Django's template engine tells what an object
    supports by trying them (``{{ obj.key }}`` tries ``obj["key"]`` first) or by
    ``hasattr`` (``{% for %}`` asks for ``__len__``). So each proxy is an instance of a
    subclass that defines exactly the operators of the wrapped object's type.
    """

    __slots__ = ("_rt_wrapped",)

    def __new__(cls, wrapped: Any, *args: Any) -> Any:
        return object.__new__(_with_operators(cls, type(wrapped)))

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


def _wrapped(proxy: Any) -> Any:
    proxy._rt_read()
    return object.__getattribute__(proxy, "_rt_wrapped")


def _getitem(self: Any, key: Any) -> Any:
    return wrap(_wrapped(self)[key])


def _iter(self: Any) -> Iterator[Any]:
    return map(wrap, iter(_wrapped(self)))


def _reversed(self: Any) -> Iterator[Any]:
    return map(wrap, reversed(_wrapped(self)))


def _contains(self: Any, item: Any) -> bool:
    return unwrap(item) in _wrapped(self)


def _binary(function: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda self, other: function(_wrapped(self), unwrap(other))


def _unary(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda self: function(_wrapped(self))


#: The operators a proxy forwards, where the wrapped object's type defines them.
_OPERATORS: dict[str, Callable[..., Any]] = {
    "__getitem__": _getitem,
    "__iter__": _iter,
    "__reversed__": _reversed,
    "__contains__": _contains,
    "__len__": _unary(len),
    "__lt__": _binary(operator.lt),
    "__le__": _binary(operator.le),
    "__gt__": _binary(operator.gt),
    "__ge__": _binary(operator.ge),
    "__int__": _unary(int),
    "__float__": _unary(float),
    "__index__": _unary(operator.index),
    "__format__": lambda self, spec: format(_wrapped(self), spec),
}
_PROXY_TYPES: dict[tuple[type, type], type] = {}


def _with_operators(proxy_type: type, wrapped_type: type) -> type:
    """``proxy_type``, or its subclass with the operators that ``wrapped_type`` has."""
    key = (proxy_type, wrapped_type)
    found = _PROXY_TYPES.get(key)
    if found is None:
        methods = {
            name: method
            for name, method in _OPERATORS.items()
            if getattr(wrapped_type, name, None) not in (None, getattr(object, name, None))
        }
        found = proxy_type
        if methods:
            found = type(proxy_type.__name__, (proxy_type,), {"__slots__": (), **methods})
        _PROXY_TYPES[key] = found
    return found


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

    def __getattr__(self, name: str) -> Any:
        wrapped = object.__getattribute__(self, "_rt_wrapped")
        if name == "pk" or name == wrapped._meta.pk.attname:
            # The row's key: the same for as long as the row exists.
            recorder.read(exists_dependency(wrapped))
            return getattr(wrapped, name)
        if name in plain_fields(type(wrapped)):
            with reads.precise():  # a deferred field's query: this row's
                value = getattr(wrapped, name)
            recorder.read_value(instance_dependency(wrapped), name, value)
            return value
        return _ObjectProxy.__getattr__(self, name)

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
        return self._rt_rows()

    def _rt_rows(self) -> list[Any]:
        render = recorder.current_serial()
        cached = object.__getattribute__(self, "_rt_results")
        if cached is not None and cached[0] == render:
            return cached[1]  # type: ignore[no-any-return]
        queryset = object.__getattribute__(self, "_rt_queryset")
        rows = recorder.evaluate(queryset)
        results = [wrap(row) for row in rows]
        # The render's number, not its session: the session's regions hold this proxy.
        object.__setattr__(self, "_rt_results", (render, results))
        return results

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rt_results())

    def __len__(self) -> int:
        return self._rt_count()

    def __bool__(self) -> bool:
        return self._rt_count() > 0

    def _rt_count(self) -> int:
        """How many rows: the rows this render saw, else, while a batch of changes is
        applied, the number of the query's keys, which the batch asks the database for
        once (a query whose rows hold their own columns alone has one row per key).
        For such a query, the render records the count, not the rows: what shows it
        changes when the number does."""
        queryset = object.__getattribute__(self, "_rt_queryset")
        if not own_columns_only(queryset):
            return len(self.rt_results())
        cached = object.__getattribute__(self, "_rt_results")
        session = recorder.current()
        primary_keys = getattr(session.evaluate, "primary_keys", None) if session else None
        with recorder.apart() as statements:  # the tables its statement read count too
            if primary_keys is not None and (
                cached is None or cached[0] != recorder.current_serial()
            ):
                count = len(primary_keys(queryset))
            else:
                count = len(self._rt_rows())
        tables = [dep for dep in statements.deps if dep[0] == "t"]
        recorder.read_count(queryset, count, [*query_dependencies(queryset), *tables])
        return count

    def __contains__(self, item: object) -> bool:
        return unwrap(item) in [unwrap(row) for row in self.rt_results()]

    def __getitem__(self, index: Any) -> Any:
        # Django's own QuerySet.__getitem__ decides, as it would without the proxy:
        # over the rows this render saw, once it saw them; before that with a query of
        # its own (a LIMIT for an index, a sliced queryset for a slice). It refuses a
        # negative index (|last) and a string ({{ qs.count }} tries qs["count"] first)
        # before it runs anything.
        queryset = object.__getattribute__(self, "_rt_queryset")
        if self._rt_evaluated():
            return _holding(queryset, self.rt_results())[index]
        if isinstance(index, int):
            limited = queryset.all()[index : index + 1]
        elif isinstance(index, slice) and index.step:
            limited = queryset.all()[index.start : index.stop]
        else:
            # A slice is a queryset of its own, as Django's; anything else raises.
            return wrap(queryset.all()[index])
        # Rows that Django fetches at once: fetched through the render's evaluate().
        for dependency in query_dependencies(queryset):
            recorder.read(dependency)
        rows = [wrap(row) for row in recorder.evaluate(limited)]
        return rows[0] if isinstance(index, int) else rows[:: index.step]

    def _rt_evaluated(self) -> bool:
        """Whether Django would index the rows it has already fetched."""
        cached = object.__getattribute__(self, "_rt_results")
        if cached is not None and cached[0] == recorder.current_serial():
            return True
        return object.__getattribute__(self, "_rt_queryset")._result_cache is not None

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

    def __repr__(self) -> str:
        # What Django prints for a queryset (str() is repr() for a QuerySet): the rows
        # its repr() fetches, as this render sees them, with Django's own truncation.
        queryset = object.__getattribute__(self, "_rt_queryset")
        rows = [unwrap(row) for row in self[: REPR_OUTPUT_SIZE + 1]]
        return repr(_holding(queryset, rows))

    __str__ = __repr__


def own_columns_only(queryset: QuerySet[Any]) -> bool:
    """Whether each row of ``queryset`` holds what its own table's row holds, and
    nothing else: no annotation or extra column, no related row, no prefetch, model
    instances of a model without parents. Its other rows cannot change with a batch
    that did not change them."""
    query = queryset.query
    return (
        queryset._iterable_class is ModelIterable
        and not queryset._prefetch_related_lookups  # type: ignore[attr-defined]
        and not queryset._known_related_objects  # type: ignore[attr-defined]
        and not query.annotations
        and not query.extra
        and not query.select_related
        and not query.distinct_fields
        and not query.combinator
        and not queryset.model._meta.parents
    )


def _holding(queryset: QuerySet[Any], rows: list[Any]) -> QuerySet[Any]:
    """A copy of ``queryset`` that has fetched ``rows``: Django's own code for an
    evaluated queryset then runs over them."""
    clone = queryset.all()
    clone._result_cache = rows
    clone._prefetch_done = True  # type: ignore[attr-defined]
    return clone


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
