"""Audiences: open pages that show the same thing share one live state.

A thousand browsers on one public page would otherwise hold a thousand copies of the
same regions and render the same change a thousand times. Pages whose view ran with the
same inputs, and that render the same HTML, form an *audience*: the hub keeps one
:class:`~django_rt.live.page.LivePage` for all of them, updates it once per batch and
sends the one encoded frame to every socket.

What makes a page's inputs is found by watching its request while its view runs and its
template renders (:class:`Probe`): the URL (path and query string), the view, the
activation (language, time zone, URLconf), and only what it actually read of the rest:

- the user (``request.user``): then pages share only with the same user's;
- the session (``request.session``): then only with the same session's;
- a header, a cookie or another ``request.META`` value: then only with pages whose
  request had the same value (the CSRF token a ``{% csrf_token %}`` renders is one, so
  a page with a form shares only with its own browser's other tabs);
- an attribute of the request (``request.GET``, what a middleware set, such as
  ``request.htmx``): then only with pages whose request had an equal one (by ``repr``).

The CSRF token is the exception: a live page renders a placeholder where its templates
show ``csrf_token`` (the ``{% csrf_token %}`` tag, ``{{ csrf_token }}``), and each
connection puts its own browser's token in its frames as they leave
(:data:`CSRF_PLACEHOLDER`). So a page with a form is shared too, and a browser only ever
gets its own token. The placeholder is random per process and never leaves it.

A page that read the whole of ``request.META`` (``request.headers``), or whose template
shows the view's own state (``{{ view.… }}``, which events change per connection), has
no audience: it is never shared. Neither is a page whose view says so
(``RTView.rt_shared = False``: a view computed from a clock, a random pick, or state that
the request does not carry).

The reads are watched for as long as the page is open: when an update of a shared page
reads something that its audience did not account for (a new row renders
``{{ user }}``), the audience splits, and every other page runs its own view again
before it gets anything (see ``Hub``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, empty

from ..sessions import session_hash
from ..tokens import user_key

#: What live renders show for ``csrf_token``; every frame has it replaced with its
#: connection's own token before it is sent.
CSRF_PLACEHOLDER = secrets.token_hex(32)

#: The request attribute that holds its :class:`Probe`.
PROBE_ATTRIBUTE = "_rt_probe"

#: What reading ``request.META`` as a whole is recorded as: such a page is never shared.
ALL_META = "meta:*"

#: ``request.META`` keys that every page of an audience has alike: what its URL is made of
#: (the audience key holds the URL) and what the server says of itself.
SAME_FOR_ALL = frozenset(
    {
        "PATH_INFO",
        "QUERY_STRING",
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "HTTP_HOST",
        "wsgi.url_scheme",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
    }
)


class _Recording(threading.local):
    #: Whether what is read of a watched request counts, in this thread: while its
    #: page's view runs and its templates render, not while an event handler runs.
    on = False


_state = _Recording()


def _recording() -> bool:
    return _state.on


class Probe:
    """What a request's view and renders read of the request, beyond its URL."""

    __slots__ = ("reads", "meta")

    def __init__(self, meta: dict[str, Any]) -> None:
        self.reads: set[str] = set()
        self.meta = meta  # the request's META, read unwatched (dict.get)


class WatchedMeta(dict[str, Any]):
    """``request.META`` that tells its :class:`Probe` which keys were read."""

    probe: Probe

    def _note(self, key: object) -> None:
        if key not in SAME_FOR_ALL and _recording():
            self.probe.reads.add(f"meta:{key}")

    def _all(self) -> None:
        if _recording():
            self.probe.reads.add(ALL_META)

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._all()
        return super().__iter__()

    def keys(self) -> Any:
        self._all()
        return super().keys()

    def values(self) -> Any:
        self._all()
        return super().values()

    def items(self) -> Any:
        self._all()
        return super().items()

    def copy(self) -> dict[str, Any]:
        self._all()
        return dict(super().items())


class WatchedUser(SimpleLazyObject):  # type: ignore[type-arg]
    """``request.user`` that tells its :class:`Probe` of every use while recording
    (every operation on a lazy object reads its ``_wrapped``)."""

    def __getattribute__(self, name: str) -> Any:
        if _recording():
            probe = object.__getattribute__(self, "__dict__").get("_rt_probe")
            if probe is not None:
                probe.reads.add("user")
        return super().__getattribute__(name)


#: Request attributes watched their own way, or derived from what is.
_WATCHED_APART = frozenset({"user", "auser", "session", "META", "COOKIES", "headers"})
_watched_classes: dict[type, type] = {}


def _watched_class(cls: type) -> type:
    """A subclass of a request class that tells the request's probe which attributes of
    its own (what the project's middleware set, ``request.htmx``-style, and Django's
    ``GET``, ``path``...) were read while recording."""
    watched = _watched_classes.get(cls)
    if watched is None:

        def __getattribute__(self: Any, name: str) -> Any:
            if _state.on and name[:1] != "_" and name not in _WATCHED_APART:
                own = object.__getattribute__(self, "__dict__")
                if name in own:
                    probe = own.get(PROBE_ATTRIBUTE)
                    if probe is not None:
                        probe.reads.add(f"attr:{name}")
            return super(watched, self).__getattribute__(name)  # type: ignore[arg-type]

        watched = type(
            cls.__name__,
            (cls,),
            {"__getattribute__": __getattribute__, "__module__": cls.__module__},
        )
        _watched_classes[cls] = watched
    return watched


