"""Event bindings: ``@RTView.event(...)`` and what a view's handlers declare.

A handler is a view method decorated with :func:`event`. Its keyword arguments whose
defaults are strings are *gathered*: each default is a CSS selector, and the browser
sends the current value of the element it matches. A keyword argument named ``target``
receives the :class:`EventTarget` that fired the event.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured

from .coercion import UnsupportedAnnotation, check_annotation, coerce_checked
from .protocol import BindingKey

F = TypeVar("F", bound=Callable[..., Any])

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
    if not isinstance(event, str) or not isinstance(selector, str) or not selector.strip():
        raise TypeError("RTView.event() takes an event name and a non-empty CSS selector")
    name, dot, key = event.partition(".")
    if not _EVENT_NAME.match(name):
        raise ValueError(f"RTView.event(): {event!r} is not a DOM event name")
    if dot and not _KEY_NAME.match(key):
        raise ValueError(f"RTView.event(): {key!r} is not a key name")
    if debounce is not None and throttle is not None:
        raise TypeError("RTView.event(): use debounce= or throttle=, not both")
    binding = EventBinding(
        event=name,
        selector=selector,
        key=key.lower() or None,
        debounce=_milliseconds("debounce", debounce),
        throttle=_milliseconds("throttle", throttle),
        prevent_default=(name == "submit") if prevent_default is None else bool(prevent_default),
        stop_propagation=bool(stop_propagation),
    )

    def decorate(function: F) -> F:
        if not callable(function):
            raise TypeError("RTView.event() decorates a view method")
        existing = getattr(function, BINDINGS_ATTRIBUTE, ())
        setattr(function, BINDINGS_ATTRIBUTE, (binding, *existing))
        return function

    return decorate


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
