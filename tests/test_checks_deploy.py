"""System checks for configurations that serve pages but not their sockets: W001 (only
under runserver), W005 (the ASGI application does not route the socket), W006 (uvicorn
without a WebSocket library), W007 (nothing serves the client once DEBUG is off), and
the 426 answer to a handshake that reached the HTTP application."""

from __future__ import annotations

import logging
import socket
import sys
import textwrap
import threading
import time

import pytest
import uvicorn
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier
from channels.testing import HttpCommunicator
from django.core import checks
from django.core.asgi import get_asgi_application as django_asgi_application
from django.test import modify_settings, override_settings
from django.urls import path, re_path

from django_rt import asgi
from django_rt import checks as rt_checks
from django_rt.checks import (
    Route,
    check_asgi_application,
    check_settings,
    check_static_deploy,
    check_websocket_library,
    warn_at_start_up,
    websocket_route,
)
from django_rt.consumer import RTConsumer

from .e2e.servers import free_port

WS = "/rt/ws/"


def ids(messages):
    return [message.id for message in messages]


# W001: only under runserver ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "runserver"],
        ["/venv/bin/django-admin", "runserver", "0:8000"],
        ["/venv/lib/python3.13/site-packages/django/__main__.py", "runserver"],
    ],
)
def test_w001_warns_under_runserver_with_debug_and_without_daphne(monkeypatch, argv):
    monkeypatch.setattr(sys, "argv", argv)
    with override_settings(DEBUG=True):
        (warning,) = check_settings()
    assert warning.id == "django_rt.W001"
    assert "pip install daphne" in warning.hint and "uvicorn yourproject.asgi" in warning.hint


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "check"],
        ["manage.py", "migrate"],
        ["/venv/bin/uvicorn", "mysite.asgi:application"],
        ["/venv/bin/pytest"],
        [],
    ],
)
def test_w001_is_quiet_for_a_project_that_does_not_run_runserver(monkeypatch, argv):
    monkeypatch.setattr(sys, "argv", argv)
    with override_settings(DEBUG=True):
        assert check_settings() == []


def test_w001_is_quiet_without_debug_or_with_daphne(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
    with override_settings(DEBUG=False):
        assert check_settings() == []
    with (
        modify_settings(INSTALLED_APPS={"prepend": "daphne"}),
        override_settings(DEBUG=True, ASGI_APPLICATION="mysite.asgi.application"),
    ):
        assert "django_rt.W001" not in ids(check_settings())


# W005: where the ASGI application sends the socket ------------------------------------


class OtherConsumer(AsyncWebsocketConsumer):
    pass


class MyConsumer(RTConsumer):
    pass


def websocket(*routes):
    return ProtocolTypeRouter(
        {
            "http": django_asgi_application(),
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(list(routes)))),
        }
    )


def function_middleware(app):
    async def middleware(scope, receive, send):
        return await app(scope, receive, send)

    return middleware


class Opaque:
    """An ASGI application that keeps nothing this check can follow."""

    async def __call__(self, scope, receive, send):  # pragma: no cover
        pass


def test_get_asgi_application_routes_the_socket(application):
    assert websocket_route(application, WS) == Route.RT
    with override_settings(DJANGO_RT={"WEBSOCKET_PATH": "/live/"}):
        assert websocket_route(application, "/live/") == Route.NO_MATCH  # built for /rt/ws/


@pytest.mark.parametrize(
    ("application", "route"),
    [
        (websocket(path("rt/ws/", RTConsumer.as_asgi())), Route.RT),
        (websocket(path("rt/ws/", MyConsumer.as_asgi())), Route.RT),
        (websocket(path("rt/", URLRouter([path("ws/", RTConsumer.as_asgi())]))), Route.RT),
        (
            websocket(
                path("rt/", URLRouter([path("other/", OtherConsumer.as_asgi())])),
                path("rt/ws/", RTConsumer.as_asgi()),
            ),
            Route.RT,
        ),
        (websocket(path("chat/", OtherConsumer.as_asgi())), Route.NO_MATCH),
        (websocket(path("live/", RTConsumer.as_asgi())), Route.NO_MATCH),
        (websocket(re_path(r"", WebsocketDenier.as_asgi())), Route.OTHER),
        (
            websocket(
                re_path(r"^rt/", OtherConsumer.as_asgi()), path("rt/ws/", RTConsumer.as_asgi())
            ),
            Route.OTHER,
        ),
        (ProtocolTypeRouter({"http": django_asgi_application()}), Route.OTHER),
        (django_asgi_application(), Route.OTHER),
        (function_middleware(websocket(path("rt/ws/", RTConsumer.as_asgi()))), Route.RT),
        (Opaque(), Route.UNKNOWN),
    ],
)
def test_routers_and_wrappers_are_followed(application, route):
    assert websocket_route(application, WS) == route


