"""The benchmark's Django server: django-rt's application, plus the naive baseline's
WebSocket route.

With ``BENCH_TRACE_MEMORY`` set, ``tracemalloc`` counts what the process holds from its
start (``GET /bench/traced/`` answers it).
"""

import os
import tracemalloc

import django

if os.environ.get("BENCH_TRACE_MEMORY"):  # bench/fanout.py --trace-memory
    tracemalloc.start()

django.setup(set_prefix=False)

from django.urls import path  # noqa: E402

from django_rt.asgi import get_asgi_application  # noqa: E402

from .views import NaiveConsumer  # noqa: E402

application = get_asgi_application(
    websocket_urlpatterns=[path("naive/ws/", NaiveConsumer.as_asgi())]
)
