"""The WebSocket consumer: one per open page.

A page's socket ``join``\\ s with its signed token; the consumer rebuilds the page's
request from the socket's scope, with the session and user as the session store has
them now, passes it through the project's ``MIDDLEWARE`` (``middleware.py``) and runs
the page's own view function (so middleware checks, decorators, ``LoginRequiredMixin``,
``PermissionRequiredMixin`` and the view's own checks apply again), and keeps the view
instance for the life of the connection, with what the page's request had active (its
language, time zone) for every later render and handler. ``event`` frames then call the
handlers that the view declared with ``RTView.event``, and nothing else.

Frames are handled one at a time, in order; their sync work runs in the connections'
thread pool (``workers.py``), so a slow handler delays only its own page. Every refused
input gets an ``error`` frame that says why; only a refused ``join`` and the limits of
``docs/security.md`` close the connection, each with its own close code.

What the consumer keeps checking after the join (``docs/security.md``):

- the session: when it ends (logout, flush, a rotated key), the hub ends the page at
  once (``sessions.py``), on every process;
- the access: before a patch is sent or a handler runs, a verdict older than
  ``ACCESS_CHECK_SECONDS`` runs the view again, with the session and user of now;
- the limits: ``JOIN_TIMEOUT``, ``MAX_CONNECTION_AGE``, the caps per page and per user
  (``connections.py``), the rate of frames and of resyncs.

Every way out of a connection (a close from either side, a failed send, an error)
leaves the hub, the registry and every timer behind: :meth:`RTConsumer.release`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import random
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Hashable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Generic, TypeVar, cast, overload
from urllib.parse import unquote

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponseBase
from django.middleware.csrf import get_token
from django.template.base import UNKNOWN_SOURCE
from django.template.response import TemplateResponse
from django.urls import Resolver404, ResolverMatch

from . import wire
from .asgi import SERVER_SEND
from .broadcasting import audiences
from .coercion import InvalidValue
from .conf import rt_settings
from .connections import LogBudget, TokenBucket, registry
from .events import EventTarget, Handler
from .hub import Hub, encode_patch
from .live import audience
from .live.page import LivePage, morph_op, page_patch, resync_patch
from .live.proxies import VIEW
from .live.recorder import evaluate_fresh
from .live.render import base_template, stable_hash
from .middleware import Activation, Outcome, activated, activation_of, run_page_request
from .protocol import (
    VERSION,
    CloseCode,
    ErrorCode,
    Frame,
    Key,
    PatchKey,
    PatchOp,
    TargetKey,
    encode,
)
from .responses import as_commands
from .sessions import session_hash
from .tokens import ExpiredToken, InvalidToken, PageToken, user_key
from .views import VIEW_CAPTURE_ATTRIBUTE, FunctionView, RTView, ViewRefused, live_view_path
from .workers import run_in_worker

logger = logging.getLogger("django_rt")

#: The part of ``ACCESS_CHECK_SECONDS``, at the end of a verdict, in which a patch that
#: leaves starts the next check.
ACCESS_CHECK_AHEAD = 0.25

#: Seconds between the moment a page's session ends and the close that reloads it: the
#: page gets nothing more meanwhile.
SESSION_END_GRACE = 0.3

#: Patch frames a connection holds while its socket is busy or its access is being
#: checked; beyond that they are dropped and the page is resynced once it can send.
OUTBOX_LIMIT = 64
#: Region ids a ``resync`` frame may name; more, or longer ones, ask for the whole page.
RESYNC_IDS_LIMIT = 100
RESYNC_ID_LENGTH = 200
#: How much earlier than ``MAX_CONNECTION_AGE`` a connection may be closed, as a share
#: of it: pages opened together (after a restart) do not all rejoin together.
AGE_JITTER = 0.1


_join_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def join_slot() -> asyncio.Semaphore:
    """What a join holds while its view runs and its page renders: at most
    ``JOIN_CONCURRENCY`` at once per event loop."""
    loop = asyncio.get_running_loop()
    slots = _join_slots.get(loop)
    if slots is None:
        slots = _join_slots[loop] = asyncio.Semaphore(rt_settings.JOIN_CONCURRENCY)
    return slots


@dataclass
class Verdict:
    """What an access check found: until when it holds (``time.monotonic()``), and
    either the user and session of now, or that the session ended, or why the view
    refused."""

    until: float
    user: Any = None
    session: Any = None
    ended: bool = False
    refused: str | None = None


_verdicts: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[Hashable, tuple[float, asyncio.Future[Verdict]]]
] = weakref.WeakKeyDictionary()


async def shared_verdict(
    key: Hashable, check: Callable[[], Coroutine[Any, Any, Verdict]]
) -> Verdict:
    """The verdict of an access check that ``key`` (a session, its user, a page's view
    and URL) decides, shared by the connections that have that key: a thousand tabs of
    one page in one browser, a thousand anonymous visitors without a session, run one
    check per ``ACCESS_CHECK_SECONDS``, not one each."""
    if not rt_settings.ACCESS_CHECK_SECONDS:
        return await check()
    return await asyncio.shield(start_verdict(key, check))


def start_verdict(
    key: Hashable, check: Callable[[], Coroutine[Any, Any, Verdict]], ahead: float = 0
) -> asyncio.Future[Verdict]:
    """The shared check of ``key`` (see :func:`shared_verdict`), started now unless one
    runs or holds; ``ahead``: a verdict that runs out within that many seconds is checked
    again now."""
    known = _verdicts.setdefault(asyncio.get_running_loop(), {})
    now = time.monotonic()
    entry = known.get(key)
    if entry is None or (entry[1].done() and (entry[0] <= now + ahead or _failed(entry[1]))):
        if len(known) > 1000:  # forget the verdicts that ran out
            for old in [k for k, (until, f) in known.items() if f.done() and until <= now]:
                del known[old]
        future = asyncio.ensure_future(check())
        # Started ahead, it may end with no one waiting: its error is logged by whoever
        # checks next, not reported as never retrieved.
        future.add_done_callback(_failed)
        entry = known[key] = (now + rt_settings.ACCESS_CHECK_SECONDS, future)
    return entry[1]


def known_verdict(key: Hashable) -> Verdict | bool | None:
    """The shared verdict of ``key`` (see :func:`shared_verdict`) while it holds and
    lets the page be shown, without waiting; True while a check of it runs; else None."""
    known = _verdicts.get(asyncio.get_running_loop())
    entry = known.get(key) if known else None
    if entry is None:
        return None
    if not entry[1].done():
        return True
    if _failed(entry[1]):
        return None
    verdict = entry[1].result()
    if entry[0] <= time.monotonic() or verdict.ended or verdict.refused is not None:
        return None
    return verdict


def _failed(future: asyncio.Future[Verdict]) -> bool:
    """A check that raised, or was cancelled: not a verdict to share."""
    return future.cancelled() or future.exception() is not None


class Refused(Exception):
    """An input the consumer will not act on; becomes an error frame."""

    def __init__(self, code: ErrorCode, message: str, close: CloseCode | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.close = close


@dataclass
class Identity:
    """Who a socket's session says it is, as the session store has it now."""

    session: Any  # a SessionBase, or None without session middleware
    user: Any
    #: The session holds data (a signed-in user's does): if it stops holding any, it ended.
    alive: bool


