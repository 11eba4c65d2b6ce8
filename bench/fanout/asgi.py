"""The benchmark's Django server: django-rt's application, plus the naive baseline's
WebSocket route."""

import django

django.setup(set_prefix=False)

from django.urls import path  # noqa: E402

from django_rt.asgi import get_asgi_application  # noqa: E402

from .views import NaiveConsumer  # noqa: E402

application = get_asgi_application(
    websocket_urlpatterns=[path("naive/ws/", NaiveConsumer.as_asgi())]
)
