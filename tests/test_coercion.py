"""``django_rt.coercion.coerce``: gathered browser values to annotated Python types."""

from __future__ import annotations

import datetime
import enum
import time
import typing
from decimal import Decimal
from typing import Any, Literal, Optional, Union

import pytest

from django_rt.coercion import (
    MAX_DIGITS,
    MAX_EXPONENT,
    InvalidValue,
    UnsupportedAnnotation,
    coerce,
    describe,
)
from tests.testapp.models import Entry


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def refused(value: Any, annotation: Any) -> str:
    with pytest.raises(InvalidValue) as info:
        coerce(value, annotation)
    return str(info.value)


# str ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", "hello"),
        ("", ""),
        ("  padded  ", "  padded  "),
        (3, "3"),
        (1.5, "1.5"),
        (True, "True"),
    ],
)
def test_str(value, expected):
    result = coerce(value, str)
    assert result == expected and type(result) is str


@pytest.mark.parametrize(("value", "kind"), [(["a"], "a list"), ({"a": "b"}, "an object")])
def test_str_refuses_containers(value, kind):
    assert refused(value, str) == f"expected text, got {kind}"


def test_str_refuses_nothing():
    assert refused(None, str) == "expected str, got nothing"


# int ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3), (" 42 ", 42), ("-7", -7), (5, 5), (4.0, 4), ("0", 0)]
)
def test_int(value, expected):
    result = coerce(value, int)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("three", "'three' is not a whole number"),
        ("1.5", "'1.5' is not a whole number"),
        (1.5, "1.5 is not a whole number"),
        ("", "'' is not a whole number"),
        (True, "expected a whole number, got a boolean"),
        (False, "expected a whole number, got a boolean"),
        (["1"], "expected a whole number, got a list"),
        ({"n": "1"}, "expected a whole number, got an object"),
        (None, "expected int, got nothing"),
        (float("inf"), "inf is not a whole number"),
    ],
)
def test_int_refusals(value, message):
    assert refused(value, int) == message


# float ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("0.5", 0.5), (" 2 ", 2.0), (3, 3.0), (2.5, 2.5), ("-1e3", -1000.0)]
)
def test_float(value, expected):
    result = coerce(value, float)
    assert result == expected and type(result) is float


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a number"),
        ("inf", "'inf' is not a finite number"),
        ("nan", "'nan' is not a finite number"),
        ("1e400", "'1e400' is not a finite number"),
        (float("nan"), "nan is not a finite number"),
        (True, "expected a number, got a boolean"),
        (["1"], "expected a number, got a list"),
        ({"a": 1}, "expected a number, got an object"),
        (None, "expected float, got nothing"),
    ],
)
def test_float_refusals(value, message):
    assert refused(value, float) == message


def test_float_refuses_an_int_too_large_for_a_float():
    # JSON numbers arrive as Python ints of any size; float() would overflow.
    assert refused(10**400, float).endswith("is not a finite number")


# bool -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, "true", "TRUE", "on", "1", "yes", " Yes ", 1])
def test_bool_true(value):
    assert coerce(value, bool) is True


@pytest.mark.parametrize("value", [False, "false", "off", "0", "no", "", "  ", 0])
def test_bool_false(value):
    assert coerce(value, bool) is False


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("maybe", "'maybe' is not a boolean"),
        (2, "2 is not a boolean"),
        (["true"], "expected a boolean, got a list"),
        ({}, "expected a boolean, got an object"),
        (None, "expected bool, got nothing"),
    ],
)
def test_bool_refusals(value, message):
    assert refused(value, bool) == message


