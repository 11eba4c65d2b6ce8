"""Turning gathered browser values into the types a handler's annotations ask for.

The browser sends JSON: strings, booleans, numbers, lists of strings and objects of
strings (forms). A handler annotates a gathered keyword argument with the Python type it
wants; :func:`coerce` converts or raises :class:`InvalidValue` with a sentence the page can
show. Annotations that cannot be coerced safely are refused when the handler is first
called (:class:`UnsupportedAnnotation`), never guessed at.

Numbers are bounded before they are converted (:data:`MAX_DIGITS`, :data:`MAX_EXPONENT`):
``Decimal("1E+999999999")`` costs nothing to make, but ``int()`` of it, or formatting
it, would take the process for minutes.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import types
import typing
from typing import Any, Literal, Union

#: The most digits a gathered ``int``, ``float`` or ``Decimal`` may have ...
MAX_DIGITS = 100
#: ... and the largest exponent, either way (``1E+1000``, ``1E-1000``).
MAX_EXPONENT = 1000

_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no", ""})


class InvalidValue(ValueError):
    """A gathered value does not fit its parameter's annotation."""


class UnsupportedAnnotation(TypeError):
    """A handler parameter's annotation is not one django-rt knows how to coerce to."""


def describe(annotation: Any) -> str:
    """A short human name for an annotation: ``int``, ``list[str]``, ``str | None``."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


_SCALARS = (str, int, float, bool, decimal.Decimal, datetime.date, datetime.datetime, datetime.time)
_CONTAINERS = (list, tuple, set, frozenset)


def check_annotation(annotation: Any) -> None:
    """Raise :class:`UnsupportedAnnotation` unless :func:`coerce` supports ``annotation``.

    Checked before any value is looked at, so an unsupported annotation is refused
    whatever the browser sent (nothing, an empty list, a value another union member fits).
    """
    if annotation is Any or annotation is object or annotation is None:
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union or origin is types.UnionType:
        for option in args:
            if option is not type(None):
                check_annotation(option)
        return
    if origin is Literal:
        for option in args:
            simple = option is None or type(option) in (str, int, bool)
            if not (simple or isinstance(option, enum.Enum)):
                raise UnsupportedAnnotation(f"cannot coerce to {describe(annotation)}")
        return
    if origin in _CONTAINERS or annotation in _CONTAINERS:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise UnsupportedAnnotation("fixed-length tuple annotations are not supported")
        if args:
            check_annotation(args[0])
        return
    if origin is dict or annotation is dict:
        if args:
            if args[0] is not str and args[0] is not Any:
                raise UnsupportedAnnotation(
                    f"cannot coerce to {describe(annotation)}: the keys of a form are text, "
                    "annotate dict[str, ...]"
                )
            check_annotation(args[1])
        return
    if origin is not None:
        raise UnsupportedAnnotation(f"cannot coerce to {describe(annotation)}")
    if not isinstance(annotation, type):
        raise UnsupportedAnnotation(f"cannot coerce to {annotation!r}")
    if annotation not in _SCALARS and not issubclass(annotation, enum.Enum):
        raise UnsupportedAnnotation(f"cannot coerce to {annotation.__name__}")


def coerce(value: Any, annotation: Any) -> Any:
    """Convert ``value`` to ``annotation`` or raise :class:`InvalidValue`."""
    check_annotation(annotation)
    return coerce_checked(value, annotation)


def coerce_checked(value: Any, annotation: Any) -> Any:
    """:func:`coerce` for an annotation that :func:`check_annotation` already accepted."""
    if annotation is Any or annotation is object or annotation is None:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union or origin is types.UnionType:
        return _coerce_union(value, annotation, args)
    if origin is Literal:
        for option in args:
            if option is None:
                if value is None:
                    return None
                continue
            try:
                if coerce_checked(value, type(option)) == option:
                    return option
            except InvalidValue:
                continue
        raise InvalidValue(f"{value!r} is not one of {', '.join(map(repr, args))}")
    if value is None:
        raise InvalidValue(f"expected {describe(annotation)}, got nothing")
    if origin in _CONTAINERS or annotation in _CONTAINERS:
        container = origin or annotation
        items = value if isinstance(value, list) else [value]
        item_type = args[0] if args else Any
        coerced = [coerce_checked(item, item_type) for item in items]
        try:
            return container(coerced)
        except TypeError:  # a list or an object cannot be an item of a set
            raise InvalidValue(
                f"expected {describe(annotation)}, got a list of lists or objects"
            ) from None
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise InvalidValue(f"expected an object (a form), got {_kind(value)}")
        value_type = args[1] if len(args) == 2 else Any
        return {str(key): coerce_checked(item, value_type) for key, item in value.items()}
    return _coerce_scalar(value, annotation)


def _coerce_union(value: Any, annotation: Any, args: tuple[Any, ...]) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise InvalidValue(f"expected {describe(annotation)}, got nothing")
    errors = []
    for option in args:
        if option is type(None):
            continue
        try:
            return coerce_checked(value, option)
        except InvalidValue as error:
            errors.append(str(error))
    raise InvalidValue(f"expected {describe(annotation)}: {'; '.join(errors)}")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    return repr(value)


def _scalar_text(value: Any, target: str) -> str:
    if isinstance(value, list | dict):
        raise InvalidValue(f"expected {target}, got {_kind(value)}")
    return str(value).strip()


def _shown(value: Any) -> str:
    """``repr(value)``, cut short: an error message need not repeat 32 KB of digits."""
    if isinstance(value, str) and len(value) > 36:
        return repr(value[:32] + "...")
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + "..."


def _bounded_int(number: int, value: Any) -> int:
    if abs(number) >= 10**MAX_DIGITS:
        raise InvalidValue(f"{_shown(value)} has more than {MAX_DIGITS} digits")
    return number


def _bounded_decimal(text: str, value: Any) -> decimal.Decimal | None:
    """``Decimal(text)`` if ``text`` is a decimal number within the bounds, ``None`` if it
    is no number; raises :class:`InvalidValue` if it is one out of bounds."""
    if len(text) > 4 * (MAX_DIGITS + 8):  # any number within the bounds is shorter
        raise InvalidValue(f"{_shown(value)} has more than {MAX_DIGITS} digits")
    try:
        amount = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    if amount.is_finite():
        sign, digits, exponent = amount.as_tuple()
        if len(digits) > MAX_DIGITS:
            raise InvalidValue(f"{_shown(value)} has more than {MAX_DIGITS} digits")
        if not -MAX_EXPONENT <= int(exponent) <= MAX_EXPONENT:
            raise InvalidValue(
                f"{_shown(value)} is out of range: its exponent is beyond ±{MAX_EXPONENT}"
            )
    return amount


def _coerce_scalar(value: Any, annotation: type) -> Any:
    name = annotation.__name__
    if annotation is str:
        if isinstance(value, list | dict):
            raise InvalidValue(f"expected text, got {_kind(value)}")
        return value if isinstance(value, str) else str(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = _scalar_text(value, "a boolean").lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidValue(f"{value!r} is not a boolean")
    if annotation is int:
        if isinstance(value, bool):
            raise InvalidValue("expected a whole number, got a boolean")
        if isinstance(value, int):
            return _bounded_int(value, value)
        if isinstance(value, float) and value.is_integer():
            return _bounded_int(int(value), value)
        text = _scalar_text(value, "a whole number")
        # int() of a long text takes quadratic time: count first (sign and "_" aside).
        if len(text) > MAX_DIGITS + 1 and len(text.lstrip("+-").replace("_", "")) > MAX_DIGITS:
            raise InvalidValue(f"{_shown(value)} has more than {MAX_DIGITS} digits")
        try:
            whole = int(text)
        except ValueError:
            raise InvalidValue(f"{value!r} is not a whole number") from None
        return _bounded_int(whole, value)
    if annotation is float:
        if isinstance(value, bool):
            raise InvalidValue("expected a number, got a boolean")
        source = value if isinstance(value, int | float) else _scalar_text(value, "a number")
        if isinstance(source, str):
            _bounded_decimal(source, value)  # "1" * 30000 or "1e999999999": refused alike
        try:
            number = float(source)
        except ValueError:
            raise InvalidValue(f"{value!r} is not a number") from None
        except OverflowError:  # an int too large for a float
            raise InvalidValue(f"{value!r} is not a finite number") from None
        if not math.isfinite(number):
            raise InvalidValue(f"{value!r} is not a finite number")
        return number
    if annotation is decimal.Decimal:
        text = _scalar_text(value, "a decimal number")
        amount = _bounded_decimal(text, value)
        if amount is None:
            raise InvalidValue(f"{value!r} is not a decimal number")
        if not amount.is_finite():
            raise InvalidValue(f"{value!r} is not a finite number")
        return amount
    if annotation in (datetime.date, datetime.datetime, datetime.time):
        text = _scalar_text(value, f"a {name}")
        try:
            return annotation.fromisoformat(text)
        except ValueError:
            raise InvalidValue(f"{value!r} is not an ISO {name}") from None
    if issubclass(annotation, enum.Enum):
        for member in annotation:
            # Same type, or the same text: True is not the member whose value is 1.
            same = type(value) is type(member.value) and value == member.value
            if same or str(member.value) == str(value):
                return member
        raise InvalidValue(f"{value!r} is not a valid {name}")
    raise UnsupportedAnnotation(f"cannot coerce to {name}")
