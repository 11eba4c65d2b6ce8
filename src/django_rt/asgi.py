"""The ASGI application: Django's HTTP app plus django-rt's WebSocket route.

In ``asgi.py``::

    from django_rt.asgi import get_asgi_application
    application = get_asgi_application()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler


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
    routes = [
        path(rt_settings.WEBSOCKET_PATH.lstrip("/"), RTConsumer.as_asgi()),  # type: ignore[arg-type]
        *websocket_urlpatterns,
        # Any other path is refused at the handshake instead of crashing the application.
        re_path(r"", WebsocketDenier.as_asgi()),  # type: ignore[arg-type]
    ]
    websocket = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes)))
    return ProtocolTypeRouter({"http": http, "websocket": websocket})
