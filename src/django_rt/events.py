"""Event bindings: ``@RTView.event(...)`` and what a view's handlers declare.

A handler is a view method decorated with :func:`event`. Its keyword arguments whose
defaults are strings are *gathered*: each default is a CSS selector, and the browser
sends the current value of the element it matches. A keyword argument named ``target``
receives the :class:`EventTarget` that fired the event.

A :class:`Bind` (``query = RTView.bind("#search")``) is a view attribute that follows
an element's value: it declares the handler that sets it.
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured

from .coercion import InvalidValue, UnsupportedAnnotation, check_annotation, coerce_checked
from .protocol import BindingKey

if TYPE_CHECKING:
    from .views import RTView

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

BINDINGS_ATTRIBUTE = "_rt_bindings"
TARGET_PARAMETER = "target"

_EVENT_NAME = re.compile(r"^[A-Za-z][\w:-]*$")
_KEY_NAME = re.compile(r"^[\w -]+$")


@dataclass(frozen=True)
class EventBinding:
    """One DOM event, on elements matching one selector, bound to a handler."""

    event: str
    selector: str
    key: str | None = None
    debounce: int | None = None
    throttle: int | None = None
    prevent_default: bool = False
    stop_propagation: bool = False
    #: Sent once more after every join (a bound value: the server's copy follows the
    #: element's value across reconnects).
    sync: bool = False

    def as_config(self, handler: Handler) -> dict[str, Any]:
        """This binding as the client reads it from the page configuration."""
        config: dict[str, Any] = {
            BindingKey.EVENT: self.event,
            BindingKey.SELECTOR: self.selector,
            BindingKey.HANDLER: handler.name,
            BindingKey.GATHER: dict(handler.gathered),
        }
        optional = {
            BindingKey.KEY: self.key,
            BindingKey.DEBOUNCE: self.debounce,
            BindingKey.THROTTLE: self.throttle,
            BindingKey.PREVENT_DEFAULT: self.prevent_default or None,
            BindingKey.STOP_PROPAGATION: self.stop_propagation or None,
            BindingKey.SYNC: self.sync or None,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config


@dataclass(frozen=True)
class EventTarget:
    """The element that fired an event, as the browser described it."""

    id: str | None = None
    tag: str | None = None
    name: str | None = None
    value: Any = None
    data: Mapping[str, str] = field(default_factory=dict)


def _milliseconds(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"RTView.event(): {name}= must be a non-negative int of milliseconds")
    return value


def event(
    event: str,
    selector: str,
    *,
    debounce: int | None = None,
    throttle: int | None = None,
    prevent_default: bool | None = None,
    stop_propagation: bool = False,
) -> Callable[[F], F]:
    """Bind a DOM event on elements matching ``selector`` to the decorated view method.

    ``event`` is any DOM event name, optionally with a key filter for keyboard events:
    ``"keydown.enter"``. ``debounce`` waits until the events stop for that many
    milliseconds; ``throttle`` sends at most one event per that many milliseconds.
    ``prevent_default`` defaults to on for ``submit`` and off otherwise. Events are
    delegated from ``document``, so elements added to the page later match too. Stack
    the decorator to bind one handler to several events.
    """
    binding = make_binding(
        event,
        selector,
        debounce=debounce,
        throttle=throttle,
        prevent_default=prevent_default,
        stop_propagation=stop_propagation,
    )

    def decorate(function: F) -> F:
        if not callable(function):
            raise TypeError("RTView.event() decorates a view method")
        existing = getattr(function, BINDINGS_ATTRIBUTE, ())
        setattr(function, BINDINGS_ATTRIBUTE, (binding, *existing))
        return function

    return decorate


def make_binding(
    event: str,
    selector: str,
    *,
    debounce: int | None = None,
    throttle: int | None = None,
    prevent_default: bool | None = None,
    stop_propagation: bool = False,
    sync: bool = False,
) -> EventBinding:
    """A checked :class:`EventBinding` (the arguments of :func:`event`)."""
    if not isinstance(event, str) or not isinstance(selector, str) or not selector.strip():
        raise TypeError("RTView.event() takes an event name and a non-empty CSS selector")
    name, dot, key = event.partition(".")
    if not _EVENT_NAME.match(name):
        raise ValueError(f"RTView.event(): {event!r} is not a DOM event name")
    if dot and not _KEY_NAME.match(key):
        raise ValueError(f"RTView.event(): {key!r} is not a key name")
    if debounce is not None and throttle is not None:
        raise TypeError("RTView.event(): use debounce= or throttle=, not both")
    return EventBinding(
        event=name,
        selector=selector,
        key=key.lower() or None,
        debounce=_milliseconds("debounce", debounce),
        throttle=_milliseconds("throttle", throttle),
        prevent_default=(name == "submit") if prevent_default is None else bool(prevent_default),
        stop_propagation=bool(stop_propagation),
        sync=sync,
    )


@dataclass(frozen=True)
class Handler:
    """A view method that the browser may call, with what it gathers."""

    name: str
    function: Callable[..., Any]
    bindings: tuple[EventBinding, ...]
    gathered: Mapping[str, str]
    wants_target: bool
    is_async: bool

    @classmethod
    def from_function(
        cls, view: type, name: str, function: Callable[..., Any], bindings: tuple[EventBinding, ...]
    ) -> Handler:
        where = f"{view.__qualname__}.{name}()"
        parameters = list(inspect.signature(function).parameters.values())
        if len(parameters) < 2 or parameters[1].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise ImproperlyConfigured(
                f"{where} must take (self, request, ...): handlers receive the request."
            )
        gathered: dict[str, str] = {}
        wants_target = False
        for parameter in parameters[2:]:
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            passed = parameter.name == TARGET_PARAMETER or isinstance(parameter.default, str)
            if passed and parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise ImproperlyConfigured(
                    f"{where} has a positional-only parameter {parameter.name!r}; handlers "
                    "receive gathered values and the target as keyword arguments."
                )
            if parameter.name == TARGET_PARAMETER:
                wants_target = True
            elif isinstance(parameter.default, str):
                gathered[parameter.name] = parameter.default
            elif parameter.default is inspect.Parameter.empty:
                raise ImproperlyConfigured(
                    f"{where} has a parameter {parameter.name!r} without a default. Give it a "
                    f"CSS selector as default (\"{parameter.name}='#{parameter.name}'\") to "
                    "gather that element's value, or any other default to leave it alone."
                )
        return cls(
            name=name,
            function=function,
            bindings=bindings,
            gathered=gathered,
            wants_target=wants_target,
            is_async=inspect.iscoroutinefunction(function),
        )

    @cached_property
    def annotations(self) -> dict[str, Any]:
        """Annotations of the gathered parameters, resolved on first use.

        Only those are resolved: ``request: HttpRequest`` or a return annotation imported
        under ``TYPE_CHECKING`` does not stop a handler from working.
        """
        function = inspect.unwrap(self.function)
        raw = getattr(function, "__annotations__", None) or {}
        wanted = types.SimpleNamespace(
            __annotations__={name: raw[name] for name in self.gathered if name in raw}
        )
        try:
            hints = typing.get_type_hints(wanted, globalns=getattr(function, "__globals__", None))
        except Exception as error:  # an unresolvable forward reference
            raise ImproperlyConfigured(
                f"Cannot resolve the annotations of handler {self.name}(): {error}"
            ) from error
        annotations = {name: hints.get(name, Any) for name in self.gathered}
        for name, annotation in annotations.items():
            try:
                check_annotation(annotation)
            except UnsupportedAnnotation as error:
                raise ImproperlyConfigured(
                    f"Handler {self.name}() parameter {name!r}: {error}. Annotate gathered "
                    "parameters with str, int, float, bool, Decimal, date, datetime, an Enum, "
                    "a Literal, list[...], dict[str, ...] or X | None."
                ) from error
        return annotations

    def coerce(self, name: str, value: Any) -> Any:
        """Coerce one gathered value to its parameter's annotation (checked once)."""
        return coerce_checked(value, self.annotations[name])


