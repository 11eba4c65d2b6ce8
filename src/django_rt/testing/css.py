"""CSS selectors over the page model of :mod:`django_rt.testing.dom`: enough of them
for what templates and bindings use, and a clear refusal of the rest."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dom import Element

_SELECTORS: dict[str, Selector] = {}


class Selector:
    """A CSS selector list, matched against the model's elements.

    Supports type and universal selectors, ``#id``, ``.class``, attribute selectors
    (``[a]``, ``=``, ``~=``, ``|=``, ``^=``, ``$=``, ``*=``, with the ``i`` flag), the
    combinators (descendant, ``>``, ``+``, ``~``) and ``:is()``, ``:where()``,
    ``:not()``, ``:has()``, ``:first-child``, ``:last-child``, ``:only-child``,
    ``:nth-child()``, ``:checked``, ``:disabled``, ``:enabled``, ``:empty``. Anything
    else raises ``ValueError``.
    """

    def __new__(cls, css: str) -> Selector:
        known = _SELECTORS.get(css)
        if known is None:
            known = super().__new__(cls)
            known.css = css
            known.alternatives = _SelectorParser(css).selector_list()
            if len(_SELECTORS) > 512:
                _SELECTORS.clear()
            _SELECTORS[css] = known
        return known

    css: str
    alternatives: list[list[tuple[str, _Compound]]]

    def matches(self, el: Element) -> bool:
        return any(_match_complex(el, parts, len(parts) - 1) for parts in self.alternatives)


@dataclass
class _Compound:
    tag: str | None = None
    tests: list[Callable[[Element], bool]] = field(default_factory=list)

    def matches(self, el: Element) -> bool:
        if self.tag is not None and el.tag != self.tag:
            return False
        return all(test(el) for test in self.tests)


def _match_complex(el: Element, parts: list[tuple[str, _Compound]], at: int) -> bool:
    """Whether ``el`` matches ``parts[: at + 1]``; each part is the combinator that
    joins it to the part before, and its compound selector."""
    combinator, compound = parts[at]
    if not compound.matches(el):
        return False
    if at == 0:
        return True
    if combinator == " ":
        return any(_match_complex(a, parts, at - 1) for a in el.ancestors() if a.tag != "#root")
    if combinator == ">":
        parent = el.parent
        return (
            parent is not None and parent.tag != "#root" and _match_complex(parent, parts, at - 1)
        )
    siblings = el.parent.element_children if el.parent is not None else [el]
    before = siblings[: siblings.index(el)]
    if combinator == "+":
        return bool(before) and _match_complex(before[-1], parts, at - 1)
    return any(_match_complex(s, parts, at - 1) for s in before)  # "~"


_IDENT = re.compile(r"-?(?:[A-Za-z_]|[^\x00-\x7f]|\\.)(?:[\w-]|[^\x00-\x7f]|\\.)*")
_NTH = re.compile(r"^\s*(?:([+-]?\d*)n\s*(?:([+-])\s*(\d+))?|([+-]?\d+))\s*$")


def _unescape(ident: str) -> str:
    return re.sub(r"\\(.)", r"\1", ident)


class _SelectorParser:
    def __init__(self, css: str) -> None:
        self.css = css
        self.at = 0

    def fail(self, why: str) -> ValueError:
        return ValueError(f"unsupported CSS selector {self.css!r} ({why} at {self.at})")

    def peek(self) -> str:
        return self.css[self.at] if self.at < len(self.css) else ""

    def spaces(self) -> bool:
        start = self.at
        while self.peek().isspace():
            self.at += 1
        return self.at > start

    def ident(self) -> str:
        match = _IDENT.match(self.css, self.at)
        if not match:
            raise self.fail("a name expected")
        self.at = match.end()
        return _unescape(match.group())

    def selector_list(self, nested: bool = False) -> list[list[tuple[str, _Compound]]]:
        alternatives = [self.complex()]
        while True:
            self.spaces()
            if self.peek() == ",":
                self.at += 1
                alternatives.append(self.complex())
            elif nested and self.peek() == ")":
                return alternatives
            elif not self.peek():
                if nested:
                    raise self.fail("')' expected")
                return alternatives
            else:
                raise self.fail(f"unexpected {self.peek()!r}")

    def complex(self) -> list[tuple[str, _Compound]]:
        self.spaces()
        parts = [("", self.compound())]
        while True:
            had_space = self.spaces()
            char = self.peek()
            if char in (">", "+", "~"):
                self.at += 1
                self.spaces()
                parts.append((char, self.compound()))
            elif had_space and char and char not in ",)":
                parts.append((" ", self.compound()))
            else:
                return parts

    def compound(self) -> _Compound:
        compound = _Compound()
        char = self.peek()
        universal = char == "*"
        if universal:
            self.at += 1
        elif char and (char.isalpha() or char == "\\"):
            compound.tag = self.ident().lower()
        while True:
            char = self.peek()
            if char == "#":
                self.at += 1
                compound.tests.append(_has_id(self.ident()))
            elif char == ".":
                self.at += 1
                compound.tests.append(_has_class(self.ident()))
            elif char == "[":
                compound.tests.append(self.attribute())
            elif char == ":":
                compound.tests.append(self.pseudo())
            else:
                break
        if compound.tag is None and not compound.tests and not universal:
            raise self.fail("a selector expected")
        return compound

    def attribute(self) -> Callable[[Element], bool]:
        self.at += 1
        self.spaces()
        name = self.ident().lower()
        self.spaces()
        op_match = re.compile(r"[~|^$*]?=").match(self.css, self.at)
        if not op_match:
            if self.peek() != "]":
                raise self.fail("']' expected")
            self.at += 1
            return lambda el: name in el.attrs
        op = op_match.group()
        self.at = op_match.end()
        self.spaces()
        quote = self.peek()
        if quote in ("'", '"'):
            end = self.css.find(quote, self.at + 1)
            if end < 0:
                raise self.fail("unclosed string")
            value = self.css[self.at + 1 : end]
            self.at = end + 1
        else:
            value = self.ident()
        self.spaces()
        flag = ""
        if self.peek().lower() in ("i", "s") and self.css[self.at + 1 : self.at + 2] in ("]", " "):
            flag = self.peek().lower()
            self.at += 1
            self.spaces()
        if self.peek() != "]":
            raise self.fail("']' expected")
        self.at += 1
        folded = flag == "i"
        wanted = value.lower() if folded else value

        def test(el: Element) -> bool:
            if name not in el.attrs:
                return False
            have: str = el.attrs[name].lower() if folded else el.attrs[name]
            if op == "=":
                return have == wanted
            if op == "~=":
                return wanted in have.split()
            if op == "|=":
                return have == wanted or have.startswith(wanted + "-")
            if not wanted:
                return False
            if op == "^=":
                return have.startswith(wanted)
            if op == "$=":
                return have.endswith(wanted)
            return wanted in have  # *=

        return test

    def pseudo(self) -> Callable[[Element], bool]:
        self.at += 1
        name = self.ident().lower()
        if name in ("is", "where", "not", "has"):
            if self.peek() != "(":
                raise self.fail(f"':{name}(' expected")
            self.at += 1
            inner = self.selector_list(nested=True)
            self.at += 1  # ")"

            def any_match(el: Element) -> bool:
                return any(_match_complex(el, parts, len(parts) - 1) for parts in inner)

            if name == "not":
                return lambda el: not any_match(el)
            if name == "has":
                return lambda el: any(any_match(d) for d in el.elements())
            return any_match
        if name == "nth-child":
            if self.peek() != "(":
                raise self.fail("':nth-child(' expected")
            end = self.css.find(")", self.at)
            if end < 0:
                raise self.fail("')' expected")
            argument = self.css[self.at + 1 : end].strip().lower()
            self.at = end + 1
            argument = {"odd": "2n+1", "even": "2n"}.get(argument, argument)
            match = _NTH.match(argument)
            if not match:
                raise self.fail(f"nth-child({argument})")
            if match.group(4) is not None:
                a, b = 0, int(match.group(4))
            else:
                raw = match.group(1)
                a = -1 if raw == "-" else int(raw) if raw not in ("", "+") else 1
                b = int(match.group(3) or 0) * (-1 if match.group(2) == "-" else 1)
            return lambda el: _nth(_position(el), a, b)
        simple: dict[str, Callable[[Element], bool]] = {
            "first-child": lambda el: _position(el) == 1,
            "last-child": lambda el: _position(el, last=True) == 1,
            "only-child": lambda el: _position(el) == 1 and _position(el, last=True) == 1,
            "checked": lambda el: el.checked or _option_selected(el),
            "disabled": lambda el: el.disabled,
            "enabled": lambda el: (el.is_field or el.tag == "button") and not el.disabled,
            "empty": lambda el: el.is_empty(),
        }
        if name not in simple:
            raise self.fail(f"':{name}' is not supported")
        return simple[name]


def _has_id(wanted: str) -> Callable[[Element], bool]:
    return lambda el: el.attrs.get("id") == wanted


def _has_class(wanted: str) -> Callable[[Element], bool]:
    return lambda el: wanted in el.classes


def _position(el: Element, last: bool = False) -> int:
    siblings = el.parent.element_children if el.parent is not None else [el]
    index = siblings.index(el)
    return len(siblings) - index if last else index + 1


def _nth(position: int, a: int, b: int) -> bool:
    if a == 0:
        return position == b
    n, remainder = divmod(position - b, a)
    return remainder == 0 and n >= 0


def _option_selected(el: Element) -> bool:
    if el.tag != "option":
        return False
    select = next((a for a in el.ancestors() if a.tag == "select"), None)
    return select is not None and select.option_value(el) in select.field_state()
