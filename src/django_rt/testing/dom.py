"""The page as the browser holds it, without a browser: a tree of the page's HTML to
which patches and commands apply as ``rt.js`` applies them, with form fields that keep
what the user typed."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any

from ..conf import rt_settings
from ..protocol import (
    CONFIG_ATTRIBUTE,
    Action,
    BindingKey,
    CommandKey,
    ConfigKey,
    Marker,
    TargetKey,
)
from ..views import MINIFIED_SCRIPT, client_script
from .css import Selector

VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
RAW_TEXT = frozenset({"script", "style"})
FIELD_TAGS = frozenset({"input", "select", "textarea"})
#: Start tags that end an open element of these tags first (HTML's implied end tags, the
#: common cases).
_CLOSES: dict[str, frozenset[str]] = {
    "li": frozenset({"li"}),
    "option": frozenset({"option"}),
    "optgroup": frozenset({"option", "optgroup"}),
    "dt": frozenset({"dt", "dd"}),
    "dd": frozenset({"dt", "dd"}),
    "tr": frozenset({"tr", "td", "th"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "thead": frozenset({"tbody", "tfoot", "tr", "td", "th"}),
    "tbody": frozenset({"thead", "tbody", "tfoot", "tr", "td", "th"}),
    "tfoot": frozenset({"thead", "tbody", "tr", "td", "th"}),
}
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "details",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "ul",
    ]
)
_UNSET: Any = object()
_MARKER_COMMENT = re.compile(rf"^/?{re.escape(Marker.START)}")


class Node:
    parent: Element | None = None

    @property
    def text(self) -> str:
        return ""

    def serialize(self, markers: bool = True) -> str:
        raise NotImplementedError


class Text(Node):
    def __init__(self, data: str) -> None:
        self.data = data

    @property
    def text(self) -> str:
        return self.data

    def serialize(self, markers: bool = True) -> str:
        if self.parent is not None and self.parent.tag in RAW_TEXT:
            return self.data
        return html_lib.escape(self.data, quote=False)


class Comment(Node):
    def __init__(self, data: str) -> None:
        self.data = data

    @property
    def is_marker(self) -> bool:
        return bool(_MARKER_COMMENT.match(self.data))

    def serialize(self, markers: bool = True) -> str:
        if not markers and self.is_marker:
            return ""
        return f"<!--{self.data}-->"


class Element(Node):
    """An element of the page's model: its tag, attributes and children, and for a form
    field what the user made of it (:attr:`value`, :attr:`checked`)."""

    def __init__(self, tag: str, attrs: dict[str, str] | None = None) -> None:
        self.tag = tag
        self.attrs: dict[str, str] = attrs or {}
        self.children: list[Node] = []
        #: A field's state as the user left it (fieldState of rt.js); unset: its markup's.
        self.state: Any = _UNSET

    def __repr__(self) -> str:
        return f"<Element {self.outer_html[:60]!r}>"

    # tree -------------------------------------------------------------------------

    def append(self, node: Node) -> None:
        node.parent = self
        self.children.append(node)

    def elements(self) -> Iterator[Element]:
        """The element's descendant elements, in document order."""
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.elements()

    def nodes(self) -> Iterator[Node]:
        for child in self.children:
            yield child
            if isinstance(child, Element):
                yield from child.nodes()

    def ancestors(self) -> Iterator[Element]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def is_empty(self) -> bool:
        """No element and no text inside (comments aside): ``:empty``."""
        return not any(
            isinstance(c, Element) or (isinstance(c, Text) and c.data) for c in self.children
        )

    @property
    def element_children(self) -> list[Element]:
        return [child for child in self.children if isinstance(child, Element)]

    # reading ----------------------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute's value."""
        return self.attrs.get(name.lower(), default)

    @property
    def id(self) -> str | None:
        return self.attrs.get("id") or None

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    @property
    def text(self) -> str:
        """The element's ``textContent``."""
        return "".join(node.text for node in self.children)

    @property
    def html(self) -> str:
        """The element's inner HTML, markers removed."""
        return self.inner_html(markers=False)

    def inner_html(self, markers: bool = False) -> str:
        return "".join(child.serialize(markers) for child in self.children)

    @property
    def outer_html(self) -> str:
        return self.serialize(markers=False)

    def serialize(self, markers: bool = True) -> str:
        attrs = "".join(
            f' {name}="{html_lib.escape(value, quote=True)}"' for name, value in self.attrs.items()
        )
        if self.tag in VOID:
            return f"<{self.tag}{attrs}>"
        return f"<{self.tag}{attrs}>{self.inner_html(markers)}</{self.tag}>"

    def select(self, css: str) -> list[Element]:
        """The descendants that match the CSS selector ``css``, in document order."""
        selector = Selector(css)
        return [el for el in self.elements() if selector.matches(el)]

    def matches(self, css: str) -> bool:
        return Selector(css).matches(self)

    def closest(self, css: str) -> Element | None:
        selector = Selector(css)
        node: Element | None = self
        while node is not None:
            if selector.matches(node):
                return node
            node = node.parent
        return None

    # form fields --------------------------------------------------------------------

    @property
    def type(self) -> str:
        if self.tag == "input":
            return (self.attrs.get("type") or "text").lower()
        if self.tag == "select":
            return "select-multiple" if "multiple" in self.attrs else "select-one"
        return self.tag if self.tag in ("textarea", "button") else ""

    @property
    def is_field(self) -> bool:
        return self.tag in FIELD_TAGS

    @property
    def checkable(self) -> bool:
        return self.tag == "input" and self.type in ("checkbox", "radio")

    def options(self) -> list[Element]:
        return [el for el in self.elements() if el.tag == "option"]

    @staticmethod
    def option_value(option: Element) -> str:
        value = option.attrs.get("value")
        return value if value is not None else " ".join(option.text.split())

    def field_state(self, default: bool = False) -> Any:
        """What the user made of this field, or (``default``) what its markup says: a
        list of the selected values for a ``<select>``, a bool for a checkbox or a
        radio, the text otherwise."""
        if not default and self.state is not _UNSET:
            return self.state
        if self.tag == "select":
            options = self.options()
            chosen = [o for o in options if "selected" in o.attrs]
            if not chosen and "multiple" not in self.attrs and options:
                chosen = options[:1]
            if "multiple" not in self.attrs:
                chosen = chosen[-1:]
            return [self.option_value(o) for o in chosen]
        if self.checkable:
            return "checked" in self.attrs
        if self.tag == "textarea":
            text = self.text
            return text[1:] if text.startswith("\n") else text
        return self.attrs.get("value", "")

    @property
    def value(self) -> Any:
        """A field's value as ``el.value`` gives it (the first selected option's for a
        ``<select>``); a button's ``value`` attribute; ``None`` for anything else."""
        if self.tag == "select":
            chosen = self.field_state()
            return chosen[0] if chosen else ""
        if self.checkable:
            return self.attrs.get("value", "on")
        if self.is_field:
            return self.field_state()
        if self.tag == "button":
            return self.attrs.get("value", "")
        return None

    @property
    def checked(self) -> bool:
        return bool(self.field_state()) if self.checkable else False

    @property
    def disabled(self) -> bool:
        if "disabled" in self.attrs:
            return True
        return any(a.tag == "fieldset" and "disabled" in a.attrs for a in self.ancestors())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        closes = _CLOSES.get(tag, frozenset())
        if tag in _BLOCKS:
            closes = closes | {"p"}
        while len(self.stack) > 1 and self.stack[-1].tag in closes:
            self.stack.pop()
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return
        # An end tag with nothing open to close is ignored, as a browser does.

    def handle_data(self, data: str) -> None:
        self.stack[-1].append(Text(data))

    def handle_comment(self, data: str) -> None:
        self.stack[-1].append(Comment(data))


