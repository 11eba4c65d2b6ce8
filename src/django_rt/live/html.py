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

    @property
    def markable(self) -> bool:
        """Whether a comment here is element content, as a marker must be."""
        return self.mode is Mode.DATA


DATA = State()


def scan(state: State, text: str) -> State:
    """The state after reading ``text`` from ``state``."""
    mode, raw, name, buffer = state.mode, state.raw, state.name, state.buffer
    for char in text:
        if mode is Mode.DATA:
            if char == "<":
                mode = Mode.TAG_OPEN
        elif mode is Mode.TAG_OPEN:
            if char == "!":
                mode, buffer = Mode.MARKUP, ""
            elif char == "/":
                mode, name = Mode.END_TAG, ""
            elif char == "?":
                mode = Mode.BOGUS
            elif char.isalpha():
                mode, name = Mode.TAG_NAME, char.lower()
            else:
                mode = Mode.DATA
        elif mode is Mode.TAG_NAME:
            if char in " \t\n\r\f/":
                mode = Mode.IN_TAG
            elif char == ">":
                mode, raw = _opened(name)
            else:
                name += char.lower()
        elif mode is Mode.IN_TAG:
            if char == "=":
                mode = Mode.BEFORE_VALUE
            elif char == ">":
                mode, raw = _opened(name)
        elif mode is Mode.BEFORE_VALUE:
            if char == '"':
                mode = Mode.VALUE_DOUBLE
            elif char == "'":
                mode = Mode.VALUE_SINGLE
            elif char == ">":
                mode, raw = _opened(name)
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
                mode, raw = _opened(name)
        elif mode is Mode.END_TAG:
            if char == ">":
                mode = Mode.DATA
        elif mode is Mode.MARKUP:
            buffer += char
            if buffer == "--":
                mode, buffer = Mode.COMMENT, ""
            elif not "--".startswith(buffer):
                mode = Mode.DATA if char == ">" else Mode.BOGUS
        elif mode is Mode.COMMENT:
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
                mode = Mode.DATA if buffer[-1] == ">" else Mode.END_TAG
                raw, buffer = "", ""
    return State(mode, raw, name, buffer)


def _opened(name: str) -> tuple[Mode, str]:
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
        elif name not in VOID_ELEMENTS and not match.group(3).rstrip().endswith("/"):
            stack.append(name)
