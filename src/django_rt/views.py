"""``RTView``: a ``TemplateView`` whose page stays live and talks back to its view;
:func:`live_view`: the same live data for a function view."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar, TypeVar

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.generic import TemplateView

from . import events
from .conf import rt_settings
from .events import Handler
from .live import reads
from .live.page import ANY, SCRIPT_PLACEHOLDER
from .live.proxies import Dependency
from .live.reads import Read
from .live.render import base_template, live_context_keys, render_template, stable_hash
from .protocol import CONFIG_ATTRIBUTE, VERSION, ConfigKey
from .tokens import PageToken, user_key, view_path

#: The request attribute through which a WebSocket join receives the view instance.
VIEW_CAPTURE_ATTRIBUTE = "_rt_capture_view"

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
# JSON inside <script> must not close the element or open a comment.
_JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def context_dependencies(
    tables: Collection[Read] | None, passed: Collection[tuple[str, str]] = ()
) -> frozenset[Dependency]:
    """What a page depends on through its context: the tables that computing it read
    (the row, where a statement read one row by primary key alone; its existence, for
    a row in ``passed``: the code passed it on unread), or everything when that is
    unknown."""
    if tables is None:
        return frozenset({ANY})
    return frozenset(
        ("t", table) if isinstance(table, str) else ("e" if table in passed else "i", *table)
        for table in tables
    )


class RTTemplateResponse(TemplateResponse):
    """A ``TemplateResponse`` rendered with tracking: live regions carry markers."""

    rt_hash: str | None = None
    #: What the context depends on, when no ``RTView`` in the context tells.
    rt_dependencies: frozenset[Dependency] | None = None

    @property
    def rendered_content(self) -> str:
        template = self.resolve_template(self.template_name)
        context = self.resolve_context(self.context_data)
        try:
            base_template(template)
        except TypeError:  # another engine's template: it stays static
            return super().rendered_content
        view = (context or {}).get("view")
        dependencies: Collection[Dependency] = ()
        if isinstance(view, RTView):
            dependencies = view.rt_context_dependencies()
        elif self.rt_dependencies is not None:
            dependencies = self.rt_dependencies
        result = render_template(
            template,
            context,
            self._request,
            context_keys=live_context_keys(context, set(dependencies) - {ANY}),
        )
        self.rt_hash = stable_hash(result.html)
        return result.html


class RTView(TemplateView):
    """A ``TemplateView`` whose page stays live, with server-side DOM events.

    The model instances and querysets that ``get_context_data`` puts in the template
    follow the database in every open browser (see ``docs/live.md``); the view's own
    state (``{{ view.counter }}``) follows its event handlers. Decorate methods with
    :meth:`RTView.event` to make them callable from the page. The page needs no script
    tag: the client script and its signed page token are injected right before
    ``</body>`` (or where ``{% rt_script %}`` stands). The view instance that a page's
    WebSocket joins lives as long as that connection, so attributes set by one handler
    are there for the next.
    """

    event = staticmethod(events.event)
    bind = staticmethod(events.bind)
    response_class = RTTemplateResponse

    #: The event handlers of this class, by method name (computed per subclass).
    rt_handlers: ClassVar[dict[str, Handler]] = {}

    #: Set on the instance that serves a WebSocket connection (not a plain GET).
    rt_connected: bool = False

    #: On a connected instance: the tables that computing the context read (labels).
    #: A change to one of them runs :meth:`rt_get_context_data` again for the page.
    rt_context_tables: frozenset[Read] | None = None

    #: What :meth:`rt_get_context_data` collected last (the rows it passed on unread).
    rt_context_reads: reads.ReadSet | None = None

    #: Set by :meth:`rt_rerun` while a handler runs.
    rt_rerun_wanted: bool = False

    #: Whether open pages of this view that show the same thing may share one live
    #: state, updated once for all (see ``docs/live.md``, "Audiences"). Set it to
    #: ``False`` when the context depends on more than the request and the database
    #: (a clock, a random pick, the process's own state).
    rt_shared: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.rt_handlers = events.collect_handlers(cls)

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        captured = getattr(request, VIEW_CAPTURE_ATTRIBUTE, None)
        if captured is not None:
            self.rt_connected = True
            captured.append(self)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render_to_response(self.rt_get_context_data(**kwargs))

    def head(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """What ``get`` answers. (Without this method, Django's ``View.setup`` sets
        ``self.head = self.get`` on each instance: a bound method of the instance on
        the instance, a cycle that leaves the view, its request and what it holds to
        the garbage collector instead of freeing them when the response is sent.)"""
        return self.get(request, *args, **kwargs)

    def rt_get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """``get_context_data(**kwargs)``, recording the tables its queries read (a value
        the view picked or computed with a query follows them)."""
        with reads.collect() as tables:
            context = self.get_context_data(**kwargs)
        self.rt_context_tables = frozenset(tables)
        self.rt_context_reads = tables
        return context

    def rt_rerun(self) -> None:
        """Run ``get_context_data()`` again once the current handler returns, and send
        the page what differs: for a handler that changed state the context is computed
        from (``self.page``, a filter), not only state the template shows."""
        self.rt_rerun_wanted = True

    def get_rt_groups(self) -> list[str]:
        """The names of the broadcast groups this page joins (``django_rt.broadcast(name,
        ...)`` reaches it). None by default; a per-user group is the common case::

            def get_rt_groups(self):
                return [f"user-{self.request.user.pk}"]
        """
        return []

    def rt_context_dependencies(self) -> frozenset[Dependency]:
        """What the page depends on through its context: the tables read by computing
        it, or everything when that is unknown."""
        found = self.rt_context_reads
        passed = found.passed() if found is not None else ()
        return context_dependencies(self.rt_context_tables, passed)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not self.rt_connected:
            return super().dispatch(request, *args, **kwargs)
        # Also what the whole handler read: a subclass may override get() and compute
        # its context without rt_get_context_data().
        with reads.collect() as tables:
            response = super().dispatch(request, *args, **kwargs)
        if asyncio.iscoroutine(response):
            return self._rt_finish_async(response)
        if self.rt_context_tables is None:
            self.rt_context_tables = frozenset(tables)
        return response

    async def _rt_finish_async(self, pending: Any) -> Any:
        with reads.collect() as tables:
            response = await pending
        if self.rt_context_tables is None:
            self.rt_context_tables = frozenset(tables)
        return response

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **response_kwargs)
        if not self.rt_connected:
            response.add_post_render_callback(self._inject_script)  # type: ignore[attr-defined]
        return response

    def rt_config(self, render_hash: str | None = None) -> dict[str, Any]:
        """The page configuration the client starts from."""
        return page_config(self.request, view_path(type(self)), self.rt_handlers, render_hash)

    def rt_script(self, render_hash: str | None = None) -> SafeString:
        """The client script and its configuration."""
        return script_tags(self.rt_config(render_hash))

    def _inject_script(self, response: HttpResponse) -> None:
        inject_script(response, self.rt_script)


def page_config(
    request: HttpRequest,
    view: str,
    handlers: Mapping[str, Handler],
    render_hash: str | None = None,
) -> dict[str, Any]:
    """The page configuration the client starts from: its token names ``view``."""
    token = PageToken(view=view, path=request.get_full_path(), user=user_key(request))
    return {
        ConfigKey.VERSION: VERSION,
        ConfigKey.URL: rt_settings.WEBSOCKET_PATH,
        ConfigKey.TOKEN: token.sign(),
        ConfigKey.DEBUG: bool(settings.DEBUG),
        ConfigKey.HASH: render_hash,
        ConfigKey.MORPH: static(rt_settings.MORPH_SCRIPT),
        ConfigKey.EVENTS: [
            binding.as_config(handler)
            for handler in handlers.values()
            for binding in handler.bindings
        ],
    }


#: Static path of the minified client, which ``scripts/build-client`` writes from ``rt.js``.
MINIFIED_SCRIPT = "django_rt/rt.min.js"


def client_script() -> str:
    """Static path of the client script pages load: ``DJANGO_RT['SCRIPT']`` when the
    project sets it; else ``rt.js`` under ``DEBUG`` (readable in the browser's debugger),
    and ``rt.min.js``, the same client minified, otherwise."""
    user = getattr(settings, "DJANGO_RT", None)
    if isinstance(user, dict) and "SCRIPT" in user:
        return str(user["SCRIPT"])
    return str(rt_settings.SCRIPT) if settings.DEBUG else MINIFIED_SCRIPT


def script_tags(config: dict[str, Any]) -> SafeString:
    """The client script and its configuration."""
    text = json.dumps(config, separators=(",", ":"))
    return format_html(
        '<script type="application/json" {}>{}</script><script src="{}" defer></script>',
        CONFIG_ATTRIBUTE,
        SafeString(text.translate(_JSON_SCRIPT_ESCAPES)),
        static(client_script()),
    )


def inject_script(response: HttpResponse, script: Callable[[str | None], SafeString]) -> None:
    """Put ``script(render_hash)`` where ``{% rt_script %}`` stands, else before the
    last ``</body>``, else at the end (HTML responses only)."""
    if "html" not in response.get("Content-Type", ""):
        return
    tags = script(getattr(response, "rt_hash", None)).encode(response.charset)
    content = response.content
    placeholder = SCRIPT_PLACEHOLDER.encode()
    if placeholder in content:
        # {% rt_script %} placed it; only its first use counts.
        first, _, rest = content.partition(placeholder)
        response.content = first + tags + rest.replace(placeholder, b"")
        return
    ends = list(_BODY_END.finditer(content))
    if ends:
        at = ends[-1].start()
        response.content = content[:at] + tags + content[at:]
    else:
        response.content = content + tags


# Function views -----------------------------------------------------------------------

V = TypeVar("V", bound=Callable[..., Any])

#: The attribute of a :func:`live_view` function (kept by ``functools.wraps``-based
#: decorators around it, like ``view_class`` of ``as_view()``): the view path its page
#: tokens name.
LIVE_VIEW_ATTRIBUTE = "rt_view"


class ViewRefused(Exception):
    """A function view, run again for its open page, no longer answers with that page."""


class FunctionView:
    """What a WebSocket join keeps of a :func:`live_view` page: the function and its
    arguments, to run it again when a table that it read changes. Function views have
    no event handlers (events call methods of a class: use :class:`RTView`)."""

    rt_handlers: ClassVar[dict[str, Handler]] = {}

    def __init__(
        self,
        function: Callable[..., Any],
        request: HttpRequest,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.function = function
        self.request = request
        self.args = args
        self.kwargs = kwargs
        self.template_name: Any = None
        #: The tables that the function's last run read (labels).
        self.rt_context_tables: frozenset[Read] | None = None

    def rt_context_dependencies(self) -> frozenset[Dependency]:
        return context_dependencies(self.rt_context_tables)

    def rt_get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Run the function again (sync: in a worker thread) and return its response's
        context. Raises :class:`ViewRefused` when it answers anything but an unrendered
        200 ``TemplateResponse`` of the same template."""
        function = self.function
        if iscoroutinefunction(function):
            function = async_to_sync(function)
        with reads.collect() as tables:
            response = function(self.request, *self.args, **kwargs)
        if (
            not isinstance(response, TemplateResponse)
            or response.is_rendered
            or response.status_code != 200
        ):
            raise ViewRefused(f"the view now answers {getattr(response, 'status_code', '?')}")
        if response.template_name != self.template_name:
            raise ViewRefused("the view now renders another template")
        self.rt_context_tables = frozenset(tables)
        return response.resolve_context(response.context_data) or {}


def _tracked_class(cls: type[TemplateResponse]) -> type[RTTemplateResponse]:
    if issubclass(cls, RTTemplateResponse):
        return cls
    if cls is TemplateResponse:
        return RTTemplateResponse
    return _tracked_subclass(cls)


@functools.cache
def _tracked_subclass(cls: type[TemplateResponse]) -> type[RTTemplateResponse]:
    return type(f"RT{cls.__name__}", (RTTemplateResponse, cls), {})


def _live_response(
    request: HttpRequest,
    response: Any,
    path: str,
    tables: set[Read],
    function_view: FunctionView | None,
) -> Any:
    if not isinstance(response, TemplateResponse) or response.is_rendered:
        return response  # a redirect, an error, a rendered page: as it is, not live
    # Rendered with tracking: the response becomes its tracked twin (no copy: its
    # headers, cookies and callbacks stay).
    response.__class__ = _tracked_class(type(response))
    assert isinstance(response, RTTemplateResponse)
    response.rt_dependencies = context_dependencies(tables)
    if function_view is not None:
        function_view.template_name = response.template_name
        function_view.rt_context_tables = frozenset(tables)
        captured = getattr(request, VIEW_CAPTURE_ATTRIBUTE)
        captured.append(function_view)
    else:
        script = functools.partial(page_config, request, path, {})
        response.add_post_render_callback(
            lambda rendered: inject_script(rendered, lambda h: script_tags(script(h)))
        )
    return response


def live_view(function: V) -> V:
    """Make the page of a function view live, as :class:`RTView` makes its own.

    ``function`` (sync or ``async def``) returns a ``TemplateResponse`` (unrendered, as
    ``TemplateResponse(request, "page.html", context)`` is): it is rendered with
    tracking, and the client script and a page token that names ``function`` go in
    before ``</body>``. The page's socket runs the URL's view again (its decorators and
    middleware too) and follows every model instance and queryset of the context; a
    change to a table that the function read runs it again. Anything else it returns (a
    redirect, an ``HttpResponse``) is sent as it is. Function views have live data only:
    events need the methods of an :class:`RTView`.
    """
    path = view_path(function)

    def start(request: HttpRequest, args: Any, kwargs: Any) -> FunctionView | None:
        if getattr(request, VIEW_CAPTURE_ATTRIBUTE, None) is None:
            return None
        return FunctionView(function, request, args, kwargs)

    view: Callable[..., Any]
    if iscoroutinefunction(function):

        @functools.wraps(function)
        async def view_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            function_view = start(request, args, kwargs)
            with reads.collect() as tables:
                response = await function(request, *args, **kwargs)
            return _live_response(request, response, path, tables, function_view)

        view = markcoroutinefunction(view_async)
    else:

        @functools.wraps(function)
        def view_sync(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            function_view = start(request, args, kwargs)
            with reads.collect() as tables:
                response = function(request, *args, **kwargs)
            return _live_response(request, response, path, tables, function_view)

        view = view_sync
    setattr(view, LIVE_VIEW_ATTRIBUTE, path)
    return view  # type: ignore[return-value]


def live_view_path(view: Any) -> str | None:
    """The view path that a URL's view function serves pages of: its ``RTView`` class
    (``as_view()``) or its :func:`live_view` function; ``None`` for any other view."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return view_path(view_class)
    path = getattr(view, LIVE_VIEW_ATTRIBUTE, None)
    return path if isinstance(path, str) else None