def watch(request: HttpRequest) -> Probe:
    """Start watching what is read of ``request`` (once the project's middleware has
    run, right before the view, in the thread that runs it): its user, its session,
    its ``META``. What the rest of that view run reads counts."""
    watched = WatchedMeta(request.META)
    probe = Probe(watched)
    watched.probe = probe
    request.META = watched
    # Built from META on first use: built again from the watched one.
    for cached in ("headers", "COOKIES"):
        request.__dict__.pop(cached, None)
    setattr(request, PROBE_ATTRIBUTE, probe)
    if type(request) not in _watched_classes.values():
        request.__class__ = _watched_class(type(request))
    watch_user(request)
    session = getattr(request, "session", None)
    if session is not None and hasattr(session, "accessed"):
        session.accessed = False
    return probe


def watch_user(request: HttpRequest) -> None:
    """Make ``request.user`` (and ``request.auser()``) tell the request's probe when
    it is used."""
    probe = getattr(request, PROBE_ATTRIBUTE, None)
    if probe is None or not hasattr(request, "user"):
        return
    user = request.user
    if isinstance(user, WatchedUser):
        return
    if isinstance(user, SimpleLazyObject):
        if user._wrapped is empty:
            user._setup()
        user = user._wrapped
    watched = WatchedUser(lambda: user)
    object.__getattribute__(watched, "__dict__")["_rt_probe"] = probe
    request.user = watched  # type: ignore[assignment]

    async def auser() -> Any:
        if _recording():
            probe.reads.add("user")
        return user

    request.auser = auser


def note_session(request: HttpRequest | None) -> None:
    """Count the session as read when it was accessed (since :func:`watch`)."""
    probe = getattr(request, PROBE_ATTRIBUTE, None) if request is not None else None
    session = getattr(request, "session", None)
    if probe is not None and session is not None and getattr(session, "accessed", False):
        probe.reads.add("session")


@contextmanager
def recording(request: HttpRequest | None = None) -> Iterator[None]:
    """Count what is read of watched requests in this thread meanwhile (a render, a
    view run), and of ``request``'s session."""
    previous, _state.on = _state.on, True
    probe = getattr(request, PROBE_ATTRIBUTE, None) if request is not None else None
    session: Any = getattr(request, "session", None) if probe is not None else None
    accessed = getattr(session, "accessed", None)
    if accessed is not None:
        session.accessed = False
    try:
        yield
    finally:
        _state.on = previous
        if accessed is not None and probe is not None:
            if session.accessed:
                probe.reads.add("session")
            session.accessed = session.accessed or accessed


def reads(request: HttpRequest | None) -> frozenset[str] | None:
    """What has been read of ``request`` so far; ``None`` when it is not watched."""
    probe = getattr(request, PROBE_ATTRIBUTE, None) if request is not None else None
    if probe is None:
        return None
    return frozenset(probe.reads)


def audience_key(
    request: HttpRequest, *parts: Hashable
) -> tuple[tuple[Hashable, ...], tuple[Hashable, ...]] | None:
    """What pages must have alike to share a live state: their :func:`prefix` (``parts``,
    such as the view, the template, the activation, and the request's URL), and the
    values of what was read of their requests (:func:`values`). ``None``: never shared."""
    seen = reads(request)
    if seen is None or ALL_META in seen:
        return None
    return prefix(request, *parts), values(request, seen)


def prefix(request: HttpRequest, *parts: Hashable) -> tuple[Hashable, ...]:
    """What an audience's pages have alike whatever they read: ``parts`` and the URL."""
    meta = getattr(request, PROBE_ATTRIBUTE).meta
    return (
        *parts,
        dict.get(meta, "wsgi.url_scheme"),
        dict.get(meta, "HTTP_HOST"),
        request.get_full_path(),
    )


def values(request: HttpRequest, seen: frozenset[str]) -> tuple[Hashable, ...]:
    """The values, in ``request``, of what ``seen`` names (see :func:`reads`), read
    without counting as reads."""
    meta = getattr(request, PROBE_ATTRIBUTE).meta
    found: list[Hashable] = []
    for read in sorted(seen):
        if read == "user":
            found.append(("user", user_key(request)))
        elif read == "session":
            key = getattr(getattr(request, "session", None), "session_key", None)
            found.append(("session", session_hash(key) if key else ""))
        elif read.startswith("meta:"):
            found.append((read, repr(dict.get(meta, read[5:]))))
        elif read.startswith("attr:"):
            # An object without a value of its own (its repr names its address) makes
            # the key unique: that page is shared with none.
            found.append((read, repr(getattr(request, read[5:], None))))
    return tuple(found)