def socket_session_key(scope: Mapping[str, Any]) -> str | None:
    session = scope.get("session")
    key = getattr(session, "session_key", None) if session is not None else None
    return key if isinstance(key, str) and key else None


def load_identity(scope: Mapping[str, Any]) -> Identity:
    """The socket's session and user, loaded afresh (in a worker thread): the scope's
    were loaded when the socket connected, and may have ended since."""
    if "session" not in scope:  # no session middleware: the scope's user is all there is
        return Identity(None, scope.get("user"), alive=False)
    key = socket_session_key(scope)
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore(key)
    alive = key is not None and bool(list(session.keys()))
    request = HttpRequest()
    request.session = session
    # Verifies the user as a request would: active, and the session's auth hash (a
    # password changed elsewhere flushes the session, which ends its pages).
    return Identity(session, auth.get_user(request), alive)


def _audiences_of(view: RTView | FunctionView) -> set[str] | None:
    """The broadcast audiences a page of ``view`` joins (a function view's: none)."""
    return audiences(view) if isinstance(view, RTView) else None


def request_from_scope(
    scope: Mapping[str, Any], full_path: str, identity: Identity | None = None
) -> HttpRequest:
    """A GET request for ``full_path`` carrying the socket's headers, cookies,
    session and user, as the page's own request did."""
    path, _, query = full_path.partition("?")
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "ws"), "http")
    http_scope = {
        **scope,
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": unquote(path),
        "raw_path": path.encode("ascii", "replace"),
        "query_string": query.encode("ascii", "replace"),
    }
    request = ASGIRequest(http_scope, io.BytesIO())
    if identity is not None and identity.session is not None:
        request.session = identity.session
    elif "session" in scope:
        request.session = scope["session"]
    if identity is not None and identity.user is not None:
        request.user = identity.user
    elif "user" in scope:
        request.user = scope["user"]
    return request


@dataclass
class ViewRun:
    """The page's view, run for its socket through the project's middleware."""

    view: RTView | FunctionView | None  # None: it did not run (the response says why)
    response: HttpResponseBase  # unrendered
    request: HttpRequest  # as the middleware left it: the one the view received
    activation: Activation | None  # its language, time zone ... (middleware.py)
    after: Any = None  # what ``run_view(after=...)`` returned
    after_error: Exception | None = None

    def after_result(self) -> Any:
        """What ``after`` returned; what it raised is raised here."""
        if self.after_error is not None:
            raise self.after_error
        return self.after


@dataclass
class _ViewCall:
    """What the worker thread of :meth:`RTConsumer.run_view` made besides the outcome."""

    request: HttpRequest | None = None
    error: Exception | None = None  # raised while making the request
    after: Any = None
    after_error: Exception | None = None


def _target(value: Any) -> EventTarget:
    if value is None:
        return EventTarget()
    if not isinstance(value, dict):
        raise Refused(ErrorCode.BAD_FRAME, "the event's target must be an object")
    data = value.get(TargetKey.DATA) or {}
    texts = [value.get(key) for key in (TargetKey.ID, TargetKey.TAG, TargetKey.NAME)]
    if not isinstance(data, dict) or not all(isinstance(t, str | None) for t in texts):
        raise Refused(ErrorCode.BAD_FRAME, "the event's target is malformed")
    return EventTarget(
        id=texts[0],
        tag=texts[1],
        name=texts[2],
        value=value.get(TargetKey.VALUE),
        data={str(k): str(v) for k, v in data.items()},
    )


def _resync_ids(value: Any) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused(ErrorCode.BAD_FRAME, "a resync's ids must be a list of region ids")
    if len(value) > RESYNC_IDS_LIMIT or any(len(v) > RESYNC_ID_LENGTH for v in value):
        return None  # that many misses: the whole page it is
    return set(value)


async def _finish(coroutine: Coroutine[Any, Any, Any], waiting: Any) -> None:
    """Run ``coroutine`` to its end, where it stopped to wait for ``waiting`` (what it
    yielded: an asyncio future, or None to let the loop run once), as a task would."""
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting,))
            waiting = coroutine.send(None)
    except StopIteration:
        return
    finally:
        coroutine.close()  # cancelled while it waited: it stops there


V = TypeVar("V")


