"""The socket's request through the project's ``MIDDLEWARE``, as Django runs a page's.

A page's WebSocket rebuilds the page's request from its scope (``consumer.py``); before
its view runs, that request goes through every middleware of ``settings.MIDDLEWARE``,
loaded by Django's own machinery (:class:`SocketHandler` is a ``BaseHandler``), sync
and async ones alike, so that what they set is there for the view, the template and the
handlers: ``request.LANGUAGE_CODE`` and the active language (``LocaleMiddleware``), a
time zone, a tenant, ``request.htmx``-style attributes, a user from a custom
authentication middleware, ``LoginRequiredMiddleware`` and any other ``process_view``
check.

What each kind of middleware does for the socket's request:

- request middleware (``process_request``, ``__call__`` before ``get_response``) runs;
  a middleware that answers instead of calling on (a redirect, a 403, a cached page)
  refuses the join as a view's answer other than 200 does;
- view middleware (``process_view``) runs, and may refuse the same way; exception
  middleware (``process_exception``) sees the view's exceptions; template-response
  middleware (``process_template_response``) runs on the view's response, which is not
  rendered here (the live engine renders it); ``ATOMIC_REQUESTS`` wraps the view as it
  wraps a page's;
- response middleware runs on a stand-in response (204, ``Cache-Control: private,
  no-store``: no cache middleware stores it), which is then discarded: headers and
  cookies cannot reach a socket;
- sessions and users: the socket's session and user are loaded once, afresh, before the
  chain (``consumer.load_identity``). ``SessionMiddleware`` makes an unloaded session
  of the same key, which is replaced by that one again; ``AuthenticationMiddleware``
  resolves to that user without a query. ``request.session`` and ``request.user`` are
  therefore the ones the access checks keep fresh. A middleware that sets a user of its
  own (a token, a header) is kept. ``SessionMiddleware`` saves the session only when it
  was modified (or with ``SESSION_SAVE_EVERY_REQUEST``), as after any request;
- messages: the page's own request showed them, and the ones stored since belong to
  the next page, so the socket's request has no message storage (as without
  ``MessageMiddleware``): ``messages`` is empty in its renders, and
  ``messages.add_message()`` raises ``MessageFailure`` unless ``fail_silently``;
- CSRF: the socket's request is a GET, which ``CsrfViewMiddleware`` lets through; it
  reads the CSRF cookie, so that a form rendered again carries a token of the
  browser's own secret;
- ``SecurityMiddleware``, ``CommonMiddleware``, ``GZipMiddleware``,
  ``XFrameOptionsMiddleware`` and other header middleware: harmless, their headers are
  discarded (``SECURE_SSL_REDIRECT`` refuses a socket that is not secure, as it would
  redirect the page).

No ``request_started`` or ``request_finished`` signal is sent for it.

What middleware activates for the length of a request (a language, a time zone, a
URLconf on ``request.urlconf``) is captured where Django would render the page
(:class:`Activation`) and made active again around every later render and handler of
that page, in whatever thread runs it. Other state that a middleware keeps outside the
request (a thread-local, a context variable, a database schema) holds for the view's
run at the join and at access checks only.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import ResolverMatch, get_urlconf, set_urlconf
from django.utils import timezone, translation

from .live import audience

P = ParamSpec("P")
R = TypeVar("R")

#: The request attribute through which the innermost handler reports what it met.
OUTCOME_ATTRIBUTE = "_rt_outcome"


@dataclass(frozen=True)
class Activation:
    """What a page's request had active where Django renders it: its language, time
    zone and URLconf. Equal activations render alike."""

    language: str | None
    timezone: tzinfo
    urlconf: Any = None  # request.urlconf, when a middleware set one

    @classmethod
    def current(cls, request: HttpRequest) -> Activation:
        return cls(
            language=translation.get_language(),
            timezone=timezone.get_current_timezone(),
            urlconf=getattr(request, "urlconf", None),
        )

    def active(self) -> AbstractContextManager[None]:
        """Make the page's language, time zone and URLconf active in this thread (or
        task), and what was active before again afterwards. Nothing to do where they
        are active already (a page's update inside the run of its view): the same
        three things, whatever the code in between activated and left active."""
        if (
            translation.get_language() == self.language
            and timezone.get_current_timezone() == self.timezone
            and (self.urlconf is None or get_urlconf() == self.urlconf)
        ):
            return _ALREADY
        return self._override()

    @contextmanager
    def _override(self) -> Iterator[None]:
        with translation.override(self.language), timezone.override(self.timezone):
            if self.urlconf is None:
                yield
                return
            previous = get_urlconf()
            set_urlconf(self.urlconf)
            try:
                yield
            finally:
                set_urlconf(previous)


_ALREADY: AbstractContextManager[None] = nullcontext()


def activated(function: Callable[P, R], activation: Activation | None) -> Callable[P, R]:
    """``function`` (sync or async) run with ``activation`` active."""
    if activation is None:
        return function
    if iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            with activation.active():
                return await function(*args, **kwargs)

        return markcoroutinefunction(run_async)  # type: ignore[return-value]

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with activation.active():
            return function(*args, **kwargs)

    return run


def activation_of(activation: Activation | None) -> AbstractContextManager[Any]:
    return nullcontext() if activation is None else activation.active()


#: Called with the processed request and its URL's match before the view runs; what it
#: raises refuses the request.
BeforeView = Callable[[HttpRequest, ResolverMatch], None]


@dataclass
class Outcome:
    """What a socket's request met in the project's middleware."""

    before_view: BeforeView | None = None
    #: The request reached the view (no middleware answered first).
    reached: bool = False
    #: The request as the middleware left it (the one the view received).
    request: HttpRequest | None = None
    #: The view's response, unrendered (or what a middleware answered instead).
    response: HttpResponseBase | None = None
    activation: Activation | None = None
    #: What the view (or ``before_view``) raised that no middleware turned into a
    #: response: raised again once the middleware are done.
    error: Exception | None = None
    #: The session and user the request came with (see the module's docstring).
    session: Any = None
    user: Any = field(default=None)


def _stand_in() -> HttpResponse:
    """What the response middleware see: no content, and nothing a cache would keep."""
    return HttpResponse(status=204, headers={"Cache-Control": "private, no-store"})


class SocketHandler(BaseHandler):
    """The project's ``MIDDLEWARE``, loaded as Django's handler loads it (sync mode:
    the chain runs in one worker thread; async-only middleware are adapted by Django),
    around a view call that does not render."""

    # Set by BaseHandler.load_middleware().
    _middleware_chain: Callable[[HttpRequest], HttpResponseBase] | None
    _view_middleware: list[Callable[..., HttpResponseBase | None]] | None
    _template_response_middleware: list[Callable[..., HttpResponseBase]] | None

    def __init__(self) -> None:
        self.load_middleware(is_async=False)

    def run(self, request: HttpRequest, before_view: BeforeView | None = None) -> Outcome:
        """Run ``request`` through the middleware and its URL's view (in a context of
        its own: what the middleware activate does not leak into the caller's)."""
        return contextvars.copy_context().run(self._run, request, before_view)

    def _run(self, request: HttpRequest, before_view: BeforeView | None) -> Outcome:
        outcome = Outcome(
            before_view=before_view,
            session=request.__dict__.get("session"),
            user=request.__dict__.get("user"),
        )
        if outcome.user is not None:
            # What AuthenticationMiddleware's lazy user resolves to: no second query.
            request._cached_user = outcome.user  # type: ignore[attr-defined]
            request._acached_user = outcome.user  # type: ignore[attr-defined]
        setattr(request, OUTCOME_ATTRIBUTE, outcome)
        try:
            assert self._middleware_chain is not None
            response = self._middleware_chain(request)
        finally:
            set_urlconf(None)  # as Django does when a request finishes
        processed = outcome.request or request
        if hasattr(processed, OUTCOME_ATTRIBUTE):
            delattr(processed, OUTCOME_ATTRIBUTE)
        if outcome.error is not None:
            raise outcome.error
        if not outcome.reached:
            outcome.request = processed
            outcome.response = response
        return outcome

    def _get_response(self, request: HttpRequest) -> HttpResponseBase:
        """The innermost step: resolve the URL and call its view as Django's handler
        does, without rendering the response."""
        outcome: Outcome = getattr(request, OUTCOME_ATTRIBUTE)
        outcome.reached = True
        outcome.request = request
        self._keep_identity(request, outcome)
        request.__dict__.pop("_messages", None)
        try:
            outcome.response = self._call_view(request, outcome)
        except Exception as error:
            outcome.error = error
        outcome.activation = Activation.current(request)
        return _stand_in()

    @staticmethod
    def _keep_identity(request: HttpRequest, outcome: Outcome) -> None:
        session: Any = outcome.session
        made: Any = request.__dict__.get("session")
        # SessionMiddleware made a store of the same key, still unloaded: the one loaded
        # for the socket takes its place again.
        if (
            session is not None
            and made is not session
            and type(made) is type(session)
            and made.session_key == session.session_key
        ):
            request.session = session

    def _call_view(self, request: HttpRequest, outcome: Outcome) -> HttpResponseBase:
        match = self.resolve_request(request)
        if outcome.before_view is not None:
            outcome.before_view(request, match)
        # What the view reads of a watched request counts (``live/audience.py``), not
        # what the middleware read around it.
        with audience.recording():
            return self._view_response(request, match)

    def _view_response(self, request: HttpRequest, match: ResolverMatch) -> HttpResponseBase:
        callback, args, kwargs = match
        response = None
        for process_view in self._view_middleware or ():
            response = process_view(request, callback, args, kwargs)
            if response:
                break
        if response is None:
            view = self.make_view_atomic(callback)
            if iscoroutinefunction(view):
                view = async_to_sync(view)
            try:
                response = view(request, *args, **kwargs)
            except Exception as error:
                response = self.process_exception_by_middleware(error, request)
                if response is None:
                    raise
        self.check_response(response, callback)
        if hasattr(response, "render") and callable(response.render):
            for process_template_response in self._template_response_middleware or ():
                response = process_template_response(request, response)
                name = getattr(process_template_response, "__qualname__", "middleware")
                self.check_response(response, process_template_response, name=name)
        assert response is not None
        return response


_lock = threading.Lock()
_handler: tuple[tuple[str, ...], SocketHandler] | None = None


def socket_handler() -> SocketHandler:
    """The handler of the current ``MIDDLEWARE`` (loaded again when it changes)."""
    global _handler
    key = tuple(settings.MIDDLEWARE)
    with _lock:
        if _handler is None or _handler[0] != key:
            _handler = (key, SocketHandler())
        return _handler[1]


def run_page_request(request: HttpRequest, before_view: BeforeView | None = None) -> Outcome:
    """Run a socket's request through the project's middleware and its view (sync: in a
    worker thread)."""
    return socket_handler().run(request, before_view)
