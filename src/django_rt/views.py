"""``RTView``: a ``TemplateView`` whose page stays live and talks back to its view."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, ClassVar

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
from .live.render import base_template, live_context_keys, render_template, stable_hash
from .protocol import CONFIG_ATTRIBUTE, VERSION, ConfigKey
from .tokens import PageToken, user_key, view_path

#: The request attribute through which a WebSocket join receives the view instance.
VIEW_CAPTURE_ATTRIBUTE = "_rt_capture_view"

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
# JSON inside <script> must not close the element or open a comment.
_JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


class RTTemplateResponse(TemplateResponse):
    """A ``TemplateResponse`` rendered with tracking: live regions carry markers."""

    rt_hash: str | None = None

    @property
    def rendered_content(self) -> str:
        template = self.resolve_template(self.template_name)
        context = self.resolve_context(self.context_data)
        try:
            base_template(template)
        except TypeError:  # another engine's template: it stays static
            return super().rendered_content
        view = (context or {}).get("view")
        dependencies = view.rt_context_dependencies() if isinstance(view, RTView) else ()
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
    response_class = RTTemplateResponse

    #: The event handlers of this class, by method name (computed per subclass).
    rt_handlers: ClassVar[dict[str, Handler]] = {}

    #: Set on the instance that serves a WebSocket connection (not a plain GET).
    rt_connected: bool = False

    #: On a connected instance: the tables that computing the context read (labels).
    #: A change to one of them runs :meth:`rt_get_context_data` again for the page.
    rt_context_tables: frozenset[str] | None = None

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

    def rt_get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """``get_context_data(**kwargs)``, recording the tables its queries read (a value
        the view picked or computed with a query follows them)."""
        with reads.collect() as tables:
            context = self.get_context_data(**kwargs)
        self.rt_context_tables = frozenset(tables)
        return context

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
        if self.rt_context_tables is None:
            return frozenset({ANY})
        return frozenset(("t", table) for table in self.rt_context_tables)

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
        request: HttpRequest = self.request
        token = PageToken(
            view=view_path(type(self)), path=request.get_full_path(), user=user_key(request)
        )
        return {
            ConfigKey.VERSION: VERSION,
            ConfigKey.URL: rt_settings.WEBSOCKET_PATH,
            ConfigKey.TOKEN: token.sign(),
            ConfigKey.DEBUG: bool(settings.DEBUG),
            ConfigKey.HASH: render_hash,
            ConfigKey.MORPH: static(rt_settings.MORPH_SCRIPT),
            ConfigKey.EVENTS: [
                binding.as_config(handler)
                for handler in self.rt_handlers.values()
                for binding in handler.bindings
            ],
        }

    def rt_script(self, render_hash: str | None = None) -> SafeString:
        """The client script and its configuration."""
        config = json.dumps(self.rt_config(render_hash), separators=(",", ":"))
        return format_html(
            '<script type="application/json" {}>{}</script><script src="{}" defer></script>',
            CONFIG_ATTRIBUTE,
            SafeString(config.translate(_JSON_SCRIPT_ESCAPES)),
            static(rt_settings.SCRIPT),
        )

    def _inject_script(self, response: HttpResponse) -> None:
        if "html" not in response.get("Content-Type", ""):
            return
        script = self.rt_script(getattr(response, "rt_hash", None)).encode(response.charset)
        content = response.content
        placeholder = SCRIPT_PLACEHOLDER.encode()
        if placeholder in content:
            # {% rt_script %} placed it; only its first use counts.
            first, _, rest = content.partition(placeholder)
            response.content = first + script + rest.replace(placeholder, b"")
            return
        ends = list(_BODY_END.finditer(content))
        if ends:
            at = ends[-1].start()
            response.content = content[:at] + script + content[at:]
        else:
            response.content = content + script
