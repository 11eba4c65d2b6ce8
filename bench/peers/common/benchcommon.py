"""What every stack of ``bench/browser_latency.py`` shares, in plain Django.

Each stack's project (``bench/peers/<stack>/``) puts this folder on its path: its settings
start from :data:`BASE_SETTINGS`, its urls route :func:`save_view`, and
``prepare.py`` creates the tables and the rows. Nothing here knows any of the stacks.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

ROWS = 20


def base_settings(name: str) -> dict[str, Any]:
    """Settings every stack starts from: one SQLite file, no debug, no logging of queries."""
    return {
        "SECRET_KEY": f"browser-latency-{name}-not-secret",
        "DEBUG": False,
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ["BENCH_DB"],
            }
        },
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                    ]
                },
            }
        ],
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "STATIC_URL": "/static/",
        "USE_TZ": True,
        "ROOT_URLCONF": "project.urls",
        "ASGI_APPLICATION": "project.asgi.application",
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"console": {"class": "logging.StreamHandler"}},
            "root": {"handlers": ["console"], "level": "WARNING"},
        },
    }


def channel_layers() -> dict[str, Any]:
    """The channel layer a peer needs: Redis (``BENCH_LAYER=redis``, the default, with a
    key prefix of this run's own) or Channels' in-memory layer (``BENCH_LAYER=memory``)."""
    if os.environ.get("BENCH_LAYER", "redis") == "memory":
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": ["redis://127.0.0.1:6379/0"],
                "prefix": os.environ.get("BENCH_REDIS_PREFIX", f"bench-{uuid.uuid4().hex}"),
            },
        }
    }


def item_model() -> Any:
    from django.apps import apps

    return apps.get_model("benchapp", "Item")


def save_view(request: Any) -> Any:
    """The trigger: ``POST pk, value`` renames one row with ``save()`` and answers the
    wall-clock time taken just before the call (``started``) and just after it."""
    from django.http import HttpResponseNotAllowed, JsonResponse

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    item = item_model().objects.get(pk=int(request.POST["pk"]))
    item.name = request.POST["value"]
    started = time.time()
    item.save()
    return JsonResponse({"started": started, "returned": time.time()})


def urlpatterns() -> list[Any]:
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    return [path("bench/save/", csrf_exempt(save_view))]


def seed() -> None:
    """The rows every page shows: ``row 1`` ... ``row 20``, primary keys 1 to 20.
    ``bulk_create``, so that no stack publishes anything while the benchmark sets up."""
    Item = item_model()
    Item.objects.all().delete()
    Item.objects.bulk_create(Item(pk=n, name=f"row {n}", position=n) for n in range(1, ROWS + 1))