#: ``param=`` of :func:`bind` when it is not given: the attribute's own name.
_OWN_NAME = "\0"
_SEQUENCES = (list, tuple, set, frozenset)


class Bind(Generic[T]):
    """A view attribute that keeps the value of an element of the page (:func:`bind`).

    Reading it on a view gives the value; the class attribute is this descriptor. It
    adds to its class the handler that sets it, ``rt_set_<name>``, bound to ``event``
    on ``selector`` and gathering that element's value (coerced to the attribute's
    annotation, else to the default's type). A value that differs from the current one
    is set and the view's context runs again (:meth:`RTView.rt_rerun`).
    """

    def __init__(
        self,
        selector: str,
        *,
        event: str = "input",
        debounce: int | None = None,
        throttle: int | None = None,
        default: Any = "",
        param: str | None = _OWN_NAME,
    ) -> None:
        self.binding = make_binding(
            event, selector, debounce=debounce, throttle=throttle, sync=True
        )
        self.selector = selector
        self.default = default
        self.param = param
        self.name = ""
        self.annotation: Any = Any

    @property
    def handler_name(self) -> str:
        return f"rt_set_{self.name}"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        if self.param == _OWN_NAME:
            self.param = name
        self.annotation = self._annotation(owner)
        setattr(owner, self.handler_name, self._setter())

    def _annotation(self, owner: type) -> Any:
        where = f"{owner.__qualname__}.{self.name}"
        try:
            declared = inspect.get_annotations(owner).get(self.name)
        except NameError:  # deferred annotations naming what is not defined yet
            declared = None
        if declared is None:
            declared = str | None if self.default is None else type(self.default)
        elif isinstance(declared, str):
            module = sys.modules.get(owner.__module__)
            namespace = types.SimpleNamespace(__annotations__={"value": declared})
            try:
                declared = typing.get_type_hints(
                    namespace, globalns=vars(module) if module else None, localns=dict(vars(owner))
                )["value"]
            except Exception as error:
                raise ImproperlyConfigured(
                    f"Cannot resolve the annotation of {where}: {error}"
                ) from error
        try:
            check_annotation(declared)
        except UnsupportedAnnotation as error:
            raise ImproperlyConfigured(
                f"{where}: {error}. Annotate a bound value with str, int, float, bool, "
                "Decimal, date, datetime, an Enum, a Literal, list[...] or X | None."
            ) from error
        return declared

    def _setter(self) -> Callable[..., None]:
        name = self.name

        def setter(view: RTView, request: Any, value: Any = self.selector) -> None:
            if value != getattr(view, name):
                setattr(view, name, value)
                view.rt_rerun()

        setter.__name__ = setter.__qualname__ = self.handler_name
        setter.__annotations__ = {"value": self.annotation}
        setattr(setter, BINDINGS_ATTRIBUTE, (self.binding,))
        return setter

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Bind[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        # Not a data descriptor: from now on the instance's own attribute is read.
        value = instance.__dict__[self.name] = self.initial(instance)
        return value

    def initial(self, view: object) -> Any:
        """The value before the browser sent any: from the page's query string (a GET
        form that submits the same field, a link), else the default."""
        request = getattr(view, "request", None)
        if self.param and request is not None:
            values = request.GET.getlist(self.param)
            if values:
                many = typing.get_origin(self.annotation) in _SEQUENCES
                try:
                    return coerce_checked(values if many else values[-1], self.annotation)
                except InvalidValue:
                    pass
        return copy.copy(self.default)


def bind(
    selector: str,
    *,
    event: str = "input",
    debounce: int | None = None,
    throttle: int | None = None,
    default: Any = "",
    param: str | None = _OWN_NAME,
) -> Any:
    """Declare a view attribute that follows the value of the element ``selector``
    matches, sent on ``event`` (``debounce``/``throttle`` as for :func:`event`): a
    search box that filters a queryset needs no handler.

    The value starts as the query string's ``param`` (the attribute's name by
    default; ``None`` for none) or ``default``, and is coerced to the attribute's
    annotation (``page: int = RTView.bind(...)``), else to the default's type. When it
    changes, ``get_context_data()`` runs again and the page receives what differs.
    """
    return Bind(
        selector, event=event, debounce=debounce, throttle=throttle, default=default, param=param
    )


def collect_handlers(view: type) -> dict[str, Handler]:
    """The handlers of a view class, inherited along its MRO.

    A subclass that overrides a handler without decorating it keeps the parent's
    bindings; setting the name to ``None`` removes the handler.
    """
    handlers: dict[str, Handler] = {}
    for klass in reversed(view.__mro__):
        for name, value in vars(klass).items():
            bindings = getattr(value, BINDINGS_ATTRIBUTE, None) if callable(value) else None
            if bindings:
                handlers[name] = Handler.from_function(view, name, value, tuple(bindings))
            elif name in handlers:
                if callable(value):
                    previous = handlers[name].bindings
                    handlers[name] = Handler.from_function(view, name, value, previous)
                else:
                    del handlers[name]
    return handlers
