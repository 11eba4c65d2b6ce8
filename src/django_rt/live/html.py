"""Just enough HTML tokenizing to know where a comment marker is valid.

Three tools, all deliberately small:

- :class:`State` and :func:`scan` follow a template's literal text in source order (at
  compile time) and say, at any point, whether it stands in element content (``DATA``)
  or inside a tag, an attribute value, a comment, or a raw-text element (``<script>``,
  ``<style>``, ``<textarea>``, ``<title>``...), where a comment marker would change what
  the page means; or right after something that a comment would split (a ``<pre>``
  start tag, whose next newline the browser drops; an ``&`` that may begin a character
  reference; a carriage return that may begin a CRLF).
- :func:`read` reads rendered HTML as a browser's tokenizer does and says whether the
  fragment is balanced, and where each comment that looks like a marker stands: whether
  the browser sees it as a comment at all, and whether taking it out would change how
  the rest is read. Rendered output is what the template's text could not tell: a
  ``|safe`` value or a custom tag may leave a tag open (``a <b``), open a ``<pre>``, or
  write comments of its own.
- :func:`is_balanced` says whether rendered HTML closes every element it opens and
  closes none it did not open, so that markers around it end up as siblings in the DOM.

:func:`neutralise` rewrites marker-like comments in output the engine did not write, so
that the client never takes them for markers.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from ..protocol import Marker

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
#: Elements whose start tag makes the browser drop a newline right after it: a comment
#: there would turn that newline into content.
NEWLINE_ELEMENTS = frozenset(["pre", "listing"])
#: Elements where text of their own is moved out ("foster-parented" before the table, or
#: out of ``<head>``) while comments stay: markers there would not stay around it.
TABLE_SECTIONS = frozenset(["tbody", "thead", "tfoot", "tr"])
_FOSTERING = TABLE_SECTIONS | {"table", "colgroup", "head", "html", "frameset"}
# In SVG and MathML these start tags end the foreign element and are HTML again.
_BREAKOUT = frozenset(
    ["b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em"]
    + ["embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing"]
    + ["menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong"]
    + ["strike", "sub", "sup", "table", "tt", "u", "ul", "var"]
)
# Children of these (in SVG and MathML) are HTML.
_INTEGRATION_POINTS = frozenset(["foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext"])


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


#: ``State.edge`` values: what a comment right here would split.
AFTER_NEWLINE_ELEMENT = "pre"  # "<pre>": its first newline is dropped, unless a comment comes first
IN_REFERENCE = "&"  # "&", "&am", "&#3": a character reference may go on
AFTER_CR = "\r"  # "\r": with "\n" next, one line break; split by a comment, two


@dataclass(frozen=True)
class State:
    """Where the scanner stands: a mode, plus the raw-text element it is inside."""

    mode: Mode = Mode.DATA
    raw: str = ""  # the raw-text element being read, in RAW_TEXT
    name: str = ""  # the tag name being read
    buffer: str = ""  # "<!" prefix, comment tail, raw-text tail
    open: tuple[str, ...] = ()  # the elements opened and not closed, outermost first
    edge: str = ""  # in DATA: what a comment here would split (see AFTER_NEWLINE_ELEMENT...)

    @property
    def markable(self) -> bool:
        """Whether a comment here is element content, as a marker must be.

        Not directly inside ``<table>`` either: the parser moves rows into an implied
        ``<tbody>`` and leaves comments behind, so markers would not stay siblings. Not
        inside ``<template>``, whose content is not part of the page's tree. And not where
        a comment would change how what follows is read (``State.edge``).
        """
        return (
            self.mode is Mode.DATA
            and not self.edge
            and (not self.open or self.open[-1] != "table")
            and "template" not in self.open
        )

    @property
    def foreign(self) -> bool:
        """Whether content here is SVG or MathML (and not HTML again, as in a
        ``<foreignObject>``): the client parses a patch as HTML, where an SVG element
        would lose its namespace."""
        for name in reversed(self.open):
            if name in _INTEGRATION_POINTS:
                return False
            if name in FOREIGN_ELEMENTS:
                return True
        return False


DATA = State()


def _data_edge(char: str, edge: str) -> str:
    """The edge after ``char`` read as text."""
    if char == "&" or (edge == IN_REFERENCE and (char.isalnum() or char == "#")):
        return IN_REFERENCE
    return AFTER_CR if char == "\r" else ""


def scan(state: State, text: str) -> State:
    """The state after reading ``text`` from ``state``."""
    mode, raw, name, buffer, edge = state.mode, state.raw, state.name, state.buffer, state.edge
    opened = list(state.open)
    for char in text:
        if mode is Mode.DATA:
            if char == "<":
                mode, edge = Mode.TAG_OPEN, ""
            else:
                edge = _data_edge(char, edge)
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
                mode, edge = Mode.DATA, _data_edge(char, "")
        elif mode is Mode.TAG_NAME:
            if char in " \t\n\r\f/":
                mode = Mode.IN_TAG
            elif char == ">":
                mode, raw, edge = _finish(name, False, opened)
            else:
                name += char.lower()
        elif mode is Mode.IN_TAG:
            if char == "=":
                mode = Mode.BEFORE_VALUE
            elif char == ">":
                mode, raw, edge = _finish(name, False, opened)
        elif mode is Mode.BEFORE_VALUE:
            if char == '"':
                mode = Mode.VALUE_DOUBLE
            elif char == "'":
                mode = Mode.VALUE_SINGLE
            elif char == ">":
                mode, raw, edge = _finish(name, False, opened)
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
                mode, raw, edge = _finish(name, False, opened)
        elif mode is Mode.END_TAG:
            # The name, up to a space or "/" (then `buffer` says it is complete).
            if char == ">":
                mode, raw, edge = _finish(name, True, opened)
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
                    mode, raw, edge = _finish(name, True, opened)
                    buffer = ""
                else:
                    mode, raw, buffer = Mode.END_TAG, "", " "
    return State(mode, raw, name, buffer, tuple(opened), edge)


def _finish(name: str, closing: bool, opened: list[str]) -> tuple[Mode, str, str]:
    """A tag ends: keep the open elements up to date; the mode and edge that follow."""
    if closing:
        if name in opened:
            del opened[len(opened) - 1 - opened[::-1].index(name) :]
        return Mode.DATA, "", ""
    if name not in VOID_ELEMENTS:
        opened.append(name)
    if name in RAW_TEXT_ELEMENTS:
        return Mode.RAW_TEXT, name, ""
    return Mode.DATA, "", AFTER_NEWLINE_ELEMENT if name in NEWLINE_ELEMENTS else ""


# reading rendered HTML -----------------------------------------------------------------

_SPACE = "\t\n\f\r "
# A tag as the browser's tokenizer reads it: the name runs to a space, "/" or ">"; an
# attribute name to a space, "/", "=" or ">"; a quoted value to its quote, wherever the
# ">" are; an unquoted one to a space or ">". Atomic groups: never read another way.
# The next token as the browser's tokenizer reads it, found and told apart in one search:
# - a comment: "<!-->" and "<!--->" end at once, others at "-->" or "--!>" (or the end);
# - a tag: the name runs to a space, "/" or ">"; an attribute name to a space, "/", "="
#   or ">"; a quoted value to its quote, wherever the ">" are; an unquoted one to a space
#   or ">" (atomic groups: never read another way);
# - "<!" or "<?" (a doctype, a bogus comment, CDATA in SVG), "</" before what is not a
#   letter (a bogus comment, or "</>", which is dropped);
# - any other "<" is text.
_TOKEN = re.compile(
    r"""<(?:
      !--(?:-?>|(?P<comment>.*?)(?:--!?>|(?P<open>\Z)))
    | (?P<end>/?)(?P<name>[A-Za-z][^\t\n\f\r />]*+)
      (?P<attributes>(?>[\t\n\f\r /]++
        |[^\t\n\f\r />][^\t\n\f\r /=>]*+
         (?>[\t\n\f\r ]*+=[\t\n\f\r ]*+(?>"[^"]*+"?|'[^']*+'?|[^\t\n\f\r >"'][^\t\n\f\r >]*+)?)?
      )*+)
      (?P<closed>>)?
    | (?P<markup>[!?]|/(?=.))
    )?""",
    re.S | re.X,
)
_ATTRIBUTE = re.compile(
    r"""[\t\n\f\r /]+
    |[^\t\n\f\r />][^\t\n\f\r /=>]*
     (?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*"|'[^']*'|([^\t\n\f\r >"'][^\t\n\f\r >]*))?)?""",
    re.X,
)
_SCRIPT_TOKEN = re.compile(r"<!--|-->|<(/?)script(?=[\t\n\f\r />])", re.I)
_RAW_ENDS: dict[str, re.Pattern[str]] = {}
# What text may end with for a comment after it to change how it is read: "<" and "</"
# (the comment's "<" would end them), a character reference that may go on, a CR.
_UNCLEAN_TAIL = re.compile(r"(?:<|</|&#?[0-9A-Za-z]*|\r)\Z")
_MARKER_DATA = (Marker.START.value, Marker.END.value)
_START = Marker.START.value
_END = Marker.END.value


class MarkerComment(NamedTuple):
    """A comment that the client would take for a marker, as :func:`read` found it."""

    start: int  # the offset of its "<" ...
    end: int  # ... and of what follows its ">"
    data: str  # its text, as the browser reads it: "rt:3", "/rt:4#17"
    exact: bool  # written "<!--" + data + "-->", as the engine writes markers
    #: The browser keeps it as a sibling of what stands around it, and taking it out
    #: (with any markers next to it) would not change how the page around it is read.
    placed: bool
    #: One of the two markers of a region read past (see ``read(checked=...)``).
    read_past: bool = False


@dataclass(frozen=True)
class Reading:
    """What :func:`read` found in a fragment."""

    #: It closes exactly the elements it opens, in order, and ends in element content,
    #: so that a comment after it is one and changes nothing before it.
    balanced: bool
    #: It has text of its own outside any element (what a table would move out).
    loose_text: bool
    markers: tuple[MarkerComment, ...]
    #: The regions read past (see ``read(checked=...)``): what their markers enclose was
    #: not read, and its markers are not in ``markers``.
    skipped: frozenset[str] = frozenset()


# Elements on read()'s stack: (name, serial, foreign, integration). Foreign: SVG or
# MathML; integration: an SVG or MathML element whose children are HTML. The serial
# tells elements apart (to know which one has text that the parser moves out).
_Open = tuple[str, int, bool, bool]


_TEXT_READINGS = {
    (balanced, loose): Reading(balanced, loose, ())
    for balanced in (True, False)
    for loose in (True, False)
}


def _clean(tail: str) -> bool:
    """Whether a comment after the text ``tail`` changes nothing in how it reads."""
    if not tail:
        return True
    if tail[-1] in "<\r/" or "&" in tail:
        return _UNCLEAN_TAIL.search(tail) is None
    return True


def read(
    html: str, checked: Mapping[str, str] | None = None, loose: Collection[str] | None = None
) -> Reading:
    """Read ``html`` as a browser's tokenizer does, as a fragment in element content.

    ``checked`` maps regions whose content was read already, when each became a region
    (balanced, its own markers placed), to that content: where one of them starts, at a
    placed marker and followed by its content and its end marker, the reading goes on
    after its end marker, as it would after any balanced fragment. ``loose`` names those
    of them that hold text of their own outside any element (all of them, if not given).

    Where this model of the browser could be wrong (markup inside an SVG ``<style>`` or
    ``<script>``, which the browser reads as elements), what follows counts as
    unreadable: markers there are not placed, the fragment is not balanced. Coarser,
    never wrong.
    """
    if "<" not in html:  # text: (balanced, loose_text) is all there is to know
        return _TEXT_READINGS[_clean(html[-40:]), bool(html.strip(_SPACE))]
    checked = checked or {}
    stack: list[_Open] = []
    found: list[tuple[int, int, str, bool, bool, bool, int, str]] = []
    skipped: set[str] = set()
    fostered: set[int] = set()
    serial = 0
    balanced = True
    loose_text = False
    doubtful = False  # from here on, this model may not be the browser's
    templates = 0  # <template> elements open: their content is not in the page's tree
    tail = ""  # the text a comment here would follow (markers are transparent)
    after_newline_element = False
    position, size = 0, len(html)
    search = _TOKEN.search
    while position < size:
        token = search(html, position)
        lt = size if token is None else token.start()
        if lt > position:  # text
            chunk = html[position:lt]
            tail = (tail + chunk)[-40:]
            after_newline_element = False
            if (not stack or stack[-1][0] in _FOSTERING) and chunk.strip(_SPACE):
                if not stack:
                    loose_text = True
                elif not stack[-1][2]:
                    fostered.add(stack[-1][1])
        if token is None:
            break
        position = token.end()
        data, unclosed, end_tag, name, attributes, closed, markup = token.groups()
        if data is not None or html.startswith("<!--", lt):
            data = data or ""
            if unclosed is not None:  # the fragment ends inside it
                balanced = False
            if not data.startswith(_MARKER_DATA):
                tail, after_newline_element = "", False
                continue
            exact = position - lt == len(data) + 7 and html.startswith("-->", position - 3)
            placed = exact and not (doubtful or after_newline_element or templates)
            placed = placed and _clean(tail)
            parent, kind = (stack[-1][1], stack[-1][0]) if stack else (0, "")
            region = data[len(_START) :] if placed and data.startswith(_START) else None
            content = checked.get(region) if region is not None else None
            if region is not None and content is not None:
                closing = f"<!--{_END}{region}-->"
                if html.startswith(content, position) and html.startswith(
                    closing, position + len(content)
                ):
                    if loose is None or region in loose:  # its text is this fragment's
                        if not stack:
                            loose_text = True
                        elif kind in _FOSTERING and not stack[-1][2]:
                            fostered.add(parent)
                    found.append((lt, position, data, True, True, True, parent, kind))
                    lt = position + len(content)
                    position = lt + len(closing)
                    found.append((lt, position, _END + region, True, True, True, parent, kind))
                    skipped.add(region)
                    tail = ""
                    continue
            found.append((lt, position, data, exact, placed, False, parent, kind))
        elif name is not None:
            tail, after_newline_element = "", False
            if closed is None:  # the fragment ends inside the tag
                balanced = False
                break
            name = name.lower()
            if end_tag:
                balanced = _close(stack, name) and balanced
                if name == "template" and templates:
                    templates -= 1
                continue
            foreign = bool(stack) and stack[-1][2] and not stack[-1][3]
            if foreign and name in _BREAKOUT:
                while stack and stack[-1][2] and not stack[-1][3]:
                    stack.pop()
                foreign = False
            if foreign or name in FOREIGN_ELEMENTS:
                if not _self_closing(attributes):
                    serial += 1
                    stack.append((name, serial, True, foreign and name in _INTEGRATION_POINTS))
                    if foreign and name in RAW_TEXT_ELEMENTS:
                        # The browser reads an SVG <style> as markup, this model as raw text:
                        # they agree only while there is no markup in it.
                        end = _raw_text_end(html, name, position)
                        doubtful = doubtful or end < 0 or "<" in html[position:end]
                        position = size if end < 0 else end
                continue
            if name in VOID_ELEMENTS:
                continue
            serial += 1
            stack.append((name, serial, False, False))
            if name in RAW_TEXT_ELEMENTS:
                end = size if name == "plaintext" else _raw_text_end(html, name, position)
                if end < 0:
                    balanced = False
                position = size if end < 0 else end
            elif name in NEWLINE_ELEMENTS:
                after_newline_element = True
            elif name == "template":
                templates += 1
        elif markup is not None:
            if markup == "!" and html.startswith("[CDATA[", position):
                if stack and stack[-1][2] and not stack[-1][3]:  # text, in SVG and MathML
                    close_at = html.find("]]>", position)
                    balanced = balanced and close_at >= 0
                    position = size if close_at < 0 else close_at + 3
                    tail, after_newline_element = "", False
                    continue
            elif markup == "/" and html.startswith(">", position):
                position += 1  # "</>" is dropped: no token at all
                tail = ""
                continue
            # <!DOCTYPE ...>, and bogus comments: <!x>, <?x>, </?x>
            close_at = html.find(">", position)
            balanced = balanced and close_at >= 0
            data = html[position : size if close_at < 0 else close_at]
            position = size if close_at < 0 else close_at + 1
            if markup != "?" and data.startswith(_MARKER_DATA):
                # The client would take it for a marker; the engine never writes this one.
                parent, kind = (stack[-1][1], stack[-1][0]) if stack else (0, "")
                found.append((lt, position, data, False, False, False, parent, kind))
            tail, after_newline_element = "", False
        else:  # "<" before a space, a digit, the end: text
            tail = (tail + "<")[-40:]
            after_newline_element = False
            if not stack:
                loose_text = True
            elif stack[-1][0] in _FOSTERING and not stack[-1][2]:
                fostered.add(stack[-1][1])
    balanced = (
        balanced and not stack and not doubtful and not after_newline_element and _clean(tail)
    )
    markers = tuple(
        MarkerComment(
            start, end, data, exact, placed and parent not in fostered and kind != "table", past
        )
        for start, end, data, exact, placed, past, parent, kind in found
    )
    return Reading(balanced, loose_text, markers, frozenset(skipped))


def _close(stack: list[_Open], name: str) -> bool:
    """An end tag: close the innermost element of that name, if any; whether that was the
    innermost element (as a balanced fragment has it)."""
    for depth in range(len(stack) - 1, -1, -1):
        if stack[depth][0] == name:
            innermost = depth == len(stack) - 1
            del stack[depth:]
            return innermost
    return False


def _self_closing(attributes: str) -> bool:
    """Whether a tag's attribute text ends with the "/" of "/>" (and not with an
    unquoted value that ends in "/", as in ``<a href=/x/>``)."""
    if not attributes.endswith("/"):
        return False
    units = list(_ATTRIBUTE.finditer(attributes))
    return bool(units) and units[-1].group(1) is None and units[-1].group().endswith("/")


def _raw_text_end(html: str, name: str, position: int) -> int:
    """Where the raw text of a ``name`` element that starts at ``position`` ends (the
    offset of its end tag), or -1 if it runs to the end."""
    if name == "script":
        return _script_end(html, position)
    pattern = _RAW_ENDS.get(name)
    if pattern is None:
        pattern = _RAW_ENDS[name] = re.compile(rf"</{name}(?=[\t\n\f\r />])", re.I)
    match = pattern.search(html, position)
    return -1 if match is None else match.start()


def _script_end(html: str, position: int) -> int:
    """:func:`_raw_text_end` for ``<script>``, whose text has escapes of its own: after
    ``<!--``, a ``<script`` hides the next ``</script>`` up to ``-->``."""
    escaped = double = False
    while True:
        match = _SCRIPT_TOKEN.search(html, position)
        if match is None:
            return -1
        token = match.group()
        if token == "<!--":
            escaped = True
            position = match.start() + 2  # "<!-->" ends as soon as it starts
            continue
        if token == "-->":
            escaped = double = False
        elif match.group(1):
            if not double:
                return match.start()
            double = False
        elif escaped:
            double = True
        position = match.end()


def is_balanced(html: str) -> bool:
    """Whether ``html`` closes exactly the elements it opens, in order, as a browser
    reads it, and ends where a comment after it is element content.

    Optional end tags (``</li>``, ``</p>``) must be written out: a fragment that leaves
    one to the parser is refused, which costs a coarser region, never a wrong one.
    """
    return read(html).balanced


# marker-like text ---------------------------------------------------------------------

# Every way to write a comment whose text starts like a marker's: "<!--rt:", "<!--/rt:",
# and the bogus comments "<!rt:", "<!/rt:", "<//rt:".
_MARKER_LIKE = re.compile(
    rf"<!(?:--)?(?=/?{re.escape(Marker.START)})|</(?={re.escape(Marker.END)})"
)


def neutralise(html: str) -> str:
    """``html`` with a space after the ``<!--`` (``<!``, ``</``) of every comment that
    would read as a marker (``<!--rt:8-->`` becomes ``<!-- rt:8-->``): a comment still,
    but never one the client takes for a marker."""
    if Marker.START not in html:
        return html
    return _MARKER_LIKE.sub(lambda match: match.group() + " ", html)


def neutralise_at(html: str, starts: list[int]) -> str:
    """:func:`neutralise`, for the marker-like comments that begin at ``starts`` only."""
    pieces, last = [], 0
    for start in starts:
        match = _MARKER_LIKE.match(html, start)
        if match is not None:
            pieces += [html[last : match.end()], " "]
            last = match.end()
    return "".join(pieces) + html[last:]
