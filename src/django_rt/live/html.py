"""Just enough HTML tokenizing to know where a comment marker is valid.

Two tools, both deliberately small:

- :class:`Scanner` follows a template's literal text in source order and says, at any
  point, whether it stands in element content (``DATA``) or inside a tag, an attribute
  value, a comment, or a raw-text element (``<script>``, ``<style>``, ``<textarea>``,
  ``<title>``...), where a comment marker would change what the page means.
- :func:`is_balanced` says whether rendered HTML closes every element it opens and
  closes none it did not open, so that markers around it end up as siblings in the DOM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

VOID_ELEMENTS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
FOREIGN_ELEMENTS = frozenset(["svg", "math"])
RAW_TEXT_ELEMENTS = frozenset(
    [
        "script",
        "style",
        "textarea",
        "title",
        "xmp",
        "iframe",
        "noembed",
        "noframes",
        "noscript",
        "plaintext",
    ]
)


class Mode(Enum):
    DATA = "data"
    TAG_OPEN = "tag-open"  # after "<"
    TAG_NAME = "tag-name"
    END_TAG = "end-tag"
    IN_TAG = "in-tag"  # between attributes
    BEFORE_VALUE = "before-value"
    VALUE_DOUBLE = "value-double"
    VALUE_SINGLE = "value-single"
    VALUE_UNQUOTED = "value-unquoted"
    MARKUP = "markup"  # after "<!"
    COMMENT = "comment"
    BOGUS = "bogus"  # <!DOCTYPE ...>, <?...>
    RAW_TEXT = "raw-text"


@dataclass(frozen=True)
class State:
    """Where the scanner stands: a mode, plus the raw-text element it is inside."""

    mode: Mode = Mode.DATA
    raw: str = ""  # the raw-text element being read, in RAW_TEXT
    name: str = ""  # the tag name being read
    buffer: str = ""  # "<!" prefix, comment tail, raw-text tail
    open: tuple[str, ...] = ()  # the elements opened and not closed, outermost first

    @property
    def markable(self) -> bool:
        """Whether a comment here is element content, as a marker must be.

        Not directly inside ``<table>`` either: the parser moves rows into an implied
        ``<tbody>`` and leaves comments behind, so markers would not stay siblings.
        """
        return self.mode is Mode.DATA and (not self.open or self.open[-1] != "table")


DATA = State()


def scan(state: State, text: str) -> State:
    """The state after reading ``text`` from ``state``."""
    mode, raw, name, buffer = state.mode, state.raw, state.name, state.buffer
    opened = list(state.open)
    for char in text:
        if mode is Mode.DATA:
            if char == "<":
                mode = Mode.TAG_OPEN
        elif mode is Mode.TAG_OPEN:
            if char == "!":
                mode, buffer = Mode.MARKUP, ""
            elif char == "/":
                mode, name, buffer = Mode.END_TAG, "", ""
            elif char == "?":
                mode = Mode.BOGUS
            elif char.isalpha():
                mode, name = Mode.TAG_NAME, char.lower()
            elif char != "<":  # "<<b>": the first "<" was text, the second opens a tag
                mode = Mode.DATA
        elif mode is Mode.TAG_NAME:
            if char in " \t\n\r\f/":
                mode = Mode.IN_TAG
            elif char == ">":
                mode, raw = _finish(name, False, opened)
            else:
                name += char.lower()
        elif mode is Mode.IN_TAG:
            if char == "=":
                mode = Mode.BEFORE_VALUE
            elif char == ">":
                mode, raw = _finish(name, False, opened)
        elif mode is Mode.BEFORE_VALUE:
            if char == '"':
                mode = Mode.VALUE_DOUBLE
            elif char == "'":
                mode = Mode.VALUE_SINGLE
            elif char == ">":
                mode, raw = _finish(name, False, opened)
            elif char not in " \t\n\r\f":
                mode = Mode.VALUE_UNQUOTED
        elif mode is Mode.VALUE_DOUBLE:
            if char == '"':
                mode = Mode.IN_TAG
        elif mode is Mode.VALUE_SINGLE:
            if char == "'":
                mode = Mode.IN_TAG
        elif mode is Mode.VALUE_UNQUOTED:
            if char in " \t\n\r\f":
                mode = Mode.IN_TAG
            elif char == ">":
                mode, raw = _finish(name, False, opened)
        elif mode is Mode.END_TAG:
            # The name, up to a space or "/" (then `buffer` says it is complete).
            if char == ">":
                mode, raw = _finish(name, True, opened)
            elif char in " \t\n\r\f/":
                buffer = " "
            elif not buffer:
                name += char.lower()
        elif mode is Mode.MARKUP:
            buffer += char
            if buffer == "--":
                mode, buffer = Mode.COMMENT, ""
            elif not "--".startswith(buffer):
                mode = Mode.DATA if char == ">" else Mode.BOGUS
        elif mode is Mode.COMMENT:
            if char == ">" and buffer in ("", "-"):  # "<!-->" and "<!--->" close at once
                mode, buffer = Mode.DATA, ""
                continue
            buffer = (buffer + char)[-3:]
            if buffer.endswith("-->"):
                mode, buffer = Mode.DATA, ""
        elif mode is Mode.BOGUS:
            if char == ">":
                mode = Mode.DATA
        elif mode is Mode.RAW_TEXT:
            buffer = (buffer + char.lower())[-(len(raw) + 3) :]
            closing = "</" + raw
            closed = len(buffer) == len(closing) + 1 and buffer.startswith(closing)
            if closed and buffer[-1] in " \t\n\r\f/>":
                name = raw
                if buffer[-1] == ">":
                    mode, raw, buffer = *_finish(name, True, opened), ""
                else:
                    mode, raw, buffer = Mode.END_TAG, "", " "
    return State(mode, raw, name, buffer, tuple(opened))


def _finish(name: str, closing: bool, opened: list[str]) -> tuple[Mode, str]:
    """A tag ends: keep the open elements up to date; the mode that follows."""
    if closing:
        if name in opened:
            del opened[len(opened) - 1 - opened[::-1].index(name) :]
        return Mode.DATA, ""
    if name not in VOID_ELEMENTS:
        opened.append(name)
    if name in RAW_TEXT_ELEMENTS:
        return Mode.RAW_TEXT, name
    return Mode.DATA, ""


_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(/?)([A-Za-z][^\t\n\f\r />]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>",
    re.S,
)


def is_balanced(html: str) -> bool:
    """Whether ``html`` closes exactly the elements it opens, in order.

    Optional end tags (``</li>``, ``</p>``) must be written out: a fragment that leaves
    one to the parser is refused, which costs a coarser region, never a wrong one.
    """
    if "<" not in html:
        return True
    stack: list[str] = []
    position = 0
    while True:
        match = _TOKEN.search(html, position)
        if match is None:
            return not stack
        position = match.end()
        closing, name = match.group(1), match.group(2)
        if name is None:  # a comment
            if not match.group(0).endswith("-->"):
                return False
            continue
        name = name.lower()
        if closing:
            if not stack or stack.pop() != name:
                return False
        elif name in RAW_TEXT_ELEMENTS:
            end = re.compile(rf"</{name}[\s/>]", re.I).search(html, position)
            if end is None:
                return False
            position = end.start()
            stack.append(name)
        elif name in VOID_ELEMENTS:
            continue
        elif match.group(3).rstrip().endswith("/") and (
            name in FOREIGN_ELEMENTS or any(open_ in FOREIGN_ELEMENTS for open_ in stack)
        ):
            continue  # self-closing, in SVG and MathML only: <span/> opens a span
        else:
            stack.append(name)
