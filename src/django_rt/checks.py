"""System checks: a misconfiguration is reported at start-up, not at the first page."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import rt_settings


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = [
        Error(
            problem,
            hint="See the configuration section of django-rt's README.",
            id="django_rt.E001",
        )
        for problem in rt_settings.validate()
    ]
    for app, why in (
        ("django.contrib.sessions", "the WebSocket reads the page's session"),
        ("django.contrib.auth", "the WebSocket checks the page's user"),
    ):
        if not apps.is_installed(app):
            messages.append(
                Error(
                    f"django-rt needs {app!r} in INSTALLED_APPS: {why}.",
                    id="django_rt.E002",
                )
            )
    if settings.DEBUG and not apps.is_installed("daphne"):
        messages.append(
            Warning(
                "'daphne' is not in INSTALLED_APPS, so `manage.py runserver` serves no "
                "WebSockets and django-rt pages stay static under it.",
                hint="Add 'daphne' first in INSTALLED_APPS and set ASGI_APPLICATION, or run "
                "an ASGI server such as uvicorn. Silence with SILENCED_SYSTEM_CHECKS = "
                "['django_rt.W001'].",
                id="django_rt.W001",
            )
        )
    if apps.is_installed("daphne") and not getattr(settings, "ASGI_APPLICATION", None):
        messages.append(
            Error(
                "'daphne' is installed but ASGI_APPLICATION is not set.",
                hint="Set ASGI_APPLICATION = 'yourproject.asgi.application', where asgi.py "
                "calls django_rt.asgi.get_asgi_application().",
                id="django_rt.E003",
            )
        )
    if not apps.is_installed("django.contrib.staticfiles"):
        messages.append(
            Warning(
                "'django.contrib.staticfiles' is not in INSTALLED_APPS: serve "
                f"STATIC_URL + {rt_settings.SCRIPT!r} yourself so that pages find the client.",
                id="django_rt.W002",
            )
        )
    messages += _check_distribution()
    return messages


@register(Tags.compatibility, deploy=True)
def check_feed_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The in-process feed serves one process: a deployment of several misses changes."""
    from .changes import feed_problems, feed_settings
    from .changes.memory import MemoryFeed

    value = rt_settings.CHANGE_FEED
    if feed_problems(value):
        return []  # E001 says what is wrong
    backend = import_string(feed_settings(value).backend)
    if not issubclass(backend, MemoryFeed):
        return []
    return [
        Warning(
            "DJANGO_RT['CHANGE_FEED'] is the in-process MemoryFeed: a change reaches only "
            "the pages served by the process that made it.",
            hint="With several processes or hosts, use django_rt.changes.database.DatabaseFeed "
            "(an outbox table, one database, no other server), django_rt.changes.redis.RedisFeed "
            "(Redis Streams, many hosts) or django_rt.changes.postgres.PostgresFeed (PostgreSQL "
            "triggers; also sees writes made outside Django). One process only: silence with "
            "SILENCED_SYSTEM_CHECKS = ['django_rt.W003'].",
            id="django_rt.W003",
        )
    ]


#: The PyPI distribution of this package, and an unrelated one that installs a module of
#: the same import name (``django_rt``) and would overwrite its files.
DISTRIBUTION = "django-rtview"
CONFLICTING_DISTRIBUTION = "django-rt"
SUMMARY = "Realtime server-rendered Django pages"


def _check_distribution() -> list[CheckMessage]:
    try:
        conflicting = metadata.distribution(CONFLICTING_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return []
    summary = (conflicting.metadata.get_all("Summary") or [""])[0]
    if summary.startswith(SUMMARY):
        return []  # this project, installed under its former name
    return [
        Error(
            f"The unrelated package {CONFLICTING_DISTRIBUTION!r} {conflicting.version} is "
            f"installed: it uses the import name 'django_rt' too, and its files replace "
            f"django-rt's.",
            hint=f"pip uninstall {CONFLICTING_DISTRIBUTION}, then pip install --force-reinstall "
            f"{DISTRIBUTION}.",
            id="django_rt.E004",
        )
    ]