# Decimal --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.10", Decimal("1.10")), (" 3 ", Decimal("3")), (7, Decimal("7")), (0.25, Decimal("0.25"))],
)
def test_decimal(value, expected):
    result = coerce(value, Decimal)
    assert result == expected and type(result) is Decimal
    assert str(result) == str(expected)  # precision is kept: 1.10 stays 1.10


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a decimal number"),
        ("NaN", "'NaN' is not a finite number"),
        ("Infinity", "'Infinity' is not a finite number"),
        (True, "True is not a decimal number"),
        (["1"], "expected a decimal number, got a list"),
        (None, "expected Decimal, got nothing"),
    ],
)
def test_decimal_refusals(value, message):
    assert refused(value, Decimal) == message


# bounds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation"),
    [
        ("9" * MAX_DIGITS, int),
        ("-" + "9" * MAX_DIGITS, int),
        (10**MAX_DIGITS - 1, int),
        ("1" * MAX_DIGITS, float),
        ("1e-400", float),
        ("1" * MAX_DIGITS, Decimal),
        (f"1E+{MAX_EXPONENT}", Decimal),
        (f"1E-{MAX_EXPONENT}", Decimal),
        ("0." + "0" * 50 + "1", Decimal),
    ],
)
def test_numbers_within_the_bounds(value, annotation):
    coerce(value, annotation)


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("9" * (MAX_DIGITS + 1), int, "has more than 100 digits"),
        ("1" * 30000, int, "has more than 100 digits"),
        (10**MAX_DIGITS, int, "has more than 100 digits"),
        (1e300, int, "has more than 100 digits"),
        ("1" * (MAX_DIGITS + 1), float, "has more than 100 digits"),
        ("1e999999999", float, "its exponent is beyond ±1000"),
        ("1" * (MAX_DIGITS + 1), Decimal, "has more than 100 digits"),
        ("1E+999999999", Decimal, "its exponent is beyond ±1000"),
        ("1E-999999999", Decimal, "its exponent is beyond ±1000"),
        (f"1E+{MAX_EXPONENT + 1}", Decimal, "its exponent is beyond ±1000"),
        ("0." + "0" * 2000 + "1", Decimal, "has more than 100 digits"),
    ],
)
def test_numbers_beyond_the_bounds(value, annotation, message):
    started = time.perf_counter()
    refusal = refused(value, annotation)
    assert time.perf_counter() - started < 0.1
    assert refusal.endswith(message)
    assert len(refusal) < 120  # the value is cut short, not repeated whole


def test_bounds_hold_inside_containers():
    assert refused(["1", "1E+999999999"], list[Decimal]).endswith("beyond ±1000")
    assert refused({"n": "9" * 200}, dict[str, int]).endswith("more than 100 digits")
    assert refused("1E+999999999", Decimal | None).endswith("beyond ±1000")


# dates and times ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        ("2024-02-29", datetime.date, datetime.date(2024, 2, 29)),
        (" 2024-01-02 ", datetime.date, datetime.date(2024, 1, 2)),
        ("2024-01-02T10:30", datetime.datetime, datetime.datetime(2024, 1, 2, 10, 30)),
        (
            "2024-01-02T10:30:00+02:00",
            datetime.datetime,
            datetime.datetime(
                2024, 1, 2, 10, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
        ),
        ("10:30", datetime.time, datetime.time(10, 30)),
        ("23:59:59", datetime.time, datetime.time(23, 59, 59)),
    ],
)
def test_dates_and_times(value, annotation, expected):
    result = coerce(value, annotation)
    assert result == expected and type(result) is annotation


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("2024-02-30", datetime.date, "'2024-02-30' is not an ISO date"),
        ("yesterday", datetime.date, "'yesterday' is not an ISO date"),
        ("2024-01-02T10:00", datetime.date, "'2024-01-02T10:00' is not an ISO date"),
        ("noon", datetime.datetime, "'noon' is not an ISO datetime"),
        ("25:00", datetime.time, "'25:00' is not an ISO time"),
        (["2024-01-02"], datetime.date, "expected a date, got a list"),
        ({"d": "x"}, datetime.time, "expected a time, got an object"),
        (None, datetime.date, "expected date, got nothing"),
    ],
)
def test_date_refusals(value, annotation, message):
    assert refused(value, annotation) == message