@pytest.fixture
def asgi_module(tmp_path, monkeypatch):
    """Write ``<package>/asgi.py`` with ``source``; return its ASGI_APPLICATION path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made = []

    def write(source):
        package = f"rtcheck_{len(made)}_{id(tmp_path)}"
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "asgi.py").write_text(textwrap.dedent(source))
        made.append(package)
        return f"{package}.asgi.application"

    yield write
    for package in made:
        for name in [name for name in sys.modules if name.startswith(package)]:
            del sys.modules[name]


def test_an_application_built_by_django_rt_is_clean(asgi_module):
    name = asgi_module(
        """
        from django_rt.asgi import get_asgi_application
        application = get_asgi_application()
        """
    )
    with override_settings(ASGI_APPLICATION=name):
        assert check_asgi_application() == []


def test_djangos_own_application_warns(asgi_module):
    name = asgi_module(
        """
        from django.core.asgi import get_asgi_application
        application = get_asgi_application()
        """
    )
    with override_settings(ASGI_APPLICATION=name):
        (warning,) = check_asgi_application()
    assert warning.id == "django_rt.W005" and isinstance(warning, checks.Warning)
    assert warning.msg.startswith(
        f"ASGI_APPLICATION {name!r} does not route WebSockets at '/rt/ws/'"
    )
    assert "get_asgi_application()" in warning.hint and "path('rt/ws/', RTConsumer" in warning.hint


def test_without_asgi_application_the_urlconfs_package_is_looked_at(asgi_module):
    name = asgi_module(
        """
        from channels.routing import ProtocolTypeRouter
        from django.core.asgi import get_asgi_application
        application = ProtocolTypeRouter({"http": get_asgi_application()})
        """
    )
    package = name.partition(".")[0]
    with override_settings(ROOT_URLCONF=f"{package}.urls"):
        (warning,) = check_asgi_application()
    assert warning.msg.startswith(f"{name!r} (ASGI_APPLICATION is not set) does not route")


def test_an_application_it_cannot_look_into_warns_that_it_cannot_tell(asgi_module):
    name = asgi_module(
        """
        class Opaque:
            async def __call__(self, scope, receive, send):
                pass
        application = Opaque()
        """
    )
    with override_settings(ASGI_APPLICATION=name):
        (warning,) = check_asgi_application()
    assert warning.id == "django_rt.W005"
    assert "cannot find its consumer" in warning.msg and "Opaque" in warning.msg
    assert "SILENCED_SYSTEM_CHECKS = ['django_rt.W005']" in warning.hint


def test_an_application_that_cannot_be_imported_is_skipped_quietly(asgi_module):
    name = asgi_module("raise RuntimeError('needs the production environment')\n")
    with override_settings(ASGI_APPLICATION=name):
        assert check_asgi_application() == []
    with override_settings(ASGI_APPLICATION="no.such.module.application"):
        assert check_asgi_application() == []
    assert check_asgi_application() == []  # the test project: no ASGI_APPLICATION, no tests.asgi


def test_the_check_is_registered():
    assert check_asgi_application in checks.registry.registry.get_checks()


# W006: uvicorn without a WebSocket library -------------------------------------------


@pytest.fixture
def installed(monkeypatch):
    def only(*modules):
        monkeypatch.setattr(rt_checks, "_importable", lambda module: module in modules)

    return only


def test_uvicorn_without_a_websocket_library_warns(installed):
    installed("uvicorn")
    (warning,) = check_websocket_library(["/venv/bin/uvicorn", "mysite.asgi:application"])
    assert warning.id == "django_rt.W006"
    assert "Not Found: /rt/ws/" in warning.msg
    assert warning.hint.startswith('pip install "uvicorn[standard]"')
    assert ids(check_websocket_library(["manage.py", "check"])) == ["django_rt.W006"]


@pytest.mark.parametrize("library", ["websockets", "wsproto"])
def test_uvicorn_with_a_websocket_library_is_clean(installed, library):
    installed("uvicorn", library)
    assert check_websocket_library(["/venv/bin/uvicorn", "app"]) == []


def test_without_uvicorn_or_under_daphne_nothing_is_said(installed):
    installed()
    assert check_websocket_library(["/venv/bin/uvicorn", "app"]) == []
    installed("uvicorn")
    assert check_websocket_library(["/venv/bin/daphne", "app"]) == []
    with modify_settings(INSTALLED_APPS={"prepend": "daphne"}):
        assert check_websocket_library(["manage.py", "runserver"]) == []


def test_w006_is_logged_at_start_up_under_uvicorn(installed, monkeypatch, caplog):
    installed("uvicorn")
    monkeypatch.setattr(sys, "argv", ["/venv/bin/uvicorn", "app", "--ws-max-size", "131072"])
    with caplog.at_level(logging.WARNING, logger="django_rt"):
        warn_at_start_up()
    (record,) = caplog.records
    assert "(django_rt.W006)" in record.getMessage() and "uvicorn[standard]" in record.getMessage()


# W007: static files once DEBUG is off -------------------------------------------------


def test_without_whitenoise_the_deploy_check_warns():
    (warning,) = check_static_deploy()
    assert warning.id == "django_rt.W007"
    assert "collectstatic alone leaves /static/django_rt/rt.min.js answering 404" in warning.msg
    assert "WhiteNoiseMiddleware" in warning.hint and "['django_rt.W007']" in warning.hint
    assert "django_rt.W007" not in ids(checks.run_checks())
    assert "django_rt.W007" in ids(checks.run_checks(include_deployment_checks=True))


def test_whitenoise_debug_or_another_host_serve_it():
    with modify_settings(MIDDLEWARE={"append": "whitenoise.middleware.WhiteNoiseMiddleware"}):
        assert check_static_deploy() == []
    with override_settings(DEBUG=True):
        assert check_static_deploy() == []
    with override_settings(STATIC_URL="https://cdn.example.com/static/"):
        assert check_static_deploy() == []
    with modify_settings(INSTALLED_APPS={"remove": ["django.contrib.staticfiles"]}):
        assert check_static_deploy() == []


# a handshake that reached the HTTP application ----------------------------------------


async def http_get(application, url, headers):
    communicator = HttpCommunicator(
        application, "GET", url, headers=[(b"host", b"testserver"), *headers]
    )
    return await communicator.get_response(timeout=5)


@pytest.fixture
def fresh_log(monkeypatch):
    monkeypatch.setattr(asgi, "_logged", set())


UPGRADE = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"), (b"sec-websocket-key", b"x")]


@pytest.mark.django_db
async def test_a_handshake_without_a_websocket_server_is_answered_426(
    application, fresh_log, caplog
):
    with caplog.at_level(logging.ERROR, logger="django_rt"):
        for _ in range(2):
            response = await http_get(application, WS, UPGRADE)
            assert response["status"] == 426
            assert b'pip install "uvicorn[standard]"' in response["body"]
    (record,) = caplog.records  # once per process
    assert "reached Django's HTTP application" in record.getMessage()
    assert "'daphne'" in record.getMessage()


@pytest.mark.django_db
async def test_a_handshake_whose_upgrade_a_proxy_dropped_is_answered_426(application, fresh_log):
    response = await http_get(application, WS, [(b"sec-websocket-key", b"x")])
    assert response["status"] == 426 and b"proxy_set_header Upgrade" in response["body"]


@pytest.mark.django_db
async def test_other_requests_reach_django(application, fresh_log):
    assert (await http_get(application, WS, []))["status"] == 404
    assert (await http_get(application, "/chat/", UPGRADE))["status"] == 404


@pytest.mark.django_db(transaction=True)
def test_uvicorn_without_websockets_answers_the_handshake_426(application, fresh_log):
    port = free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, ws="none", log_level="critical", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(
                b"GET /rt/ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            reply = conn.recv(4096)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert reply.startswith(b"HTTP/1.1 426 "), reply
    assert b"uvicorn[standard]" in reply
