"""``RTResponse``: what an event handler asks the browser to do."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import DisallowedRedirect
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, SafeString

from .live.html import neutralise
from .protocol import Action, CommandKey, DispatchKey

_NEEDS_SELECTOR = frozenset(Action) - {Action.REDIRECT, Action.DISPATCH}
_HTML_ACTIONS = frozenset({Action.HTML, Action.APPEND, Action.PREPEND, Action.REPLACE})
#: The schemes a redirect may use (rt.js follows only these, too).
_REDIRECT_SCHEMES = frozenset({"http", "https"})
#: Attributes whose value the browser loads, follows or submits to as a URL ...
URL_ATTRIBUTES = frozenset(
    ["href", "src", "action", "formaction", "xlink:href", "data", "poster", "cite"]
    + ["background", "codebase", "longdesc", "usemap", "manifest", "ping", "icon", "lowsrc"]
    + ["dynsrc", "classid", "archive", "profile"]
)
#: ... and the schemes that make such a URL run script (or hold a document of its own).
SCRIPT_SCHEMES = frozenset(["javascript", "vbscript", "data"])
#: Attributes whose value is a whole document (it runs its own scripts).
DOCUMENT_ATTRIBUTES = frozenset(["srcdoc"])
# What the browser drops from a URL before it reads the scheme (C0 controls and spaces at
# the ends, tabs and newlines anywhere); dropped everywhere here, to be sure.
_IGNORED_IN_URLS = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


class RTResponse:
    """A DOM update for the elements that ``selector`` matches in the browser.

    ``action`` is one of:

    - ``"html"`` (default), ``"append"``, ``"prepend"``, ``"replace"`` (outer HTML):
      ``content`` is escaped unless it is safe in Django's sense (``mark_safe``,
      ``format_html``, a rendered template);
    - ``"text"``: ``content`` becomes the elements' text;
    - ``"remove"``: the elements are removed (``content`` is ignored);
    - ``"attr"``: ``content`` maps attribute names to values (``None`` or ``False``
      removes the attribute, ``True`` sets it empty);
    - ``"add_class"`` / ``"remove_class"``: ``content`` is a space-separated class list;
    - ``"value"``: sets a form control's value (a bool checks a checkbox, a list selects
      the options of a ``select[multiple]``);
    - ``"focus"``: focuses the first matching element;
    - ``"reset"``: resets the matching forms (their fields go back to their markup's values).

    :meth:`redirect` and :meth:`dispatch` build the two actions that need no element.
    """

    __slots__ = ("selector", "content", "action")

    def __init__(self, selector: str | None, content: Any = "", action: str = Action.HTML) -> None:
        try:
            action = Action(action)
        except ValueError:
            choices = ", ".join(repr(a.value) for a in Action)
            raise ValueError(
                f"RTResponse: unknown action {action!r}; use one of {choices}"
            ) from None
        if action in _NEEDS_SELECTOR and (not isinstance(selector, str) or not selector.strip()):
            raise ValueError(f"RTResponse({action.value!r}) needs a CSS selector")
        if action is Action.ATTR and not isinstance(content, Mapping):
            raise TypeError('RTResponse(..., action="attr") takes a dict of attribute values')
        if action is Action.ATTR:
            for name, value in content.items():
                _check_attribute(str(name), value)
        if action is Action.REDIRECT:
            # As Django's HttpResponseRedirect: no javascript:, data:, ... URLs.
            scheme = urlsplit(str(content)).scheme
            if scheme and scheme.lower() not in _REDIRECT_SCHEMES:
                raise DisallowedRedirect(f"Unsafe redirect to URL with protocol {scheme!r}")
        self.selector = selector
        self.content = content
        self.action = action

    @classmethod
    def render(
        cls,
        selector: str,
        template_name: str | list[str],
        context: Mapping[str, Any] | None = None,
        request: HttpRequest | None = None,
        action: str = Action.HTML,
    ) -> RTResponse:
        """Render a template fragment into the matching elements, in one call."""
        return cls(selector, render_to_string(template_name, context, request), action)

    @classmethod
    def redirect(cls, url: str) -> RTResponse:
        """Send the browser to ``url``."""
        return cls(None, str(url), Action.REDIRECT)

    @classmethod
    def dispatch(cls, name: str, detail: Any = None, selector: str | None = None) -> RTResponse:
        """Dispatch a bubbling ``CustomEvent`` named ``name`` on the matching elements
        (on ``document`` without a selector), with ``detail`` (JSON) as its detail."""
        return cls(selector, {DispatchKey.NAME: name, DispatchKey.DETAIL: detail}, Action.DISPATCH)

    def as_command(self) -> dict[str, Any]:
        """The command as the client applies it."""
        content = self.content
        if self.action in _HTML_ACTIONS:
            # A marker-like comment in it would capture the patches of a live region.
            content = "" if content is None else neutralise(str(conditional_escape(content)))
        elif self.action in (Action.TEXT, Action.ADD_CLASS, Action.REMOVE_CLASS):
            content = "" if content is None else str(content)
        elif self.action is Action.ATTR:
            content = {
                str(name): value if value is None or isinstance(value, bool) else str(value)
                for name, value in content.items()
            }
        elif self.action is Action.VALUE and isinstance(content, list | tuple | set | frozenset):
            content = [str(item) for item in content]  # option values are text
        elif self.action is Action.VALUE and not isinstance(content, bool | None):
            content = str(content)
        elif self.action in (Action.REMOVE, Action.FOCUS, Action.RESET):
            content = None
        return {
            CommandKey.ACTION: self.action.value,
            CommandKey.SELECTOR: self.selector,
            CommandKey.CONTENT: content,
        }

    def __repr__(self) -> str:
        return f"RTResponse({self.selector!r}, {self.content!r}, action={self.action.value!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RTResponse):
            return NotImplemented
        return self.as_command() == other.as_command()

    __hash__ = None  # type: ignore[assignment]


def _check_attribute(name: str, value: Any) -> None:
    """Refuse what would run script in the page: an event handler attribute, a URL with a
    script scheme, a document. A value marked safe (``mark_safe``) is the caller's word."""
    if value is None or isinstance(value, bool | SafeData):
        return
    attribute = name.strip().lower()
    if attribute.startswith("on"):
        raise ValueError(
            f'RTResponse(..., action="attr") refused to set {name!r}: an event handler '
            "attribute runs its value as script. Bind the event with @RTView.event instead, "
            "or pass a value marked safe (django.utils.safestring.mark_safe) that you trust."
        )
    if attribute in DOCUMENT_ATTRIBUTES:
        raise ValueError(
            f'RTResponse(..., action="attr") refused to set {name!r}: its value is a document '
            "that runs its own scripts. Pass a value marked safe (mark_safe) that you trust."
        )
    if attribute in URL_ATTRIBUTES:
        scheme = script_scheme(str(value))
        if scheme is not None:
            raise ValueError(
                f'RTResponse(..., action="attr") refused to set {name!r} to a {scheme}: URL, '
                "which would run script in the page. Use an http(s) or relative URL, or pass "
                "a value marked safe (mark_safe) that you trust."
            )


def script_scheme(url: str) -> str | None:
    """The scheme of ``url`` if it is one that runs script (``javascript:``, ``vbscript:``,
    ``data:``), as a browser reads it: entities decoded (in case the value ever goes
    through HTML), spaces and control characters dropped."""
    match = _SCHEME.match(_IGNORED_IN_URLS.sub("", html.unescape(url)))
    scheme = match.group(1).lower() if match else None
    return scheme if scheme in SCRIPT_SCHEMES else None


def as_commands(result: Any, handler_name: str) -> list[dict[str, Any]]:
    """Normalise a handler's return value (one response, several, or ``None``)."""
    if result is None:
        return []
    if isinstance(result, RTResponse):
        return [result.as_command()]
    if isinstance(result, Iterable) and not isinstance(result, str | bytes | Mapping | SafeString):
        items = list(result)
        if all(isinstance(item, RTResponse) for item in items):
            return [item.as_command() for item in items]
    raise TypeError(
        f"Handler {handler_name}() returned {type(result).__name__}; return an RTResponse, "
        "a list of them, or None."
    )
