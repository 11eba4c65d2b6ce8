"""The WebSocket consumer: one per open page.

A page's socket ``join``\\ s with its signed token; the consumer rebuilds the page's
request from the socket's scope, runs the page's own view function (so decorators,
``LoginRequiredMixin``, ``PermissionRequiredMixin`` and the view's own checks apply
again), and keeps the view instance for the life of the connection. ``event`` frames
then call the handlers that the view declared with ``RTView.event``, and nothing else.

Frames are handled one at a time, in order. Every refused input gets an ``error`` frame
that says why; only a refused ``join`` closes the connection.
"""

from __future__ import annotations

import io
import json
import logging
import time
import traceback
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from asgiref.sync import iscoroutinefunction
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import Resolver404, resolve

from .coercion import InvalidValue
from .conf import rt_settings
from .events import EventTarget, Handler
from .hub import Hub
from .live.page import LivePage, morph_op
from .live.proxies import VIEW
from .live.recorder import evaluate_fresh
from .live.render import base_template, stable_hash
from .protocol import VERSION, CloseCode, ErrorCode, Frame, Key, PatchKey, PatchOp, TargetKey
from .responses import as_commands
from .tokens import ExpiredToken, InvalidToken, PageToken, user_key, view_path
from .views import VIEW_CAPTURE_ATTRIBUTE, RTView

logger = logging.getLogger("django_rt")