class _Writability(Generic[V]):
    """An attribute of a connection that ``writable_until`` depends on: each
    assignment computes it again (``RTConsumer._writable``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.stored = "_" + name

    @overload
    def __get__(self, consumer: None, owner: type) -> _Writability[V]: ...
    @overload
    def __get__(self, consumer: RTConsumer, owner: type) -> V: ...
    def __get__(self, consumer: RTConsumer | None, owner: type) -> V | _Writability[V]:
        return self if consumer is None else cast(V, getattr(consumer, self.stored))

    def __set__(self, consumer: RTConsumer, value: V) -> None:
        setattr(consumer, self.stored, value)
        consumer._writable()


class RTConsumer(AsyncWebsocketConsumer):
    """Serves the WebSocket of one page rendered by an :class:`~django_rt.RTView`."""

    #: The socket is closed: nothing can be sent any more.
    gone: _Writability[bool] = _Writability()
    #: Closing on our side: frames that arrive now are ignored.
    ending: _Writability[bool] = _Writability()
    #: The task that sends what waits in the outbox, while it runs.
    flushing: _Writability[asyncio.Task[None] | None] = _Writability()
    #: The socket fell too far behind: its waiting patches make way for a resync.
    outbox_overflow: _Writability[bool] = _Writability()

    # An open page keeps one of these: its own attributes in slots, not in a dict of
    # their own (those with a class default, and Channels', stay in the instance dict).
    __slots__ = (
        "writable_until",
        "outbox",
        "_gone",
        "_ending",
        "_outbox_overflow",
        "_flushing",
        "_access_fresh",
        "_access_until",
        "send_now",
        "direct",
        "bucket",
        "log_budget",
        "closing",
        "busy",
        "joining",
        "join_late",
        "close_when_idle",
        "session",
        "csrf_token",
        "session_alive",
        "access_check",
        "renewal",
        "outbox_patches",
        "resync_wanted",
        "resync_missed",
        "resync_at",
        "resyncing",
        "tasks",
        "timers",
    )

    view: RTView | FunctionView | None = None
    audiences: set[str] | frozenset[str] = frozenset()
    request: HttpRequest | None = None
    #: What the page's request had active (its language, time zone): made active again
    #: around its handlers and renders.
    activation: Activation | None = None
    page: LivePage | None = None
    hub: Hub | None = None
    token: PageToken | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Until when (monotonic) a patch goes to the server's ``send`` at once, with no
        #: question asked (``Hub._write_at_once``): the access verdict's fresh time
        #: while the socket is open and no frame waits; 0 otherwise. Kept by
        #: :meth:`_writable`, whenever what it depends on changes.
        self.writable_until = 0.0
        #: Frames waiting for the socket, in order: (the encoded frame, whether it is a
        #: patch). Patches wait for the page's access check; beyond ``OUTBOX_LIMIT`` of
        #: them the socket is too slow, and they are dropped for a resync. Made when a
        #: frame first has to wait: most sockets never need one.
        self.outbox: deque[tuple[str, bool]] | tuple[()] = ()
        self._gone = self._ending = self._outbox_overflow = False
        self._flushing: asyncio.Task[None] | None = None
        self._access_fresh = 0.0
        self.send_now: Callable[[dict[str, Any]], Coroutine[Any, Any, None]] | None = None
        #: The server protocol whose transport an audience's frame may be written to
        #: (``wire.py``), if the server is one whose socket state django-rt can read.
        self.direct: Any = None
        self.bucket = TokenBucket(rt_settings.EVENTS_PER_SECOND, rt_settings.EVENTS_BURST)
        self.log_budget = LogBudget()
        self.closing: asyncio.Task[Any] | None = None  # a close that waits
        self.busy = False  # a frame is being handled
        self.joining = False
        self.join_late = False  # the join timeout passed while a join was running
        self.close_when_idle = False  # MAX_CONNECTION_AGE passed while a frame ran
        self.session: str | None = None  # session_hash() of the socket's session
        self.csrf_token = ""  # the browser's CSRF token, masked once
        self.session_alive = False
        self.access_until = 0.0  # monotonic time until which the access verdict holds
        self.access_check: asyncio.Task[bool] | None = None
        #: The shared check started ahead of this connection's verdict (see
        #: :meth:`_access_known`), while it runs.
        self.renewal: asyncio.Future[Verdict] | None = None
        self.outbox_patches = 0
        self.resync_wanted = False
        self.resync_missed: frozenset[str] | set[str] | None = frozenset()
        self.resync_at = 0.0
        self.resyncing: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] | frozenset[asyncio.Task[Any]] = frozenset()
        self.timers: list[asyncio.TimerHandle] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' loop (``AsyncConsumer.__call__``) awaits the socket's messages in a
        # task of their own, one ``asyncio.wait`` per message, and opens a channel of
        # the project's channel layer when there is one; this consumer needs no channel
        # (the hub brings its changes) and handles its messages one after the other
        # either way, so it reads them itself: an open page keeps one coroutine.
        self.scope = scope
        self.channel_layer = None  # type: ignore[assignment]
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
                # Between two frames the loop runs what is ready (what the frame started,
                # other sockets), as with Channels' loop: frames that came together are
                # not handled in one go.
                await asyncio.sleep(0)
        except StopConsumer:
            pass
        finally:  # whatever ended the connection: an error, a cancellation, a close
            self.gone = True
            self.release()

    async def dispatch(self, message: Any) -> None:
        # Channels' own dispatch first closes the stale database connections of asgiref's
        # shared thread, a hop that waits behind whatever sync work runs there (an HTTP
        # view, another page's thread-sensitive code). This consumer touches the
        # database only in its worker threads, which do that themselves.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    @property
    def live(self) -> bool:
        """The connection is open and not being closed."""
        return not (self.gone or self.ending)

    @property
    def access_until(self) -> float:
        """The monotonic time until which the page's access verdict holds."""
        return self._access_until

    @access_until.setter
    def access_until(self, until: float) -> None:
        self._access_until = until
        # Until then a patch leaves with no question asked (see _access_known).
        self._access_fresh = until - ACCESS_CHECK_AHEAD * rt_settings.ACCESS_CHECK_SECONDS
        self._writable()

    def _writable(self) -> None:
        # The outbox fills only while a flush runs or is started, and a flush that
        # ends sets `flushing`: its emptiness is current whenever this runs.
        idle = not (self._gone or self._ending or self._outbox_overflow)
        idle = idle and self._flushing is None and not self.outbox
        self.writable_until = self._access_fresh if idle else 0.0

    async def connect(self) -> None:
        self.hub = Hub.current()
        self.send_now = self._server_send()
        self.direct = wire.direct_protocol(self.send_now)
        key = socket_session_key(self.scope)
        if key is not None:
            # Watched from the start: a session that ends while the join runs ends it too.
            self.session = session_hash(key)
            self.hub.watch_session(self, self.session)
        await self.accept()
        loop = asyncio.get_running_loop()
        age = rt_settings.MAX_CONNECTION_AGE * (1 - AGE_JITTER * random.random())
        self.timers += [
            loop.call_later(rt_settings.JOIN_TIMEOUT, self._join_deadline),
            loop.call_later(age, self._aged),
        ]

    async def disconnect(self, code: int) -> None:
        self.gone = True
        self.release()

    def release(self) -> None:
        """Leave the hub and the registry, stop every timer and task (idempotent)."""
        for timer in self.timers:
            timer.cancel()
        self.timers = []
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.outbox = ()
        self.outbox_patches = 0
        if self.renewal is not None:
            self.renewal.remove_done_callback(self._renewed)
            self.renewal = None
        if self.hub is not None:
            self.hub.detach(self)
            self.hub.leave_audiences(self, self.audiences)
            if self.session is not None:
                self.hub.unwatch_session(self, self.session)
        registry.release(self)
        suppressed, self.log_budget.suppressed = self.log_budget.suppressed, 0
        if suppressed:
            logger.warning(
                "django-rt: %d more refused frames from %s were not logged", suppressed, self.client
            )

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task of this connection: cancelled when it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        tasks = self.tasks
        if not isinstance(tasks, set):
            tasks = self.tasks = set()
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    async def end(
        self, code: ErrorCode | None, message: str, close: CloseCode, after: float = 0
    ) -> None:
        """Close the connection on our side: an error frame that says why (``code``),
        then the close code the client acts on; ``after`` seconds later, with nothing
        sent in between."""
        if not self.live:
            return
        self.ending = True
        waiting = [text for text, patch in self.outbox if not patch]
        self.release()
        if after:
            # A later release() (the join's, the disconnect's) must not cancel the close.
            self.closing = asyncio.current_task()
            if isinstance(self.tasks, set):
                self.tasks.discard(self.closing)
            await asyncio.sleep(after)
        for text in waiting:  # replies and errors already queued, not patches
            await self._write(text)
        if code is not None:
            logger.info("django-rt: closing the connection of %s: %s", self.client, message)
            await self._send(self.error_frame(code, message))
        if not self.gone:
            try:
                await self.close(code=int(close))
            except Exception:
                self.gone = True

    def receive_broadcast(self, commands: list[dict[str, Any]]) -> None:
        """The hub hands over commands broadcast to this page's view or groups: they go
        to the browser as a reply to no event, once the page's access holds."""
        self.spawn(self._send_broadcast(commands))

    async def _send_broadcast(self, commands: list[dict[str, Any]]) -> None:
        if await self.allowed():
            await self.send_frame({Key.TYPE: Frame.REPLY, Key.REF: None, Key.COMMANDS: commands})

    def end_session(self) -> None:
        """The hub heard that this connection's session ended (on any process)."""
        self.session = None  # the hub forgot it already
        self.spawn(
            self.end(
                ErrorCode.SESSION_ENDED,
                "the page's session ended (signed out?); reload the page",
                CloseCode.SESSION_ENDED,
                # The response that ended it may set the browser's new session cookie
                # (a password change, a sign-in): the reload must carry that one. The
                # bytes are sent, but the browser stores the cookie on its own time.
                after=SESSION_END_GRACE,
            )
        )

    def _join_deadline(self) -> None:
        if self.view is not None:
            return
        if self.joining:
            self.join_late = True  # decided when the join is over
        else:
            self.spawn(self._join_timed_out())

    async def _join_timed_out(self) -> None:
        await self.end(
            ErrorCode.JOIN_TIMEOUT,
            f"no page joined within {rt_settings.JOIN_TIMEOUT} seconds",
            CloseCode.JOIN_TIMEOUT,
        )

    def _aged(self) -> None:
        if self.busy:
            self.close_when_idle = True  # never between an event and its reply
        else:
            self.spawn(self.end(None, "", CloseCode.MAX_AGE))

    # frames -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.live:
            return  # closing: a frame that arrives now is not handled (the client resends)
        ref = None
        self.busy = True
        try:
            # Every frame costs a token, a malformed one too.
            allowed = self.bucket.take()
            try:
                frame = self.read(text_data)
            except Refused:
                if not allowed:
                    raise Refused(ErrorCode.RATE_LIMITED, "too many frames; slow down") from None
                raise
            ref = frame.get(Key.REF)
            if not allowed:
                raise Refused(ErrorCode.RATE_LIMITED, "too many events; slow down")
            kind = frame.get(Key.TYPE)
            if kind == Frame.JOIN:
                await self.join(frame)
            elif kind == Frame.EVENT:
                await self.event(ref, frame)
            elif kind == Frame.RESYNC:
                self.resync(frame)
            else:
                raise Refused(ErrorCode.BAD_FRAME, f"unknown frame type {kind!r}")
        except Refused as refused:
            self.log_refusal(refused)
            if refused.close is not None:
                await self.end(refused.code, str(refused), refused.close)
            else:
                await self.send_error(refused.code, str(refused), ref=ref)
        except Exception as error:
            # A bug (ours or a misconfigured handler) costs one frame, not the connection.
            logger.exception("django-rt failed on a frame from %s", self.client)
            await self.send_error(
                ErrorCode.HANDLER_ERROR,
                f"internal error: {type(error).__name__}"
                + (f": {error}" if settings.DEBUG else ""),
                ref=ref,
                detail=traceback.format_exc() if settings.DEBUG else None,
            )
        finally:
            self.busy = False
            if self.close_when_idle:
                await self.end(None, "", CloseCode.MAX_AGE)
            elif self.join_late and self.view is None:
                await self._join_timed_out()

    def log_refusal(self, refused: Refused) -> None:
        # One socket may send thousands of bad frames a second: a few lines say so.
        suppressed = self.log_budget.take()
        if suppressed is not None:
            logger.warning(
                "django-rt refused a frame from %s: %s%s",
                self.client,
                refused,
                f" ({suppressed} more refused frames were not logged)" if suppressed else "",
            )

    @property
    def client(self) -> str:
        host = self.scope.get("client") or ("?", 0)
        return f"{host[0]}:{host[1]}"

    @classmethod
    def read(cls, text: str | None) -> dict[str, Any]:
        if text is None:
            raise Refused(ErrorCode.BAD_FRAME, "binary frames are not supported")
        if len(text.encode()) > rt_settings.MAX_FRAME_BYTES:
            raise Refused(
                ErrorCode.FRAME_TOO_LARGE,
                f"frame larger than {rt_settings.MAX_FRAME_BYTES} bytes",
            )
        return cls.parse(text)

    @staticmethod
    def parse(text: str) -> dict[str, Any]:
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            raise Refused(ErrorCode.BAD_FRAME, "frame is not valid JSON") from None
        if not isinstance(frame, dict):
            raise Refused(ErrorCode.BAD_FRAME, "frame must be a JSON object")
        ref = frame.get(Key.REF)
        if ref is not None and (not isinstance(ref, int) or isinstance(ref, bool)):
            frame[Key.REF] = None
            raise Refused(ErrorCode.BAD_FRAME, "ref must be an integer")
        return frame

    async def send_frame(self, frame: dict[str, Any]) -> None:
        """Queue a frame behind the ones before it."""
        if self.live:
            self._enqueue(encode(frame), patch=False)

    async def _send(self, frame: dict[str, Any]) -> None:
        """Send a frame now, whatever waits (the connection is ending)."""
        await self._write(encode(frame))

    def _message(self, text: str) -> dict[str, Any]:
        if audience.CSRF_PLACEHOLDER in text:  # the one way out: never sent as it is
            text = text.replace(audience.CSRF_PLACEHOLDER, self.csrf_token)
        return {"type": "websocket.send", "text": text}

    def _server_send(self) -> Callable[[dict[str, Any]], Coroutine[Any, Any, None]]:
        """The ASGI server's own ``send`` (see ``asgi.SERVER_SEND``), else Channels'.
        Channels' wrappers add nothing to a ``websocket.send``."""
        send = self.scope.get(SERVER_SEND)
        return send if send is not None else self.base_send  # type: ignore[return-value]

    async def _write(self, text: str) -> None:
        if self.gone:
            return
        try:
            await self._server_send()(self._message(text))
        except Exception:
            self._send_failed()

    def _send_failed(self) -> None:
        # The socket closed under us (the server says so its own way): that is a
        # disconnect, not an error of the frame.
        logger.debug("django-rt: sending to %s failed; it left", self.client, exc_info=True)
        self.gone = True
        self.release()

    def _write_now(self, text: str) -> None:
        """Send ``text`` without a task: a server's ``send`` finishes without waiting
        while the socket's buffer has room, and then this costs what a bare ASGI
        broadcast does. When it has to wait, a task finishes it, and the frames after it
        queue behind (:meth:`_flush_outbox`)."""
        self.write_message(self._message(text))

    def write_message(self, message: dict[str, Any]) -> None:
        """Hand ``message`` to the server's ``send``: done at once while the socket's
        buffer has room, finished by a task otherwise (frames after it queue behind)."""
        sending = (self.send_now or self._server_send())(message)
        try:
            waiting = sending.send(None)
        except StopIteration:
            return
        except Exception:
            self._send_failed()
            return
        self.flushing = self.spawn(self._flush_outbox((sending, waiting)))

    def _enqueue(self, text: str, patch: bool) -> None:
        if self.gone:
            return
        idle = self.flushing is None and not self.outbox and not self.outbox_overflow
        if idle and (not patch or self._access_known()):
            self._write_now(text)
            return
        if patch:
            if self.outbox_patches >= OUTBOX_LIMIT:
                # The socket does not keep up: what it missed comes as one resync.
                self.outbox = deque(item for item in self.outbox if not item[1])
                self.outbox_patches = 0
                self.outbox_overflow = True
            self.outbox_patches += 1
        if not isinstance(self.outbox, deque):
            self.outbox = deque()
        self.outbox.append((text, patch))
        if self.flushing is None:
            self.flushing = self.spawn(self._flush_outbox())

    async def send_error(
        self, code: ErrorCode, message: str, ref: Any = None, detail: str | None = None
    ) -> None:
        await self.send_frame(self.error_frame(code, message, ref, detail))

    @staticmethod
    def error_frame(
        code: ErrorCode, message: str, ref: Any = None, detail: str | None = None
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {
            Key.TYPE: Frame.ERROR,
            Key.REF: ref,
            Key.CODE: code.value,
            Key.MESSAGE: message,
        }
        if detail is not None:
            frame[Key.DETAIL] = detail
        return frame

    # join ---------------------------------------------------------------------------

    async def join(self, frame: dict[str, Any]) -> None:
        if self.view is not None or self.joining:
            raise Refused(ErrorCode.ALREADY_JOINED, "this connection has already joined a page")
        if frame.get(Key.VERSION) != VERSION:
            raise Refused(
                ErrorCode.VERSION_MISMATCH,
                f"client protocol {frame.get(Key.VERSION)!r}, server protocol {VERSION}",
                close=CloseCode.VERSION_MISMATCH,
            )
        raw = frame.get(Key.TOKEN)
        try:
            token = PageToken.load(raw)
        except ExpiredToken as error:
            raise Refused(ErrorCode.TOKEN_EXPIRED, str(error), CloseCode.TOKEN_EXPIRED) from None
        except InvalidToken as error:
            raise Refused(ErrorCode.INVALID_TOKEN, str(error), CloseCode.INVALID_TOKEN) from None
        assert isinstance(raw, str)
        self.joining = True
        try:
            await self._join(frame, raw, token)
        finally:
            self.joining = False
            if not self.live:  # closed while joining: whatever the join attached, it leaves
                self.release()

    async def _join(self, frame: dict[str, Any], raw: str, token: PageToken) -> None:
        async with join_slot():
            html, digest = await self._join_render(raw, token)
        if not self.live:
            return
        fresh = PageToken(token.view, token.path, token.user, token.page).sign()
        await self.send_frame({Key.TYPE: Frame.JOINED, Key.VERSION: VERSION, Key.TOKEN: fresh})
        if html is not None and (digest or stable_hash(html)) != frame.get(Key.HASH):
            # The data changed between the page's HTTP response and this join.
            await self.send_patch([morph_op(html)])
        rendered = self.hub is not None and self.hub.joining.get(self) is not None
        if self.page is not None and self.live and rendered:  # it rendered its own page
            assert self.hub is not None
            await self.hub.ready(self)

    async def _join_render(self, raw: str, token: PageToken) -> tuple[str | None, str | None]:
        """Run the page's view for the join and render its live page: the HTML (None
        when it has no live page), and its ``stable_hash()`` where it is known."""
        identities: list[Identity] = []

        def request() -> HttpRequest:
            identity = load_identity(self.scope)
            identities.append(identity)
            return request_from_scope(self.scope, token.path, identity)

        # A token signed before page ids existed counts as its own page.
        page_id = token.page or hashlib.sha256(raw.encode()).hexdigest()

        def admit(request: HttpRequest) -> None:
            # Once the project's middleware ran: its user (a custom authentication
            # middleware's too) is the one the page was loaded by.
            if user_key(request) != token.user:
                raise Refused(
                    ErrorCode.FORBIDDEN,
                    "the page was loaded by another user; reload the page",
                    CloseCode.FORBIDDEN,
                )
            problem = registry.admit(self, page_id, self.user_group(request))
            if problem is not None:
                raise Refused(
                    ErrorCode.TOO_MANY_CONNECTIONS, problem, CloseCode.TOO_MANY_CONNECTIONS
                )
            # What this connection's frames show where its page's renders show the CSRF
            # token's placeholder (the secret is its own browser's cookie).
            self.csrf_token = get_token(request)
            # From here on, what the view and its renders read of the request decides
            # which pages may share this one's live state.
            audience.watch(request)

        hub = self.hub
        run = await self.run_view(
            request, token, admit, after=_audiences_of if hub is not None else None
        )
        if not self.live:
            return None, None
        identity = identities[0]
        view, response, processed = run.view, run.response, run.request
        if response.status_code != 200:
            where = response.get("Location")
            raise Refused(
                ErrorCode.FORBIDDEN,
                f"the view answered {response.status_code}" + (f" (to {where})" if where else ""),
                CloseCode.FORBIDDEN,
            )
        found = run.after_result()  # what it raised ends the join here, unjoined
        self.view, self.request, self.token = view, processed, token
        self.activation = run.activation
        if hub is not None and found is not None:
            self.audiences = found
            hub.join_audiences(self, found)
        self.session_alive = identity.alive
        self.access_until = time.monotonic() + rt_settings.ACCESS_CHECK_SECONDS
        page = self.live_page(response, processed)
        html = None
        if page is not None:
            assert view is not None
            if run.activation is not None:
                page.activate = run.activation.active
            page.context_dependencies = view.rt_context_dependencies()
            assert self.hub is not None
            audience.note_session(processed)  # what the view read of it
            page.audience_parts = self.audience_parts(view, page)
            shared = self.hub.audience_page(page)
            if shared is not None:
                # Pages like this one are open already, and the view read nothing they
                # did not: no render, that page is this one's (its current HTML).
                self.page = shared
                self.hub.adopt(self, shared)
                return shared.html, shared.html_hash()
            self.hub.attach(self)

            def render() -> str:
                html = page.render()
                page.find_audience()
                return html

            try:
                html = await run_in_worker(render)
                self.page = page
            except Exception:
                logger.exception("django-rt: rendering %s for live updates failed", token.path)
        return html, None

    def audience_parts(
        self, view: RTView | FunctionView, page: LivePage
    ) -> tuple[Hashable, ...] | None:
        """What pages must have alike, besides what their requests read, to share
        ``page`` (None: never shared)."""
        if not getattr(view, "rt_shared", True) or self.token is None:
            return None
        template = base_template(page.template)
        origin = getattr(getattr(template, "origin", None), "name", None)
        activation = self.activation
        return (
            self.token.view,
            origin if isinstance(origin, str) and origin != UNKNOWN_SOURCE else id(template),
            None
            if activation is None
            else (activation.language, str(activation.timezone), repr(activation.urlconf)),
        )

    def own_page(self, before: str) -> tuple[LivePage | None, list[dict[str, Any]]]:
        """Run this connection's view again and render its own page (in a worker
        thread): the page, and the operations from ``before`` (what the browser shows)
        to it; no page and a reload when the view now refuses."""
        view, shared = self.view, self.page
        assert view is not None and shared is not None
        with activation_of(self.activation):
            try:
                with audience.recording(self.request):
                    context = view.rt_get_context_data(**view.kwargs)
            except (Http404, PermissionDenied, ObjectDoesNotExist, ViewRefused):
                return None, [{PatchKey.OP: PatchOp.RELOAD}]
            page = LivePage(shared.template, context, self.request)
            if self.activation is not None:
                page.activate = self.activation.active
            page.context_dependencies = view.rt_context_dependencies()
            html = page.render(evaluate_fresh)
            page.audience_parts = shared.audience_parts
            page.find_audience()
        return page, page_patch(before, html)

    async def own(self) -> LivePage | None:
        """This connection's own page, before it changes what only its browser shows (a
        resync, a rerun asked for by a handler): a page that it shares with others is
        left to them."""
        page, hub = self.page, self.hub
        if page is None or hub is None or not hub.shared(page):
            return page
        hub.attach(self)  # what changes meanwhile, its own page applies once rendered

        def render() -> tuple[LivePage | None, list[dict[str, Any]]]:
            with page.lock:
                before = page.html
            return self.own_page(before)

        own, ops = await run_in_worker(render)
        if not self.live:
            return None
        if own is not None:
            hub.move(self, own)
        self.push_patch(ops)
        if own is None:
            return None
        await hub.ready(self, share=False)
        return own

    def user_group(self, request: HttpRequest) -> str | None:
        """What ``MAX_CONNECTIONS_PER_USER`` counts this connection as: its user, or else
        its anonymous session, or else nothing."""
        user = user_key(request)
        if user:
            return f"user:{user}"
        return f"session:{self.session}" if self.session is not None else None

    @staticmethod
    def live_page(response: HttpResponseBase, request: HttpRequest) -> LivePage | None:
        """The page's live state, when its response is a Django template's."""
        if not isinstance(response, TemplateResponse) or response.is_rendered:
            return None
        template = response.resolve_template(response.template_name)
        try:
            base_template(template)
        except TypeError:
            return None
        return LivePage(template, response.resolve_context(response.context_data) or {}, request)

    async def run_view(
        self,
        request: HttpRequest | Callable[[], HttpRequest],
        token: PageToken,
        check: Callable[[HttpRequest], None] | None = None,
        after: Callable[[RTView | FunctionView], Any] | None = None,
    ) -> ViewRun:
        """Run the page's URL through the project's middleware and its view function, as
        a GET would (``middleware.py``); the response is not rendered. ``check`` sees the
        request as the middleware left it, before the view runs, and may refuse it.

        In one trip to a worker thread, with the view: ``request`` may be what makes
        the request (what it raises is raised as it is), and ``after`` what runs on
        the view once it answered (its result in ``ViewRun.after``; what it raised,
        raised by :meth:`ViewRun.after_result`)."""
        captured: list[RTView | FunctionView] = []
        call = _ViewCall()

        def before_view(processed: HttpRequest, match: ResolverMatch) -> None:
            if check is not None:
                check(processed)
            if live_view_path(match.func) != token.view:
                raise Refused(
                    ErrorCode.INVALID_TOKEN,
                    "the page's URL now serves another view; reload the page",
                    CloseCode.INVALID_TOKEN,
                )
            setattr(processed, VIEW_CAPTURE_ATTRIBUTE, captured)

        def run() -> Outcome | None:
            if isinstance(request, HttpRequest):
                call.request = request
            else:
                try:
                    call.request = request()
                except Exception as error:
                    call.error = error
                    return None
            outcome = run_page_request(call.request, before_view)
            if after is not None and captured:
                try:
                    call.after = after(captured[0])
                except Exception as error:
                    call.after_error = error
            return outcome

        try:
            outcome = await run_in_worker(run)
        except Refused:
            raise
        except Resolver404:
            raise Refused(
                ErrorCode.INVALID_TOKEN,
                "the page's URL no longer resolves",
                CloseCode.INVALID_TOKEN,
            ) from None
        except (PermissionDenied, Http404) as error:
            message = str(error) or type(error).__name__
            raise Refused(ErrorCode.FORBIDDEN, message, CloseCode.FORBIDDEN) from None
        except Exception:
            logger.exception("django-rt: the view of %s raised during join", token.path)
            raise Refused(
                ErrorCode.HANDLER_ERROR, "the page's view failed", CloseCode.FORBIDDEN
            ) from None
        if call.error is not None:
            raise call.error
        assert outcome is not None and call.request is not None
        processed = outcome.request or call.request
        processed.__dict__.pop(VIEW_CAPTURE_ATTRIBUTE, None)
        response = outcome.response
        assert response is not None
        if not outcome.reached and response.status_code != 200:
            where = response.get("Location")
            raise Refused(
                ErrorCode.FORBIDDEN,
                f"the project's middleware answered {response.status_code} before the view "
                "ran" + (f" (to {where})" if where else ""),
                CloseCode.FORBIDDEN,
            )
        if not captured and response.status_code == 200:
            raise Refused(
                ErrorCode.FORBIDDEN,
                "the view answered without running (a cached response?)",
                CloseCode.FORBIDDEN,
            )
        return ViewRun(
            captured[0] if captured else None,
            response,
            processed,
            outcome.activation,
            call.after,
            call.after_error,
        )

    # access -------------------------------------------------------------------------

    async def allowed(self) -> bool:
        """Whether the page may still be shown to its user and run its handlers; a
        verdict older than ``ACCESS_CHECK_SECONDS`` is checked again first. ``False``:
        the connection is ending."""
        if not self.live:
            return False
        if time.monotonic() < self.access_until:
            return True
        if self.access_check is None:
            self.access_check = self.spawn(self._check_access())
        try:
            return await asyncio.shield(self.access_check)
        except asyncio.CancelledError:
            if self.live:
                raise  # our caller was cancelled, not the check
            return False

    def _access_key(self) -> Hashable:
        token = self.token
        assert token is not None
        return (
            socket_session_key(self.scope),
            self.session_alive,
            token.user,
            token.view,
            token.path,
        )

    def _access_known(self) -> bool:
        """Whether the page may be shown now, without waiting: its verdict holds, or
        another connection with the same key (see :func:`shared_verdict`) holds a fresh
        one, which this one takes. A verdict about to run out is checked again meanwhile,
        so that the connections of a busy page seldom wait for a check: one check per
        key, started without a task of this connection, its verdict taken by the next
        patch (a refusal then takes effect when the current verdict runs out)."""
        now = time.monotonic()
        if now < self.access_until:
            margin = ACCESS_CHECK_AHEAD * rt_settings.ACCESS_CHECK_SECONDS
            if self.access_until - now < margin and self.token is not None:
                key = self._access_key()
                verdict = known_verdict(key)
                if isinstance(verdict, Verdict) and verdict.until > self.access_until:
                    self._grant(verdict)  # a check that ran ahead, this one's or another's
                elif self.renewal is None:
                    # One check per key (started now, or running already); its verdict
                    # is granted as soon as it comes, so that the socket's frames go
                    # the short way again (``writable_until``) without waiting for
                    # the next patch to ask.
                    self.renewal = start_verdict(key, self._verdict, margin)
                    self.renewal.add_done_callback(self._renewed)
            return True
        if self.token is None or not rt_settings.ACCESS_CHECK_SECONDS:
            return False
        verdict = known_verdict(self._access_key())
        if not isinstance(verdict, Verdict):
            return False
        self._grant(verdict)
        return True

    def _renewed(self, future: asyncio.Future[Verdict]) -> None:
        """A check started ahead of this connection's verdict ended: the fresh verdict
        is granted now, as the next patch would take it (:meth:`_access_known`); a
        refusal, an ended session or a failed check take effect when the current
        verdict runs out (the next patch or event then checks again, see
        :meth:`allowed`)."""
        if self.renewal is future:
            self.renewal = None
        if self.gone or self.token is None:
            return
        verdict = known_verdict(self._access_key())
        if isinstance(verdict, Verdict) and verdict.until > self.access_until:
            self._grant(verdict)

    def _grant(self, verdict: Verdict) -> None:
        # Handlers see the user as it is now (its permissions, too).
        if self.request is not None:
            self.request.user = verdict.user
            audience.watch_user(self.request)  # its page's renders may read it
            if verdict.session is not None:
                self.request.session = verdict.session
        self.access_until = verdict.until

    async def _check_access(self) -> bool:
        """Run the view again, as the join did, with the session and user of now; the
        connections of one session on one page share the verdict (see
        :func:`shared_verdict`)."""
        try:
            verdict = await shared_verdict(self._access_key(), self._verdict)
            if not self.live:
                return False
            if verdict.ended:
                await self.end(
                    ErrorCode.SESSION_ENDED,
                    "the page's session ended; reload the page",
                    CloseCode.SESSION_ENDED,
                )
                return False
            if verdict.refused is not None:
                await self.revoke(verdict.refused)
                return False
            self._grant(verdict)
            return True
        finally:
            self.access_check = None

    async def _verdict(self) -> Verdict:
        """Whether the page's view still answers this connection's session and user."""
        token = self.token
        assert token is not None
        until = time.monotonic() + rt_settings.ACCESS_CHECK_SECONDS
        identity = await run_in_worker(load_identity, self.scope)
        if self.session_alive and not identity.alive:
            return Verdict(until, ended=True)

        def same_user(request: HttpRequest) -> None:
            if user_key(request) != token.user:
                raise Refused(ErrorCode.FORBIDDEN, "the page's user signed out or changed")

        request = request_from_scope(self.scope, token.path, identity)
        try:
            run = await self.run_view(request, token, same_user)
        except Refused as refused:
            return Verdict(until, refused=str(refused))
        response, request = run.response, run.request
        if response.status_code != 200:
            where = response.get("Location")
            return Verdict(
                until,
                refused=f"the view now answers {response.status_code}"
                + (f" (to {where})" if where else ""),
            )
        return Verdict(until, user=request.user, session=identity.session)

    async def revoke(self, why: str) -> None:
        await self.end(
            ErrorCode.ACCESS_REVOKED,
            f"access to this page was revoked: {why}; reload the page",
            CloseCode.ACCESS_REVOKED,
        )

    # live updates -------------------------------------------------------------------

    async def send_patch(self, ops: list[dict[str, Any]]) -> None:
        self.push_patch(ops)

    def push_patch(self, ops: list[dict[str, Any]], text: str | None = None) -> None:
        """Queue a patch frame (``text``: encoded already, for every page of an
        audience); it leaves once the page's access holds (the hub never waits for an
        access check, nor for a socket)."""
        if self.gone or self.ending or not ops:
            return
        if text is None:
            text = encode_patch(ops)
        if time.monotonic() < self.writable_until:
            self._write_now(text)
            return
        self._enqueue(text, patch=True)

    async def _flush_outbox(self, started: tuple[Any, Any] | None = None) -> None:
        """Send what waits in the outbox, in order; ``started``: a send that
        :meth:`_write_now` began, and the future it waits for."""
        try:
            if started is not None:
                try:
                    await _finish(*started)
                except Exception:
                    self._send_failed()
                    return
            while self.outbox and self.live:
                text, patch = self.outbox[0]
                if patch and not self._access_known() and not await self.allowed():
                    return
                if self.outbox_overflow:
                    self.outbox_overflow = False
                    self.outbox = deque(item for item in self.outbox if not item[1])
                    self.outbox_patches = 0
                    self.want_resync(None)
                    continue
                self.outbox.popleft()
                if patch:
                    self.outbox_patches -= 1
                await self._write(text)
        finally:
            self.flushing = None

    def resync(self, frame: dict[str, Any]) -> None:
        """The browser lost track of regions (``ids``, or of the page): it gets what it
        misses and what changed, at most once per ``RESYNC_SECONDS``."""
        if self.page is None:
            raise Refused(ErrorCode.NOT_JOINED, "this page has no live regions")
        self.want_resync(_resync_ids(frame.get(Key.IDS)))

    def want_resync(self, missed: set[str] | None) -> None:
        if missed is None or self.resync_missed is None:
            self.resync_missed = None
        else:
            self.resync_missed |= missed
            if len(self.resync_missed) > RESYNC_IDS_LIMIT:
                self.resync_missed = None
        self.resync_wanted = True
        if self.resyncing is None:
            self.resyncing = self.spawn(self._resync_loop())

    async def _resync_loop(self) -> None:
        """One resync at a time; the ones asked for meanwhile become one, after the
        interval."""
        try:
            page = await self.own()
            while page is not None and self.resync_wanted and self.live:
                wait = self.resync_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                missed, self.resync_missed, self.resync_wanted = (
                    self.resync_missed,
                    frozenset(),
                    False,
                )
                self.resync_at = time.monotonic() + rt_settings.RESYNC_SECONDS
                if not await self.allowed():
                    return

                def render(missed: AbstractSet[str] | None = missed) -> list[dict[str, Any]]:
                    with page.lock:
                        before = page.html
                        after = page.render(evaluate_fresh)  # the querysets' caches hold the past
                    return resync_patch(before, after, missed)

                ops = await run_in_worker(render)
                if ops:
                    await self.send_patch(ops)
                if self.live and self.hub is not None:
                    self.hub.reindex(self)
        finally:
            self.resyncing = None

    def refresh(self) -> list[dict[str, Any]]:
        """Run the view's ``get_context_data`` again (in the hub's worker thread): it
        read a table that changed, or a row the page showed was deleted, and only the
        view knows what the page shows now."""
        view, page = self.view, self.page
        assert view is not None and page is not None
        with activation_of(self.activation):
            try:
                with audience.recording(self.request):
                    context = view.rt_get_context_data(**view.kwargs)
            except (Http404, PermissionDenied, ObjectDoesNotExist, ViewRefused):
                return [{PatchKey.OP: PatchOp.RELOAD}]  # the view now refuses: reload
            return page.rerun(context, view.rt_context_dependencies())

    # events -------------------------------------------------------------------------

    async def event(self, ref: int | None, frame: dict[str, Any]) -> None:
        if self.view is None or self.request is None:
            raise Refused(ErrorCode.NOT_JOINED, "join a page before sending events")
        name = frame.get(Key.HANDLER)
        handler = self.view.rt_handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            raise Refused(
                ErrorCode.UNKNOWN_HANDLER,
                f"{type(self.view).__name__} has no event handler {name!r}",
            )
        kwargs = self.arguments(handler, frame)
        if not await self.allowed():
            return  # the page's access was revoked: the connection is ending
        method = activated(getattr(self.view, handler.name), self.activation)
        try:
            if handler.is_async:
                result = await method(self.request, **kwargs)
            else:
                result = await run_in_worker(method, self.request, **kwargs)
            commands = as_commands(result, handler.name)
            await self.update_view()
        except PermissionDenied as error:
            raise Refused(ErrorCode.FORBIDDEN, str(error) or "permission denied") from None
        except Exception as error:
            logger.exception("django-rt: handler %s.%s() failed", type(self.view).__name__, name)
            await self.send_error(
                ErrorCode.HANDLER_ERROR,
                f"{name}() failed: {type(error).__name__}"
                + (f": {error}" if settings.DEBUG else ""),
                ref=ref,
                detail=traceback.format_exc() if settings.DEBUG else None,
            )
            return
        await self.send_frame({Key.TYPE: Frame.REPLY, Key.REF: ref, Key.COMMANDS: commands})

    async def update_view(self) -> None:
        """Re-render what shows the view's own state, after a handler ran; the whole
        context when the handler asked for it (``RTView.rt_rerun()``)."""
        page = self.page
        if isinstance(self.view, RTView) and self.view.rt_rerun_wanted:
            self.view.rt_rerun_wanted = False
            page = await self.own()
            if page is not None:
                await self.rerun_view(page)
            return
        if page is None or VIEW not in page.index:
            return  # nothing on the page shows the view's state: no thread hop

        def update() -> list[dict[str, Any]]:
            with page.lock:
                return page.update_view()

        ops = await run_in_worker(update)
        if ops:
            await self.send_patch(ops)
            if self.live and self.hub is not None:
                self.hub.reindex(self)

    async def rerun_view(self, page: LivePage) -> None:
        """Run the view's ``get_context_data()`` again and send what differs."""

        def rerun() -> list[dict[str, Any]]:
            with page.lock:
                return self.refresh()

        ops = await run_in_worker(rerun)
        if ops:
            await self.send_patch(ops)
        if self.live and self.hub is not None:
            self.hub.reindex(self)  # its queries may read other rows and tables now

    @staticmethod
    def arguments(handler: Handler, frame: dict[str, Any]) -> dict[str, Any]:
        """The handler's keyword arguments, from the gathered values it declared."""
        gathered = frame.get(Key.GATHERED)
        if gathered is None:
            gathered = {}
        if not isinstance(gathered, dict):
            raise Refused(ErrorCode.BAD_FRAME, "gathered values must be an object")
        kwargs: dict[str, Any] = {}
        limit = rt_settings.MAX_VALUE_BYTES
        for name, selector in handler.gathered.items():
            value = gathered.get(name)
            size = len(value.encode()) if isinstance(value, str) else len(json.dumps(value))
            if size > limit:
                raise Refused(
                    ErrorCode.VALUE_TOO_LARGE,
                    f"the value of {selector!r} for {name!r} is larger than {limit} bytes",
                )
            try:
                kwargs[name] = handler.coerce(name, value)
            except InvalidValue as error:
                problem = f"{selector!r} matched no element" if value is None else str(error)
                raise Refused(
                    ErrorCode.INVALID_VALUE, f"{handler.name}(): {name} ({selector}): {problem}"
                ) from None
        if handler.wants_target:
            kwargs["target"] = _target(frame.get(Key.TARGET))
        return kwargs
