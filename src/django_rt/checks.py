"""System checks: a misconfiguration is reported at start-up, not at the first page."""

from __future__ import annotations

import importlib.util
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
    if settings.DEBUG and not apps.is_installed("daphne") and _runs_runserver(sys.argv):
        messages.append(
            Warning(
                "'daphne' is not in INSTALLED_APPS, so `manage.py runserver` serves no "
                "WebSockets and django-rt pages stay static under it.",
                hint="Either pip install daphne, add 'daphne' first in INSTALLED_APPS and "
                "set ASGI_APPLICATION = 'yourproject.asgi.application' (runserver then "
                "serves WebSockets), or serve the project with an ASGI server instead of "
                "runserver: uvicorn yourproject.asgi:application. Silence with "
                "SILENCED_SYSTEM_CHECKS = ['django_rt.W001'].",
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
        from .views import client_script

        messages.append(
            Warning(
                "'django.contrib.staticfiles' is not in INSTALLED_APPS: serve "
                f"STATIC_URL + {client_script()!r} yourself so that pages find the client.",
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


def _runs_runserver(argv: Sequence[str]) -> bool:
    """``manage.py runserver``, ``django-admin runserver``, ``python -m django runserver``."""
    return len(argv) > 1 and argv[1] == "runserver"


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
    """Log W003 and W006 where no system check runs: under the uvicorn and daphne
    commands."""
    if _program(sys.argv) not in ("uvicorn", "daphne"):
        return
    silenced = set(getattr(settings, "SILENCED_SYSTEM_CHECKS", ()))
    for message in check_server_limit() + check_websocket_library():
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


# W005: the ASGI application routes the socket ----------------------------------------

#: How deep the walk through an application's routers and wrappers goes.
_WALK_DEPTH = 24
#: Attributes under which ASGI routers and middleware keep what they wrap: Channels'
#: ``BaseMiddleware`` and cookie/session middleware (``inner``), its origin validator
#: (``application``), and most others (``app``).
_WRAPPED_ATTRIBUTES = ("inner", "application", "app")


class Route:
    """Where a WebSocket for a path goes in an ASGI application."""

    RT = "rt"  # django-rt's consumer
    OTHER = "other"  # another consumer, a denier, an HTTP-only application
    NO_MATCH = "no match"  # no route of a router matched
    UNKNOWN = "unknown"  # an application this check cannot look into


def websocket_route(application: Any, path: str) -> str:
    """Where ``application`` sends a WebSocket for ``path``: a :class:`Route`."""
    return _route(application, path, 0, set())


def _route(application: Any, path: str, depth: int, seen: set[int]) -> str:
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.core.handlers.asgi import ASGIHandler

    from .asgi import ROUTED_PATH_ATTRIBUTE
    from .consumer import RTConsumer

    if depth > _WALK_DEPTH or id(application) in seen:
        return Route.UNKNOWN
    seen.add(id(application))
    routed = getattr(application, ROUTED_PATH_ATTRIBUTE, None)
    if isinstance(routed, str):  # built by get_asgi_application()
        return Route.RT if routed == path else Route.NO_MATCH
    if isinstance(application, ProtocolTypeRouter):
        websocket = application.application_mapping.get("websocket")
        if websocket is None:
            return Route.OTHER
        return _route(websocket, path, depth + 1, seen)
    if isinstance(application, URLRouter):
        remaining = path.lstrip("/")
        routes: list[Any] = list(application.routes)
        for route in routes:
            match = route.pattern.match(remaining)
            if match:
                found = _route(route.callback, match[0], depth + 1, seen)
                if found != Route.NO_MATCH:
                    return found
        return Route.NO_MATCH
    consumer = getattr(application, "consumer_class", None)
    if isinstance(consumer, type):
        return Route.RT if issubclass(consumer, RTConsumer) else Route.OTHER
    if isinstance(application, ASGIHandler) and type(application).__module__.startswith("django."):
        return Route.OTHER  # Django's own: HTTP only
    inner = [getattr(application, name, None) for name in _WRAPPED_ATTRIBUTES]
    inner += list(getattr(application, "__dict__", {}).values())
    inner += [cell.cell_contents for cell in getattr(application, "__closure__", None) or ()]
    for candidate in inner:
        if candidate is not None and callable(candidate) and not isinstance(candidate, type):
            found = _route(candidate, path, depth + 1, seen)
            if found != Route.UNKNOWN:
                return found
    return Route.UNKNOWN


def _asgi_application() -> tuple[str, Any] | None:
    """The project's ASGI application and what names it, or ``None`` when it cannot be
    found or imported (then nothing is said: whatever serves the project is unknown)."""
    name = getattr(settings, "ASGI_APPLICATION", None)
    if not name:
        root = str(getattr(settings, "ROOT_URLCONF", "") or "").partition(".")[0]
        if not root:
            return None
        module = f"{root}.asgi"
        try:
            if importlib.util.find_spec(module) is None:
                return None
        except (ImportError, ValueError):
            return None
        name = f"{module}.application"
    try:
        return str(name), import_string(str(name))
    except Exception:  # an application that cannot be imported here: not this check's
        return None


@register(Tags.compatibility)
def check_asgi_application(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    found = _asgi_application()
    if found is None:
        return []
    name, application = found
    path = rt_settings.WEBSOCKET_PATH
    route = websocket_route(application, path)
    if route == Route.RT:
        return []
    where = (
        f"ASGI_APPLICATION {name!r}"
        if getattr(settings, "ASGI_APPLICATION", None)
        else f"{name!r} (ASGI_APPLICATION is not set)"
    )
    hint = (
        "Build it with django_rt.asgi.get_asgi_application() (pass "
        "websocket_urlpatterns=[...] for your own consumers), or route "
        f"path({path.lstrip('/')!r}, RTConsumer.as_asgi()) in the 'websocket' router of its "
        "ProtocolTypeRouter (django_rt.consumer.RTConsumer, behind Channels' "
        "AuthMiddlewareStack)."
    )
    if route == Route.UNKNOWN:
        return [
            Warning(
                f"django-rt cannot find its consumer in {where} (a "
                f"{type(application).__name__} it cannot look into): unless it routes "
                f"WebSockets at {path!r} to django-rt's consumer, pages stay static.",
                hint=hint + " If it does, silence with SILENCED_SYSTEM_CHECKS = "
                "['django_rt.W005'].",
                id="django_rt.W005",
            )
        ]
    return [
        Warning(
            f"{_sentence(where)} does not route WebSockets at {path!r} (WEBSOCKET_PATH) to "
            "django-rt's consumer: pages load, but their sockets are refused and they stay "
            "static.",
            hint=hint,
            id="django_rt.W005",
        )
    ]


# W006: uvicorn without a WebSocket library -------------------------------------------


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _daphne_serves(argv: Sequence[str]) -> bool:
    program = _program(argv)
    return program == "daphne" or (_runs_runserver(argv) and apps.is_installed("daphne"))


def check_websocket_library(argv: Sequence[str] | None = None) -> list[CheckMessage]:
    """uvicorn answers a WebSocket handshake as a plain GET when neither ``websockets``
    nor ``wsproto`` is installed: Django logs ``Not Found: /rt/ws/``."""
    argv = sys.argv if argv is None else argv
    if not _importable("uvicorn") or _daphne_serves(argv):
        return []
    if _importable("websockets") or _importable("wsproto"):
        return []
    return [
        Warning(
            "uvicorn is installed without a WebSocket library (websockets or wsproto): "
            "under uvicorn, the page's socket becomes a plain GET (Django logs 'Not Found: "
            f"{rt_settings.WEBSOCKET_PATH}', django-rt answers it 426) and pages stay "
            "static.",
            hint='pip install "uvicorn[standard]" (or pip install websockets).',
            id="django_rt.W006",
        )
    ]


@register(Tags.compatibility)
def check_uvicorn(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return check_websocket_library()


# W007: nothing serves the client script once DEBUG is off -----------------------------


@register(Tags.compatibility, deploy=True)
def check_static_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``get_asgi_application()`` serves static files under ``DEBUG`` only."""
    if settings.DEBUG or not apps.is_installed("django.contrib.staticfiles"):
        return []
    if any(str(path).startswith("whitenoise.") for path in settings.MIDDLEWARE):
        return []
    url = str(settings.STATIC_URL or "")
    if url.startswith(("http://", "https://", "//")):
        return []  # another host serves it (a CDN, a storage's URL)
    from .views import client_script  # rt.min.js, unless DJANGO_RT['SCRIPT'] says otherwise

    return [
        Warning(
            f"DEBUG is off and WhiteNoise is not in MIDDLEWARE: nothing in this project "
            f"serves STATIC_URL ({url!r}). collectstatic alone leaves "
            f"{url}{client_script()} answering 404, and django-rt pages static, unless "
            "a proxy serves STATIC_ROOT at STATIC_URL.",
            hint="Serve STATIC_ROOT at STATIC_URL from the proxy in front (nginx: location "
            f"{url} {{ alias /path/to/STATIC_ROOT/; }}), or add "
            "'whitenoise.middleware.WhiteNoiseMiddleware' right after SecurityMiddleware. "
            "If a proxy serves it, silence with SILENCED_SYSTEM_CHECKS = ['django_rt.W007'].",
            id="django_rt.W007",
        )
    ]