class Refused(Exception):
    """An input the consumer will not act on; becomes an error frame."""

    def __init__(self, code: ErrorCode, message: str, close: CloseCode | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.close = close


class TokenBucket:
    """Allows ``rate`` events per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def request_from_scope(scope: Mapping[str, Any], full_path: str) -> HttpRequest:
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
    if "session" in scope:
        request.session = scope["session"]
    if "user" in scope:
        request.user = scope["user"]
    return request


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


class RTConsumer(AsyncWebsocketConsumer):
    """Serves the WebSocket of one page rendered by an :class:`~django_rt.RTView`."""

    view: RTView | None = None
    request: HttpRequest | None = None
    page: LivePage | None = None
    hub: Hub | None = None

    async def connect(self) -> None:
        self.bucket = TokenBucket(rt_settings.EVENTS_PER_SECOND, rt_settings.EVENTS_BURST)
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        ref = None
        try:
            if text_data is None:
                raise Refused(ErrorCode.BAD_FRAME, "binary frames are not supported")
            if len(text_data.encode()) > rt_settings.MAX_FRAME_BYTES:
                raise Refused(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"frame larger than {rt_settings.MAX_FRAME_BYTES} bytes",
                )
            frame = self.parse(text_data)
            ref = frame.get(Key.REF)
            if not self.bucket.take():
                raise Refused(ErrorCode.RATE_LIMITED, "too many events; slow down")
            kind = frame.get(Key.TYPE)
            if kind == Frame.JOIN:
                await self.join(frame)
            elif kind == Frame.EVENT:
                await self.event(ref, frame)
            elif kind == Frame.RESYNC:
                await self.resync()
            else:
                raise Refused(ErrorCode.BAD_FRAME, f"unknown frame type {kind!r}")
        except Refused as refused:
            logger.warning("django-rt refused a frame from %s: %s", self.client, refused)
            await self.send_error(refused.code, str(refused), ref=ref)
            if refused.close is not None:
                await self.close(code=int(refused.close))
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

    @property
    def client(self) -> str:
        host = self.scope.get("client") or ("?", 0)
        return f"{host[0]}:{host[1]}"

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
        await self.send(text_data=json.dumps(frame, cls=DjangoJSONEncoder, separators=(",", ":")))

    async def send_error(
        self, code: ErrorCode, message: str, ref: Any = None, detail: str | None = None
    ) -> None:
        frame: dict[str, Any] = {
            Key.TYPE: Frame.ERROR,
            Key.REF: ref,
            Key.CODE: code.value,
            Key.MESSAGE: message,
        }
        if detail is not None:
            frame[Key.DETAIL] = detail
        await self.send_frame(frame)

    # join ---------------------------------------------------------------------------

    async def join(self, frame: dict[str, Any]) -> None:
        if self.view is not None:
            raise Refused(ErrorCode.ALREADY_JOINED, "this connection has already joined a page")
        if frame.get(Key.VERSION) != VERSION:
            raise Refused(
                ErrorCode.VERSION_MISMATCH,
                f"client protocol {frame.get(Key.VERSION)!r}, server protocol {VERSION}",
                close=CloseCode.VERSION_MISMATCH,
            )
        try:
            token = PageToken.load(frame.get(Key.TOKEN))
        except ExpiredToken as error:
            raise Refused(ErrorCode.TOKEN_EXPIRED, str(error), CloseCode.TOKEN_EXPIRED) from None
        except InvalidToken as error:
            raise Refused(ErrorCode.INVALID_TOKEN, str(error), CloseCode.INVALID_TOKEN) from None
        request = request_from_scope(self.scope, token.path)
        if await database_sync_to_async(user_key)(request) != token.user:
            raise Refused(
                ErrorCode.FORBIDDEN,
                "the page was loaded by another user; reload the page",
                CloseCode.FORBIDDEN,
            )
        view, response = await self.run_view(request, token)
        if response.status_code != 200:
            where = response.get("Location")
            raise Refused(
                ErrorCode.FORBIDDEN,
                f"the view answered {response.status_code}" + (f" (to {where})" if where else ""),
                CloseCode.FORBIDDEN,
            )
        self.view, self.request = view, request
        page = self.live_page(response, request)
        html = None
        if page is not None:
            page.context_dependencies = view.rt_context_dependencies()
            self.hub = Hub.current()
            self.hub.attach(self)
            try:
                html = await database_sync_to_async(page.render)()
                self.page = page
            except Exception:
                logger.exception("django-rt: rendering %s for live updates failed", token.path)
        fresh = PageToken(token.view, token.path, token.user).sign()
        await self.send_frame({Key.TYPE: Frame.JOINED, Key.VERSION: VERSION, Key.TOKEN: fresh})
        if html is not None and stable_hash(html) != frame.get(Key.HASH):
            # The data changed between the page's HTTP response and this join.
            await self.send_patch([morph_op(html)])
        if self.hub is not None:
            await self.hub.ready(self)

    async def disconnect(self, code: int) -> None:
        if self.hub is not None:
            self.hub.detach(self)
            self.hub = None

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

    async def send_patch(self, ops: list[dict[str, Any]]) -> None:
        await self.send_frame({Key.TYPE: Frame.PATCH, Key.OPS: ops})

    async def resync(self) -> None:
        """The browser lost track of a region: send the whole page again."""
        if self.page is None:
            raise Refused(ErrorCode.NOT_JOINED, "this page has no live regions")
        page = self.page

        def render() -> str:
            with page.lock:
                return page.render(evaluate_fresh)  # the querysets' caches hold the past

        html = await database_sync_to_async(render)()
        await self.send_patch([morph_op(html)])
        if self.hub is not None:
            self.hub.reindex(self)

    def refresh(self) -> list[dict[str, Any]]:
        """Run the view's ``get_context_data`` again (in the hub's worker thread): it
        read a table that changed, or a row the page showed was deleted, and only the
        view knows what the page shows now."""
        view, page = self.view, self.page
        assert view is not None and page is not None
        try:
            context = view.rt_get_context_data(**view.kwargs)
        except (Http404, PermissionDenied, ObjectDoesNotExist):
            return [{PatchKey.OP: PatchOp.RELOAD}]  # the view now refuses: reload
        return page.rerun(context, view.rt_context_dependencies())

    async def run_view(
        self, request: HttpRequest, token: PageToken
    ) -> tuple[RTView, HttpResponseBase]:
        """Run the page's URL through its view function, as a GET would."""
        try:
            match = resolve(request.path_info)
        except Resolver404:
            raise Refused(
                ErrorCode.INVALID_TOKEN,
                "the page's URL no longer resolves",
                CloseCode.INVALID_TOKEN,
            ) from None
        view_class = getattr(match.func, "view_class", None)
        if view_class is None or view_path(view_class) != token.view:
            raise Refused(
                ErrorCode.INVALID_TOKEN,
                "the page's URL now serves another view; reload the page",
                CloseCode.INVALID_TOKEN,
            )
        captured: list[RTView] = []
        setattr(request, VIEW_CAPTURE_ATTRIBUTE, captured)
        try:
            if iscoroutinefunction(match.func):
                response = await match.func(request, *match.args, **match.kwargs)
            else:
                response = await database_sync_to_async(match.func)(
                    request, *match.args, **match.kwargs
                )
        except (PermissionDenied, Http404) as error:
            message = str(error) or type(error).__name__
            raise Refused(ErrorCode.FORBIDDEN, message, CloseCode.FORBIDDEN) from None
        except Exception:
            logger.exception("django-rt: the view of %s raised during join", token.path)
            raise Refused(
                ErrorCode.HANDLER_ERROR, "the page's view failed", CloseCode.FORBIDDEN
            ) from None
        finally:
            delattr(request, VIEW_CAPTURE_ATTRIBUTE)
        if not captured and response.status_code == 200:
            raise Refused(
                ErrorCode.FORBIDDEN,
                "the view answered without running (a cached response?)",
                CloseCode.FORBIDDEN,
            )
        return (captured[0] if captured else None), response  # type: ignore[return-value]

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
        method = getattr(self.view, handler.name)
        try:
            if handler.is_async:
                result = await method(self.request, **kwargs)
            else:
                result = await database_sync_to_async(method)(self.request, **kwargs)
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
        """Re-render what shows the view's own state, after a handler ran."""
        page = self.page
        if page is None or VIEW not in page.index:
            return  # nothing on the page shows the view's state: no thread hop

        def update() -> list[dict[str, Any]]:
            with page.lock:
                return page.update_view()

        ops = await database_sync_to_async(update)()
        if ops:
            await self.send_patch(ops)
            if self.hub is not None:
                self.hub.reindex(self)

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