# Enum -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        ("red", Color, Color.RED),
        ("green", Color, Color.GREEN),
        ("2", Level, Level.HIGH),
        (1, Level, Level.LOW),
    ],
)
def test_enum(value, annotation, expected):
    assert coerce(value, annotation) is expected


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("blue", Color, "'blue' is not a valid Color"),
        ("RED", Color, "'RED' is not a valid Color"),  # by value, not by name
        ("3", Level, "'3' is not a valid Level"),
        (True, Level, "True is not a valid Level"),  # a boolean is not the member whose value is 1
        (None, Color, "expected Color, got nothing"),
    ],
)
def test_enum_refusals(value, annotation, message):
    assert refused(value, annotation) == message


# Literal --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        ("m", Literal["s", "m", "l"], "m"),
        ("2", Literal[1, 2], 2),
        (2, Literal[1, 2], 2),
        ("on", Literal[True], True),
        ("red", Literal[Color.RED], Color.RED),
        (None, Literal["a", None], None),
    ],
)
def test_literal(value, annotation, expected):
    result = coerce(value, annotation)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("xl", Literal["s", "m", "l"], "'xl' is not one of 's', 'm', 'l'"),
        ("M", Literal["s", "m"], "'M' is not one of 's', 'm'"),
        (None, Literal["s", "m"], "None is not one of 's', 'm'"),
        (["s"], Literal["s"], "['s'] is not one of 's'"),
        (True, Literal[1], "True is not one of 1"),
        ("3", Literal[1, 2], "'3' is not one of 1, 2"),
    ],
)
def test_literal_refusals(value, annotation, message):
    assert refused(value, annotation) == message


# lists, tuples, sets --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        (["x", "z"], list[str], ["x", "z"]),
        ([], list[str], []),
        ("solo", list[str], ["solo"]),  # a single value becomes a list of one
        (["1", "2"], list[int], [1, 2]),
        ([["1"], "2"], list[list[int]], [[1], [2]]),
        (["1", None], list[int | None], [1, None]),
        (["a", 1, True], list, ["a", 1, True]),
        (["a", 1], typing.List[str], ["a", "1"]),  # noqa: UP006
        (["1", "2"], tuple[int, ...], (1, 2)),
        (["a"], tuple, ("a",)),
        (["1", "1", "2"], set[int], {1, 2}),
        (["a", "a"], set, {"a"}),
        (["a"], frozenset[str], frozenset({"a"})),
    ],
)
def test_sequences(value, annotation, expected):
    result = coerce(value, annotation)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        (["1", "x"], list[int], "'x' is not a whole number"),
        ({"a": "1"}, list[int], "expected a whole number, got an object"),
        (None, list[str], "expected list[str], got nothing"),
        (None, tuple[int, ...], "expected tuple[int, ...], got nothing"),
        ([{"a": 1}], set, "expected set, got a list of lists or objects"),
        ([["a"]], frozenset, "expected frozenset, got a list of lists or objects"),
    ],
)
def test_sequence_refusals(value, annotation, message):
    assert refused(value, annotation) == message


# dicts (forms) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        ({"title": "Hi", "n": ["1", "2"]}, dict, {"title": "Hi", "n": ["1", "2"]}),
        ({"a": "b"}, dict[str, str], {"a": "b"}),
        ({"n": "3", "m": 4}, dict[str, int], {"n": 3, "m": 4}),
        ({"n": ["1", "2"]}, dict[str, list[int]], {"n": [1, 2]}),
        ({"a": None}, dict[str, Any], {"a": None}),
        ({}, dict[str, int], {}),
    ],
)
def test_dicts(value, annotation, expected):
    assert coerce(value, annotation) == expected


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("text", dict, "expected an object (a form), got 'text'"),
        (["a"], dict[str, str], "expected an object (a form), got a list"),
        (True, dict, "expected an object (a form), got a boolean"),
        ({"n": "x"}, dict[str, int], "'x' is not a whole number"),
        (None, dict, "expected dict, got nothing"),
    ],
)
def test_dict_refusals(value, annotation, message):
    assert refused(value, annotation) == message


