"""The ASGI application: Django's HTTP app plus django-rt's WebSocket route.

In ``asgi.py``::

    from django_rt.asgi import get_asgi_application
    application = get_asgi_application()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler

logger = logging.getLogger("django_rt")

#: Set on the application that :func:`get_asgi_application` builds: the WebSocket path
#: it routes to django-rt's consumer (system check ``django_rt.W005``).
ROUTED_PATH_ATTRIBUTE = "rt_websocket_path"

#: The scope key under which :func:`get_asgi_application` hands django-rt's consumer the
#: server's own ``send``: its frames skip the middleware wrappers around each send.
SERVER_SEND = "django_rt.server_send"


def get_asgi_application(websocket_urlpatterns: Sequence[Any] = ()) -> Any:
    """Build the project's ASGI application.

    WebSockets at ``DJANGO_RT['WEBSOCKET_PATH']`` reach django-rt's consumer, behind
    origin validation against ``ALLOWED_HOSTS`` and Channels' session and auth
    middleware; ``websocket_urlpatterns`` (Channels routes) are served beside it. With
    ``DEBUG`` on, static files (the client script among them) are served too, as
    ``runserver`` does.
    """
    django.setup(set_prefix=False)
    # Imported after setup: Channels' auth middleware touches the app registry.
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier
    from django.apps import apps
    from django.conf import settings
    from django.urls import path, re_path

    from .conf import rt_settings
    from .consumer import RTConsumer

    rt_settings.check()
    http: Any = ASGIHandler()
    if settings.DEBUG and apps.is_installed("django.contrib.staticfiles"):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        http = ASGIStaticFilesHandler(http)
    http = MisroutedHandshakeGuard(http)
    routes = [
        path(rt_settings.WEBSOCKET_PATH.lstrip("/"), _reached),  # type: ignore[arg-type]
        *websocket_urlpatterns,
        # Any other path is refused at the handshake instead of crashing the application.
        re_path(r"", WebsocketDenier.as_asgi()),  # type: ignore[arg-type]
    ]
    websocket = _WebSocketEntry(
        AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes))),
        RTConsumer.as_asgi(),
    )
    application = ProtocolTypeRouter({"http": http, "websocket": websocket})
    setattr(application, ROUTED_PATH_ATTRIBUTE, rt_settings.WEBSOCKET_PATH)
    return application


#: Why a handshake reached the HTTP application, and what to do, by what it carried.
_NO_WEBSOCKET_SERVER = (
    "the server speaks no WebSocket: under uvicorn, install a WebSocket library (pip "
    'install "uvicorn[standard]", or websockets); under manage.py runserver, add '
    "'daphne' first in INSTALLED_APPS (or serve the project with an ASGI server)"
)
_UPGRADE_DROPPED = (
    "a proxy in front dropped its Upgrade header: pass it on (nginx: proxy_http_version "
    '1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";)'
)
_logged: set[str] = set()


class MisroutedHandshakeGuard:
    """The HTTP side of :func:`get_asgi_application`: a WebSocket handshake for
    ``WEBSOCKET_PATH`` that arrives as an HTTP request (the server has no WebSocket
    support, or a proxy dropped the ``Upgrade`` header) is answered ``426 Upgrade
    Required`` with the reason, and the fix is logged once per process, instead of
    Django's ``Not Found: /rt/ws/``."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from .conf import rt_settings

        why = None
        if scope["type"] == "http" and scope.get("path") == rt_settings.WEBSOCKET_PATH:
            headers = {bytes(name).lower(): bytes(value) for name, value in scope["headers"]}
            if b"websocket" in headers.get(b"upgrade", b"").lower():
                why = _NO_WEBSOCKET_SERVER
            elif b"sec-websocket-key" in headers:
                why = _UPGRADE_DROPPED
        if why is None:
            await self.application(scope, receive, send)
            return
        if why not in _logged:
            _logged.add(why)
            logger.error(
                "django-rt: a WebSocket handshake for %s reached Django's HTTP application, "
                "so pages stay static: %s.",
                scope["path"],
                why,
            )
        body = f"django-rt: this WebSocket handshake reached the HTTP application: {why}.\n"
        await send(
            {
                "type": "http.response.start",
                "status": 426,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"upgrade", b"websocket"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


#: The scope key under which :class:`_WebSocketEntry` learns the scope that the
#: middleware made for a socket of django-rt's route (see :func:`_reached`).
_REACHED = "django_rt.reached"


async def _reached(scope: Any, receive: Any, send: Any) -> None:
    """The end of the middleware for a socket of django-rt's route: the scope as the
    origin check, the session, the user and the route made it goes back to
    :class:`_WebSocketEntry`, which runs the consumer."""
    scope[_REACHED].append(scope)


class _WebSocketEntry:
    """The WebSocket side of :func:`get_asgi_application`.

    It puts the server's ``send`` in the scope (``SERVER_SEND``) and runs the middleware
    (origin, cookies, session, user, routes). A socket of another route stays inside
    it as Channels runs it. A socket of django-rt's route comes back out once the
    middleware has made its scope, and its consumer runs from here: the middleware's
    coroutines, each with a copy of the scope, end instead of waiting as long as the
    page is open. Their ``send`` wrappers act on HTTP responses only, and the consumer
    sends through the server's own ``send`` (the session's wrapper saves a session on
    ``http.response.start``; nothing else wraps it)."""

    def __init__(self, middleware: Any, consumer: Any) -> None:
        self.middleware = middleware
        self.consumer = consumer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        reached: list[dict[str, Any]] = []
        await self.middleware({**scope, SERVER_SEND: send, _REACHED: reached}, receive, send)
        if reached:
            made = reached[0]
            del made[_REACHED]
            await self.consumer(made, receive, send)
