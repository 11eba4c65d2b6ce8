"""The test client: pages opened over HTTP and a real socket, events fired as ``rt.js``
fires them, and the sync facade."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async

from .. import workers
from ..protocol import (
    VERSION,
    Action,
    BindingKey,
    CommandKey,
    ConfigKey,
    DispatchKey,
    Frame,
    Key,
    PatchKey,
    PatchOp,
)
from .dom import Document, Element, target_of
from .loop import TIMEOUT, AppLoop, project_application

R = TypeVar("R")

#: Turns of the event loop in a row that must find everything idle for a page to settle.
IDLE_TURNS = 3


class RTError(AssertionError):
    """The server refused a join or an event, or a handler failed: ``code`` is the
    protocol's error code (``invalid_value``, ``forbidden``, ``handler_error``, ...)."""

    def __init__(self, frame: dict[str, Any]) -> None:
        self.frame = frame
        self.code: str = frame.get(Key.CODE, "")
        self.message: str = frame.get(Key.MESSAGE, "")
        super().__init__(f"{self.code}: {self.message}")


class RTClient:
    """Opens live pages without a browser (async; :class:`SyncRTClient` for sync tests).

    ``user`` logs a fresh Django test ``Client`` in (``force_login``); ``client`` is a
    test client of your own (logged in, with cookies). Both are the default of
    :meth:`open`, which takes them too (pages of several users in one test).
    ``application`` is the ASGI application (default: the project's).
    """

    def __init__(
        self,
        *,
        user: Any = None,
        client: Any = None,
        application: Any = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.user = user
        self.client = client
        self.application = application
        self.timeout = timeout
        self.pages: list[RTPage] = []
        self._app: AppLoop | None = None

    async def __aenter__(self) -> RTClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def app(self) -> AppLoop:
        if self._app is None:
            self._app = AppLoop()
        return self._app

    async def call(self, coroutine: Coroutine[Any, Any, R]) -> R:
        """Run ``coroutine`` on the application's loop (the sockets', the hub's)."""
        return await self.app.call(coroutine)

    @property
    def hub(self) -> Any:
        """The hub of the application's loop (``None`` before the first page)."""
        from ..hub import Hub

        return Hub._hubs.get(self.app.loop) if self._app is not None else None

    async def open(self, url: str, *, user: Any = None, client: Any = None) -> RTPage:
        """Load ``url`` and join its socket; the page as it stands once the join and
        whatever it brought (a morph, bound values sent again) are applied."""
        from django.test import Client

        client = client or (self.client if user is None else None)
        if client is None:
            client = Client()
            user = user if user is not None else self.user
            if user is not None:
                await sync_to_async(client.force_login, thread_sensitive=True)(user)
        if self.application is None:
            self.application = project_application()
        page = RTPage(self, client, url)
        await page.load()
        self.pages.append(page)
        return page

    async def settle(self) -> None:
        """:meth:`RTPage.settle` for every open page."""
        for page in list(self.pages):
            await page.settle()

    async def close(self) -> None:
        """Close every page's socket and stop the application's loop."""
        pages, self.pages = self.pages, []
        if self._app is not None:
            for page in pages:
                await page.close()
            app, self._app = self._app, None
            await sync_to_async(app.stop, thread_sensitive=False)()


class RTPage:
    """One open page: its model (:attr:`document`), its socket, what it received.

    Read it with :meth:`text`, :meth:`html`, :meth:`select`, :meth:`value`; act on it
    with :meth:`click`, :meth:`fill`, :meth:`submit` and :meth:`fire`, which wait for
    the handler's reply (and the patches before it) and return its commands.
    Debounce and throttle are not modelled: every event is sent.
    """

    def __init__(self, rt: RTClient, client: Any, url: str) -> None:
        self.rt = rt
        self.client = client
        self.url = url
        self.document = Document("")
        self.frames: list[dict[str, Any]] = []
        #: Patch operations received, by kind (``region``, ``list``, ``morph`` ...).
        self.ops: Counter[str] = Counter()
        #: Commands of every reply, in order.
        self.commands: list[dict[str, Any]] = []
        #: Error frames that answered no event of the test's.
        self.errors: list[dict[str, Any]] = []
        #: Ids of the regions patches did not find (the page asked for a resync).
        self.misses: list[str | None] = []
        #: Where a handler's ``RTResponse.redirect()`` sent the browser.
        self.redirected_to: str | None = None
        #: ``RTResponse.dispatch()`` events: (name, detail, selector).
        self.dispatched: list[tuple[Any, Any, str | None]] = []
        #: Set by a ``stale`` operation (the server could not update the page), cleared
        #: by the next operation.
        self.stale: str | None = None
        #: The close code, once the server closed the socket.
        self.closed: int | None = None
        self.reloads = 0
        self.status_code: int | None = None
        self._socket: Any = None
        self._ref = 0
        self._patched = False
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"<RTPage {self.url}>"

    # reading ----------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        return self.document.config

    @property
    def title(self) -> str:
        return self.document.title

    def html(self, selector: str | None = None, *, markers: bool = False) -> str:
        """The inner HTML of the body (or of the first element ``selector`` matches)."""
        if selector is None:
            return self.document.html(markers)
        return self.element(selector).inner_html(markers)

    def text(self, selector: str | None = None) -> str:
        """The ``textContent`` of the body (or of the first match of ``selector``)."""
        return (self.document.body if selector is None else self.element(selector)).text

    def texts(self, selector: str) -> list[str]:
        """The ``textContent`` of every match of ``selector``."""
        return [el.text for el in self.select(selector)]

    def select(self, css: str) -> list[Element]:
        """Every element of the page that ``css`` matches, in document order."""
        return self.document.select(css)

    def element(self, css: str) -> Element:
        """The first element ``css`` matches (``LookupError`` if none)."""
        found = self.select(css)
        if not found:
            raise LookupError(f"no element of {self.url} matches {css!r}")
        return found[0]

    def value(self, selector: str) -> Any:
        """What ``rt.js`` would gather from the first match of ``selector``."""
        return self.document.field_value(self.element(selector))

    @property
    def shown(self) -> tuple[str, str, str]:
        """The title, the head's other elements and the body, without markers."""
        return self.document.shown

    async def fresh(self) -> tuple[str, str, str]:
        """What a reload of the page by the same client shows now (:attr:`shown`)."""
        response = await self._get()
        return Document(response.content.decode()).shown

    # acting -----------------------------------------------------------------------

    async def fire(
        self,
        event: str,
        selector: str,
        *,
        gathered: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Fire DOM ``event`` (``"click"``, ``"keydown.enter"`` ...) on the first
        element ``selector`` matches, as ``rt.js`` delegates it: every binding of that
        event whose selector matches the element or an ancestor sends its frame.
        ``gathered`` overrides gathered values by selector. Returns the replies'
        commands (applied to the page); raises :class:`RTError` for an error reply and
        ``LookupError`` when no binding listens."""
        name, _, filter_key = event.partition(".")
        key = key or filter_key or None
        el = self.element(selector)
        frames = self._frames_for(name, el, key, gathered or {})
        if not frames:
            raise LookupError(f"no binding of {self.url} listens to {event!r} on {selector!r}")
        commands: list[dict[str, Any]] = []
        for frame in frames:
            commands += await self.rt.call(self._send_event(frame))
        return commands

    async def click(
        self, selector: str, *, gathered: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Click the first match of ``selector`` (it takes the focus)."""
        self.document.focused = self.element(selector)
        return await self.fire("click", selector, gathered=gathered)

    async def submit(
        self, selector: str = "form", *, gathered: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Submit the form ``selector`` matches (a ``submit`` event on it)."""
        return await self.fire("submit", selector, gathered=gathered)

    async def fill(self, selector: str, value: Any) -> list[dict[str, Any]]:
        """Type ``value`` into a field (a bool ticks a checkbox or radio, a value or a
        list chooses options), which takes the focus, then fire ``input`` and ``change``
        (the bindings that listen; none is fine)."""
        el = self.element(selector)
        self.document.set_value(el, value)
        self.document.focused = el
        commands: list[dict[str, Any]] = []
        for event in ("input", "change"):
            frames = self._frames_for(event, el, None, {})
            for frame in frames:
                commands += await self.rt.call(self._send_event(frame))
        return commands

    async def blur(self, selector: str | None = None) -> list[dict[str, Any]]:
        """The focused field (or ``selector``'s) loses the focus: ``focusout`` and
        ``blur`` fire."""
        el = self.element(selector) if selector else self.document.focused
        if el is None:
            return []
        self.document.focused = None
        commands: list[dict[str, Any]] = []
        for event in ("focusout", "blur"):
            for frame in self._frames_for(event, el, None, {}):
                commands += await self.rt.call(self._send_event(frame))
        return commands

    async def settle(self) -> None:
        """Apply everything the server sends until it has nothing more to do: the hub
        processed every change published so far, every connection is idle."""
        await self.rt.call(self._settle())

    async def wait_for(
        self, condition: Callable[[RTPage], bool], timeout: float | None = None
    ) -> None:
        """Settle until ``condition(page)`` holds (for a change feed that delivers
        from another thread or process)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.rt.timeout)
        while True:
            await self.settle()
            if condition(self):
                return
            if loop.time() > deadline:
                raise AssertionError(f"{self.url}: the condition did not hold in time")
            await asyncio.sleep(0.01)

    async def reload(self) -> None:
        """Load the page again and join again, as a browser reload does."""
        await self.close()
        self.reloads += 1
        await self.load()

    async def reconnect(self) -> None:
        """Lose the socket and join again with the page as it stands, as ``rt.js``
        does after a dropped connection: with the fresh token of the last join, a page
        that was patched asks for a morph, and bound values are sent again."""
        await self.close()
        await self.rt.call(self._join())

    async def close(self) -> None:
        """Close the page's socket (the page stays readable)."""
        if self._socket is not None:
            socket, self._socket = self._socket, None
            await self.rt.call(_disconnect(socket))

    # the socket -------------------------------------------------------------------

    async def _get(self) -> Any:
        return await sync_to_async(self.client.get, thread_sensitive=True)(self.url)

    async def load(self) -> None:
        response = await self._get()
        self.status_code = response.status_code
        if response.status_code != 200:
            raise AssertionError(f"GET {self.url} answered {response.status_code}")
        self._loaded(response)
        if not self.config:
            raise AssertionError(f"{self.url} is not a live page (no django-rt configuration)")
        await self.rt.call(self._join())

    def _loaded(self, response: Any) -> None:
        self.document = Document(response.content.decode())
        self.closed = None
        self._patched = False
        self._token = self.config.get(ConfigKey.TOKEN)

    def _headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        cookies = getattr(self.client, "cookies", None)
        if cookies:
            cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
            headers.append((b"cookie", cookie.encode()))
        return headers

    async def _join(self) -> None:
        from channels.testing import WebsocketCommunicator

        socket = WebsocketCommunicator(
            self.rt.application, self.config[ConfigKey.URL], headers=self._headers()
        )
        await socket.send_input({"type": "websocket.connect"})
        accepted = await self._output(socket)
        if accepted["type"] != "websocket.accept":
            raise AssertionError(f"{self.url}: the socket was refused ({accepted})")
        self._socket = socket
        await self._send(
            {
                Key.TYPE: Frame.JOIN,
                Key.VERSION: VERSION,
                Key.TOKEN: self._token,
                # Once patched, the page matches no render hash: a rejoin asks for a morph.
                Key.HASH: None if self._patched else self.config.get(ConfigKey.HASH),
            }
        )
        while True:
            frame = await self._receive()
            if frame is None:
                raise AssertionError(f"{self.url}: the socket closed during the join")
            if frame[Key.TYPE] == Frame.JOINED:
                self._token = frame.get(Key.TOKEN) or self._token
                break
            if frame[Key.TYPE] == Frame.ERROR:
                raise RTError(frame)
            await self._apply(frame)
        for binding in self.config.get(ConfigKey.EVENTS, ()):
            if binding.get(BindingKey.SYNC):
                found = self.document.select(binding[BindingKey.SELECTOR])
                if found:
                    await self._send_event(self._frame(binding, found[0], {}))
        await self._settle()

    async def _output(self, socket: Any) -> dict[str, Any]:
        async with asyncio.timeout(self.rt.timeout):
            message: dict[str, Any] = await socket.output_queue.get()
            return message

    async def _send(self, frame: dict[str, Any]) -> None:
        if self._socket is None:
            raise AssertionError(f"{self.url}: the page is not connected")
        await self._socket.send_input({"type": "websocket.receive", "text": json.dumps(frame)})

    async def _receive(self) -> dict[str, Any] | None:
        """The next frame (waiting for it); ``None`` once the socket closed."""
        try:
            message = await self._output(self._socket)
        except TimeoutError:
            raise AssertionError(f"{self.url}: no answer from the server in time") from None
        return self._frame_of(message)

    def _frame_of(self, message: dict[str, Any]) -> dict[str, Any] | None:
        if message["type"] == "websocket.close":
            self.closed = message.get("code", 1000)
            self._socket = None
            return None
        frame: dict[str, Any] = json.loads(message["text"])
        self.frames.append(frame)
        return frame

    def _frames_for(
        self, event: str, el: Element, key: str | None, gathered: dict[str, Any]
    ) -> list[dict[str, Any]]:
        frames = []
        used: set[str] = set()
        for binding in self.config.get(ConfigKey.EVENTS, ()):
            if binding[BindingKey.EVENT] != event:
                continue
            wanted = binding.get(BindingKey.KEY)
            if wanted and (key is None or not _key_matches(key, wanted)):
                continue
            match = el.closest(binding[BindingKey.SELECTOR])
            if match is None:
                continue
            frames.append(self._frame(binding, match, gathered))
            used |= set(binding.get(BindingKey.GATHER, {}).values())
        unknown = set(gathered) - used
        if frames and unknown:
            raise ValueError(
                f"gathered= names {sorted(unknown)}, which no binding of {event!r} gathers "
                f"(they gather {sorted(used)})"
            )
        return frames

    def _frame(
        self, binding: dict[str, Any], el: Element, gathered: dict[str, Any]
    ) -> dict[str, Any]:
        values = {}
        for name, selector in binding.get(BindingKey.GATHER, {}).items():
            if selector in gathered:
                values[name] = gathered[selector]
                continue
            try:
                found = self.document.select(selector)
            except ValueError:
                found = []
            values[name] = self.document.field_value(found[0]) if found else None
        self._ref += 1
        return {
            Key.TYPE: Frame.EVENT,
            Key.REF: self._ref,
            Key.HANDLER: binding[BindingKey.HANDLER],
            Key.GATHERED: values,
            Key.TARGET: target_of(el),
        }

    async def _send_event(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        await self._send(frame)
        ref = frame[Key.REF]
        while True:
            reply = await self._receive()
            if reply is None:
                raise AssertionError(f"{self.url}: the socket closed ({self.closed})")
            if reply.get(Key.REF) == ref and reply[Key.TYPE] == Frame.ERROR:
                raise RTError(reply)
            if reply.get(Key.REF) == ref and reply[Key.TYPE] == Frame.REPLY:
                commands: list[dict[str, Any]] = reply.get(Key.COMMANDS) or []
                for command in commands:
                    self._command(command)
                return commands
            await self._apply(reply)

    def _command(self, command: dict[str, Any]) -> None:
        self.commands.append(command)
        action = command[CommandKey.ACTION]
        if action == Action.REDIRECT:
            self.redirected_to = command[CommandKey.CONTENT]
        elif action == Action.DISPATCH:
            content = command[CommandKey.CONTENT] or {}
            self.dispatched.append(
                (
                    content.get(DispatchKey.NAME),
                    content.get(DispatchKey.DETAIL),
                    command[CommandKey.SELECTOR],
                )
            )
        else:
            self.document.apply_command(command)

    async def _apply(self, frame: dict[str, Any]) -> None:
        kind = frame[Key.TYPE]
        if kind == Frame.ERROR:
            self.errors.append(frame)
        elif kind == Frame.REPLY:  # to no event of the test's: a broadcast
            for command in frame.get(Key.COMMANDS) or []:
                self._command(command)
        elif kind == Frame.PATCH:
            self._patched = True
            missed: list[str | None] = []
            for op in frame.get(Key.OPS) or []:
                if not await self._apply_op(op, missed):
                    return  # reloaded: the rest of the frame belonged to the old page
            if missed:
                self.misses += missed
                resync: dict[str, Any] = {Key.TYPE: Frame.RESYNC}
                if None not in missed:
                    resync[Key.IDS] = sorted({m for m in missed if m is not None})
                await self._send(resync)

    async def _apply_op(self, op: dict[str, Any], missed: list[str | None]) -> bool:
        kind = op.get(PatchKey.OP)
        document = self.document
        if kind != PatchOp.STALE:
            self.stale = None
        self.ops[str(kind)] += 1
        found = True
        if kind == PatchOp.REGION:
            found = document.replace_region(str(op[PatchKey.ID]), op[PatchKey.HTML])
        elif kind == PatchOp.LIST:
            keys = [str(k) for k in op.get(PatchKey.KEYS) or []]
            found = document.apply_list(str(op[PatchKey.ID]), keys, op.get(PatchKey.ITEMS) or {})
        elif kind == PatchOp.ATTRS:
            found = document.set_attributes(str(op[PatchKey.ID]), op.get(PatchKey.SET) or [])
        elif kind == PatchOp.MORPH:
            document.morph(op[PatchKey.HTML], op.get(PatchKey.TITLE))
        elif kind == PatchOp.HEAD:
            document.patch_head(op.get(PatchKey.TITLE), op.get(PatchKey.HTML))
        elif kind == PatchOp.STALE:
            self.stale = op.get(PatchKey.MESSAGE)
        elif kind == PatchOp.RELOAD:
            if self._socket is not None:
                await _disconnect(self._socket)
                self._socket = None
            self.reloads += 1
            await self._reload_here()
            return False
        else:
            found = False
        if not found:
            missed.append(str(op[PatchKey.ID]) if op.get(PatchKey.ID) is not None else None)
        return True

    async def _reload_here(self) -> None:
        """On the application's loop: GET the page again (in the caller's thread) and
        join again."""
        response = await workers.run_in_worker(self.client.get, self.url)
        self.status_code = response.status_code
        if response.status_code != 200:
            self.redirected_to = response.get("Location")
            return
        self._loaded(response)
        await self._join()

    async def _settle(self) -> None:
        """On the application's loop: wait until the hub and every connection are
        idle, applying what arrives, until nothing more comes."""
        from ..hub import Hub

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.rt.timeout
        hub = Hub.current()
        quiet = 0
        while True:
            await asyncio.sleep(0)
            busy: list[asyncio.Future[Any]] = []
            if hub.flushing is not None:
                busy.append(hub.flushing)
            consumers = [*hub.clients, *hub.joining]
            for consumer in consumers:
                busy += [t for t in getattr(consumer, "tasks", ()) if not t.done()]
            working = (
                hub.pending
                or self.rt.app.gateway.queue
                or any(getattr(c, "busy", False) for c in consumers)
            )
            sockets = [p._socket for p in self.rt.pages + [self] if p._socket is not None]
            waiting = any(not s.input_queue.empty() for s in sockets)
            arrived = False
            for page in {id(p): p for p in [*self.rt.pages, self]}.values():
                while page._socket is not None and not page._socket.output_queue.empty():
                    frame = page._frame_of(page._socket.output_queue.get_nowait())
                    if frame is not None:
                        await page._apply(frame)
                    arrived = True
            if not (busy or working or waiting or arrived):
                # A frame just taken off a socket's queue is not being handled yet: idle
                # is what a few turns of the loop in a row agree on.
                quiet += 1
                if quiet >= IDLE_TURNS:
                    return
                continue
            quiet = 0
            if loop.time() > deadline:
                raise AssertionError(f"{self.url}: the page did not settle in time")
            if busy:
                await asyncio.wait(busy, timeout=0.05)
            else:
                await asyncio.sleep(0.001)


async def _disconnect(socket: Any) -> None:
    try:
        await socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await socket.wait(TIMEOUT)
    except Exception:  # already closed by the server
        pass


_KEY_ALIASES = {
    "esc": "escape",
    "space": " ",
    "up": "arrowup",
    "down": "arrowdown",
    "left": "arrowleft",
    "right": "arrowright",
}


def _key_matches(key: str, wanted: str) -> bool:
    wanted = wanted.lower()
    return key.lower() == _KEY_ALIASES.get(wanted, wanted)


# the sync facade ---------------------------------------------------------------------


class SyncRTClient:
    """:class:`RTClient` for synchronous tests: every call runs with ``async_to_sync``,
    so the page's database work runs in the test's thread (Django's ``TestCase``)."""

    def __init__(self, **kwargs: Any) -> None:
        self.rt = RTClient(**kwargs)

    def __enter__(self) -> SyncRTClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, url: str, *, user: Any = None, client: Any = None) -> SyncRTPage:
        return SyncRTPage(async_to_sync(self.rt.open)(url, user=user, client=client))

    def settle(self) -> None:
        async_to_sync(self.rt.settle)()

    def close(self) -> None:
        async_to_sync(self.rt.close)()


class SyncRTPage:
    """:class:`RTPage` for synchronous tests: the same reads, and the same actions
    without ``await``."""

    def __init__(self, page: RTPage) -> None:
        self.page = page

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.page, name)
        if inspect.iscoroutinefunction(value):
            return async_to_sync(value)
        return value

    def __repr__(self) -> str:
        return f"<SyncRTPage {self.page.url}>"