# optional values and unions -------------------------------------------------------


@pytest.mark.parametrize("annotation", [int | None, Optional[int], Union[int, None], None | int])  # noqa: UP007, UP045
def test_optional(annotation):
    assert coerce(None, annotation) is None
    assert coerce("5", annotation) == 5


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (int | None, "expected int | None: 'x' is not a whole number"),
        (Optional[int], "expected Optional[int]: 'x' is not a whole number"),  # noqa: UP007, UP045
    ],
)
def test_optional_refusal(annotation, message):
    assert refused("x", annotation) == message


def test_union_tries_members_in_order():
    assert coerce("3", int | str) == 3
    assert coerce("3", str | int) == "3"
    assert coerce("x", int | str) == "x"
    assert coerce("1.5", int | float) == 1.5
    assert coerce(["1"], int | list[int]) == [1]


def test_union_refusal_lists_every_member():
    assert refused("x", int | float) == (
        "expected int | float: 'x' is not a whole number; 'x' is not a number"
    )
    assert refused(None, int | str) == "expected int | str, got nothing"


# values left alone ----------------------------------------------------------------


@pytest.mark.parametrize("annotation", [Any, object])
@pytest.mark.parametrize("value", ["x", 3, None, ["a"], {"a": "b"}, True])
def test_any_and_object_pass_the_value_through(annotation, value):
    assert coerce(value, annotation) is value


# unsupported annotations ----------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (Entry, "cannot coerce to Entry"),
        (bytes, "cannot coerce to bytes"),
        (complex, "cannot coerce to complex"),
        (tuple[int, str], "fixed-length tuple annotations are not supported"),
        (tuple[int], "fixed-length tuple annotations are not supported"),
        (typing.Callable[[], int], "cannot coerce to Callable[[], int]"),
        ("int", "cannot coerce to 'int'"),  # an unresolved forward reference
        (typing.Annotated[int, "meta"], "cannot coerce to Annotated[int, 'meta']"),
    ],
)
def test_unsupported_annotation(annotation, message):
    with pytest.raises(UnsupportedAnnotation) as info:
        coerce("1", annotation)
    assert str(info.value) == message
    assert not isinstance(info.value, InvalidValue)


@pytest.mark.parametrize(
    ("value", "annotation"),
    [
        # Refused whatever the value: nothing, an empty list, a value another member fits.
        (None, Entry),
        (None, tuple[int, str]),
        ([], list[Entry]),
        (None, Entry | None),
        ("3", int | Entry),
        ({}, dict[str, Entry]),
        ({"1": "a"}, dict[int, str]),  # form keys are text, never ints
        ("x", Literal[b"x"]),
    ],
)
def test_unsupported_annotation_whatever_the_value(value, annotation):
    with pytest.raises(UnsupportedAnnotation):
        coerce(value, annotation)


def test_errors_are_value_and_type_errors():
    # The consumer turns InvalidValue into an error frame; UnsupportedAnnotation is a bug.
    assert issubclass(InvalidValue, ValueError)
    assert issubclass(UnsupportedAnnotation, TypeError)
    assert not issubclass(UnsupportedAnnotation, ValueError)


@pytest.mark.parametrize(
    ("annotation", "name"),
    [
        (int, "int"),
        (Color, "Color"),
        (list[str], "list[str]"),
        (dict[str, int], "dict[str, int]"),
        (str | None, "str | None"),
        (Optional[int], "Optional[int]"),  # noqa: UP007, UP045
        (Literal["a", "b"], "Literal['a', 'b']"),
    ],
)
def test_describe(annotation, name):
    assert describe(annotation) == name
