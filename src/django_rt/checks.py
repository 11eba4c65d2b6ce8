"""System checks: a misconfiguration is reported at start-up, not at the first page."""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
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


# W003: the server's own WebSocket message limit --------------------------------------


@dataclass(frozen=True)
class ServerLimit:
    """The largest WebSocket message the server of this process buffers."""

    server: str
    limit: int  # bytes; 0: no limit
    how: str  # how to set it, with {size} for the recommended value


def recommended_message_limit() -> int:
    """Twice ``MAX_FRAME_BYTES``: frames up to that get django-rt's clear
    ``frame_too_large`` error, larger ones are cut by the server (close code 1009)
    before they are buffered."""
    return 2 * int(rt_settings.MAX_FRAME_BYTES)


def _option(argv: Sequence[str], name: str) -> int | None:
    for index, arg in enumerate(argv):
        value = None
        if arg == name and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith(name + "="):
            value = arg.partition("=")[2]
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _program(argv: Sequence[str]) -> str:
    """``uvicorn`` for ``/venv/bin/uvicorn`` and ``…/uvicorn/__main__.py`` (``-m``)."""
    if not argv:
        return ""
    path = argv[0].replace("\\", "/")
    name = os.path.basename(path)
    if name == "__main__.py":
        name = os.path.basename(os.path.dirname(path))
    return name.removesuffix(".exe")


def _daphne_has_the_limit() -> bool:
    try:
        from daphne.server import Server  # type: ignore[import-untyped]
    except ImportError:
        return False
    return "websocket_max_message_size" in inspect.signature(Server.__init__).parameters


def server_limit(argv: Sequence[str] | None = None) -> ServerLimit | None:
    """The message limit of the server this process runs, where its command line tells
    (``uvicorn``, ``daphne``, daphne's ``manage.py runserver``); ``None`` elsewhere
    (gunicorn workers, a server started from code)."""
    argv = sys.argv if argv is None else argv
    program = _program(argv)
    if program == "uvicorn":
        limit = _option(argv, "--ws-max-size")
        return ServerLimit(
            "uvicorn",
            16 * 1024 * 1024 if limit is None else limit,
            "start it with --ws-max-size {size}",
        )
    if not _daphne_has_the_limit():
        return None
    if program == "daphne":
        limit = _option(argv, "--websocket-max-message-size")
        return ServerLimit(
            "daphne",
            1024 * 1024 if limit is None else limit,
            "start it with --websocket-max-message-size {size}",
        )
    if len(argv) > 1 and argv[1] == "runserver" and apps.is_installed("daphne"):
        limit = _option(argv, "--websocket-max-message-size")
        if limit is None:
            limit = getattr(settings, "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE", 1024 * 1024)
        return ServerLimit(
            "daphne's runserver",
            limit,
            "set DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = {size} in the settings (or pass "
            "--websocket-max-message-size {size})",
        )
    return None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def check_server_limit(argv: Sequence[str] | None = None) -> list[CheckMessage]:
    found = server_limit(argv)
    recommended = recommended_message_limit()
    if found is None or 0 < found.limit <= recommended:
        return []
    size = "no limit" if found.limit == 0 else f"up to {found.limit} bytes"
    return [
        Warning(
            f"{found.server} buffers WebSocket messages of {size} before django-rt refuses "
            f"those above MAX_FRAME_BYTES ({rt_settings.MAX_FRAME_BYTES}): a few sockets can "
            "fill the process's memory.",
            hint=_sentence(found.how.format(size=recommended))
            + ". See django-rt's docs/security.md, 'Frame sizes'.",
            id="django_rt.W003",
        )
    ]


@register(Tags.security)
def check_frame_limit(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return check_server_limit()


def warn_at_start_up() -> None:
    """Log W003 where no system check runs: under the uvicorn and daphne commands."""
    if _program(sys.argv) not in ("uvicorn", "daphne"):
        return
    silenced = set(getattr(settings, "SILENCED_SYSTEM_CHECKS", ()))
    for message in check_server_limit():
        if message.id not in silenced:
            logging.getLogger("django_rt").warning(
                "%s (%s) %s", message.msg, message.id, message.hint
            )


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
            "SILENCED_SYSTEM_CHECKS = ['django_rt.W004'].",
            id="django_rt.W004",
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