def parse_fragment(html: str) -> list[Node]:
    """The nodes of an HTML fragment (their parent is a detached root)."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return list(builder.root.children)


def _detach(nodes: Iterable[Node], parent: Element) -> list[Node]:
    out = []
    for node in nodes:
        node.parent = parent
        out.append(node)
    return out


class Document:
    """A page as the browser holds it: its ``<head>`` and ``<body>`` as a tree (the
    client's own scripts left out), the fields' values as the user left them."""

    def __init__(self, html: str) -> None:
        builder = _TreeBuilder()
        builder.feed(html)
        builder.close()
        root = builder.root
        self.root = root
        html_el = next((el for el in root.element_children if el.tag == "html"), None)
        top = html_el or root
        self.head = next((el for el in top.element_children if el.tag == "head"), None)
        body = next((el for el in top.element_children if el.tag == "body"), None)
        if body is None:  # a fragment, or a page without <body>
            body = Element("body")
            for child in list(top.children):
                if child is not self.head:
                    body.append(child)
        self.body: Element = body
        if self.head is None:
            self.head = Element("head")
        self.config: dict[str, Any] = {}
        # Either build of the client: the page may come from another DEBUG than the test's.
        client = (client_script(), str(rt_settings.SCRIPT), MINIFIED_SCRIPT)
        for el in list(self.root.elements()):
            if el.tag != "script" or el.parent is None:
                continue
            if CONFIG_ATTRIBUTE in el.attrs:
                self.config = json.loads(el.text)
                el.parent.children.remove(el)
            elif (el.attrs.get("src") or "").endswith(client):
                el.parent.children.remove(el)
        self.title = self._title_text()
        #: The element that has the focus (a field filled or clicked last).
        self.focused: Element | None = None

    def _title_text(self) -> str:
        assert self.head is not None
        for el in [*self.head.elements(), *self.body.elements()]:
            if el.tag == "title":
                return _title(el.text)
        return ""

    # reading ----------------------------------------------------------------------

    def select(self, css: str) -> list[Element]:
        selector = Selector(css)
        return [el for el in self.all_elements() if selector.matches(el)]

    def all_elements(self) -> Iterator[Element]:
        assert self.head is not None
        yield self.head
        yield from self.head.elements()
        yield self.body
        yield from self.body.elements()

    def html(self, markers: bool = False) -> str:
        """The body's inner HTML (without region markers unless ``markers``)."""
        return self.body.inner_html(markers)

    @property
    def shown(self) -> tuple[str, str, str]:
        """What a reader sees: the title, the head's other elements and the body."""
        assert self.head is not None
        head = "".join(
            node.serialize(markers=False)
            for node in self.head.children
            if not (isinstance(node, Element) and node.tag == "title")
        )
        return self.title, head, self.html()

    # patches ----------------------------------------------------------------------

    def find_region(self, region_id: str) -> tuple[Element, int, int] | None:
        """The parent of region ``region_id`` and the indices of its two markers."""
        start, end = Marker.START + region_id, Marker.END + region_id
        for node in self.body.nodes():
            if isinstance(node, Comment) and node.data == start:
                parent = node.parent
                assert parent is not None
                at = parent.children.index(node)
                for stop in range(at + 1, len(parent.children)):
                    other = parent.children[stop]
                    if isinstance(other, Comment) and other.data == end:
                        return parent, at, stop
                return None
        return None

    def replace_region(self, region_id: str, html: str) -> bool:
        found = self.find_region(region_id)
        if found is None:
            return False
        parent, start, end = found
        fresh = parse_fragment(html)
        self._keep_state(parent.children[start + 1 : end], fresh)
        parent.children[start + 1 : end] = _detach(fresh, parent)
        return True

    def set_attributes(self, region_id: str, changes: list[list[Any]]) -> bool:
        """An ``attrs`` op: set attribute values of the region's elements, by their place
        among them in document order; a miss (nothing set) when a tag is not there."""
        found = self.find_region(region_id)
        if found is None:
            return False
        parent, start, end = found
        elements: list[Element] = []
        for node in parent.children[start + 1 : end]:
            if isinstance(node, Element):
                elements += [node, *node.elements()]
        places = [change[0] for change in changes]
        if not all(
            isinstance(place, int) and 0 <= place < len(elements) for place in places
        ) or any(elements[change[0]].tag != change[1] for change in changes):
            return False
        for place, _, name, value in changes:
            elements[place].attrs[str(name)] = str(value)
        return True

    def apply_list(self, region_id: str, keys: list[str], items: dict[str, str]) -> bool:
        found = self.find_region(region_id)
        if found is None:
            return False
        parent, start, end = found
        prefix = Marker.START + region_id + Marker.ITEM
        have: dict[str, list[Node]] = {}
        inside = parent.children[start + 1 : end]
        index = 0
        while index < len(inside):
            node = inside[index]
            if isinstance(node, Comment) and node.data.startswith(prefix):
                key = node.data[len(prefix) :]
                close = Marker.END + region_id + Marker.ITEM + key
                stop = next(
                    (j for j in range(index + 1, len(inside)) if _is_comment(inside[j], close)),
                    None,
                )
                if stop is None:
                    return False
                have[key] = inside[index : stop + 1]
                index = stop
            index += 1
        if any(key not in have and key not in items for key in keys):
            return False  # the page missed a patch: checked before anything changes
        out: list[Node] = []
        for key in keys:
            item_id = region_id + Marker.ITEM + key
            if key in items:
                fresh = parse_fragment(items[key])
                if key in have:
                    self._keep_state(have[key][1:-1], fresh)
                out += [Comment(Marker.START + item_id), *fresh, Comment(Marker.END + item_id)]
            else:
                out += have[key]
        parent.children[start + 1 : end] = _detach(out, parent)
        return True

    def morph(self, html: str, title: str | None = None) -> None:
        fresh = parse_fragment(html)
        self._keep_state(list(self.body.children), fresh)
        self.body.children = _detach(fresh, self.body)
        if title is not None:
            self.title = _title(title)

    def patch_head(self, title: str | None, html: str | None) -> None:
        if title is not None:
            self.title = _title(title)
        if html is None:
            return
        assert self.head is not None
        kept = [n for n in self.head.children if isinstance(n, Element) and n.tag == "title"]
        fresh = [
            n for n in parse_fragment(html) if not (isinstance(n, Element) and n.tag == "title")
        ]
        self.head.children = _detach([*kept, *fresh], self.head)

    def _keep_state(self, old: list[Node], fresh: list[Node]) -> None:
        """What ``rt.js`` keeps across a replacement of ``old`` by ``fresh``: what the
        user typed into a field whose markup the server did not change (any value of a
        bound field the user is in), and the focus."""
        twins: dict[str, list[Element]] = {}
        for node in fresh:
            if isinstance(node, Element):
                for el in (node, *node.elements()):
                    key = _twin_key(el)
                    if key:
                        twins.setdefault(key, []).append(el)
        for node in old:
            if not isinstance(node, Element):
                continue
            for el in (node, *node.elements()):
                key = _twin_key(el)
                candidates = twins.get(key) if key else None
                if not candidates:
                    continue
                twin = candidates.pop(0)
                if (
                    el.is_field
                    and twin.tag == el.tag
                    and twin.type == el.type
                    and el.type != "file"
                    and el.state is not _UNSET
                ):
                    mine, default = el.field_state(), el.field_state(default=True)
                    owned = el is self.focused and self._bound(el)
                    if owned or (mine != default and default == twin.field_state(default=True)):
                        twin.state = mine
                if el is self.focused:
                    self.focused = twin

    def _bound(self, el: Element) -> bool:
        for binding in self.config.get(ConfigKey.EVENTS, ()):
            if binding.get(BindingKey.SYNC):
                try:
                    if el.matches(binding[BindingKey.SELECTOR]):
                        return True
                except ValueError:
                    continue
        return False

    # commands ---------------------------------------------------------------------

    def apply_command(self, command: dict[str, Any]) -> None:
        """Apply one command of a handler's reply, as ``rt.js`` does (redirects and
        dispatched events are the page's to record)."""
        action, selector = command[CommandKey.ACTION], command[CommandKey.SELECTOR]
        content = command[CommandKey.CONTENT]
        if selector is None:
            return
        targets = self.select(selector)
        if action == Action.FOCUS:
            self.focused = targets[0] if targets else self.focused
            return
        for el in targets:
            self._apply(action, el, content)

    def _apply(self, action: str, el: Element, content: Any) -> None:
        parent = el.parent
        if action == Action.HTML:
            el.children = _detach(parse_fragment(content), el)
        elif action == Action.TEXT:
            el.children = _detach([Text(content)], el) if content else []
        elif action == Action.APPEND:
            el.children += _detach(parse_fragment(content), el)
        elif action == Action.PREPEND:
            el.children[:0] = _detach(parse_fragment(content), el)
        elif action in (Action.REPLACE, Action.REMOVE) and parent is not None:
            at = parent.children.index(el)
            fresh = parse_fragment(content) if action == Action.REPLACE else []
            parent.children[at : at + 1] = _detach(fresh, parent)
        elif action == Action.ATTR:
            for name, value in (content or {}).items():
                if value is None or value is False:
                    el.attrs.pop(name, None)
                else:
                    el.attrs[name] = "" if value is True else str(value)
        elif action == Action.ADD_CLASS:
            names = el.classes + [c for c in str(content).split() if c not in el.classes]
            el.attrs["class"] = " ".join(names)
        elif action == Action.REMOVE_CLASS:
            gone = set(str(content).split())
            el.attrs["class"] = " ".join(c for c in el.classes if c not in gone)
        elif action == Action.VALUE:
            if el.checkable:
                el.state = bool(content)
            elif el.tag == "select":
                el.state = [str(v) for v in content] if isinstance(content, list) else [content]
            else:
                el.state = "" if content is None else str(content)
        elif action == Action.RESET:
            for field_el in el.elements():
                field_el.state = _UNSET

    # values -------------------------------------------------------------------------

    def field_value(self, el: Element) -> Any:
        """The value ``rt.js`` gathers from ``el`` (``fieldValue``)."""
        if el.tag == "form":
            return self.form_data(el)
        if el.tag == "input" and el.type == "checkbox":
            return el.checked
        if el.tag == "input" and el.type == "radio":
            form = el.closest("form")
            name = el.attrs.get("name")
            hit = None
            for other in self.select("input[type=radio]"):
                same = other is el or (name and other.attrs.get("name") == name)
                if other.checked and same and other.closest("form") is form:
                    hit = other.value
            return hit
        if el.tag == "select" and "multiple" in el.attrs:
            return list(el.field_state())
        if el.is_field:
            return el.value
        return el.text

    def form_data(self, form: Element) -> dict[str, Any]:
        """A form's fields as ``new FormData(form)`` lists them, files left out."""
        out: dict[str, Any] = {}

        def add(name: str, value: str) -> None:
            if name in out:
                previous = out[name]
                out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                out[name] = value

        for el in form.elements():
            name = el.attrs.get("name")
            if not name or not el.is_field or el.disabled:
                continue
            if el.tag == "select":
                for value in el.field_state():
                    add(name, value)
            elif el.tag == "textarea":
                add(name, el.field_state())
            elif el.type in ("submit", "button", "reset", "image", "file"):
                continue
            elif el.checkable:
                if el.checked:
                    add(name, el.value)
            else:
                add(name, el.field_state())
        return out

    def set_value(self, el: Element, value: Any) -> None:
        """What typing, ticking or choosing does to a field."""
        if not el.is_field:
            raise ValueError(f"{el!r} is not a form field")
        if el.checkable:
            el.state = bool(value)
            if el.type == "radio" and value:
                name = el.attrs.get("name")
                for other in self.select("input[type=radio]"):
                    if other is not el and name and other.attrs.get("name") == name:
                        other.state = False
        elif el.tag == "select":
            values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
            known = {el.option_value(o) for o in el.options()}
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ValueError(f"{el!r} has no option {unknown[0]!r}")
            el.state = values
        else:
            el.state = str(value)


def _title(text: str) -> str:
    """As ``document.title`` reads: whitespace collapsed and stripped."""
    return " ".join(text.split())


def _is_comment(node: Node, data: str) -> bool:
    return isinstance(node, Comment) and node.data == data


def _twin_key(el: Element) -> str:
    if el.id:
        return "id:" + el.id
    name = el.attrs.get("name")
    if name is None:
        return ""
    return ",".join([el.tag, el.type, name, el.value if el.checkable else ""])


def target_of(el: Element) -> dict[str, Any]:
    """The ``target`` of an event frame, as ``rt.js`` describes the element."""
    data = {
        re.sub(r"-([a-z])", lambda m: m.group(1).upper(), name[5:]): value
        for name, value in el.attrs.items()
        if name.startswith("data-")
    }
    return {
        TargetKey.ID: el.id,
        TargetKey.TAG: el.tag,
        TargetKey.NAME: el.attrs.get("name"),
        TargetKey.VALUE: el.value if el.is_field or el.tag == "button" else None,
        TargetKey.DATA: data,
    }
