"""``django_rt.asgi.get_asgi_application()``: HTTP, static files in DEBUG, WebSocket routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import path

import django_rt
from django_rt.asgi import SERVER_SEND, get_asgi_application
from django_rt.protocol import CONFIG_ATTRIBUTE

RT_JS = Path(django_rt.__file__).resolve().parent / "static" / "django_rt" / "rt.js"
HOST = [(b"host", b"testserver")]
ORIGIN = [(b"origin", b"http://testserver"), *HOST]


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=f"hello {self.scope['url_route']['kwargs'].get('name', '')}")


async def http_get(application: Any, url: str) -> dict[str, Any]:
    """Like ``HttpCommunicator.get_response``, but also for a streamed ``FileResponse``,
    whose last ``http.response.body`` message may omit ``body`` (it defaults to b"")."""
    communicator = HttpCommunicator(application, "GET", url, headers=HOST)
    await communicator.send_input({"type": "http.request", "body": b""})
    response = await communicator.receive_output(timeout=5)
    assert response["type"] == "http.response.start"
    response["body"] = b""
    while True:
        chunk = await communicator.receive_output(timeout=5)
        assert chunk["type"] == "http.response.body"
        response["body"] += chunk.get("body", b"")
        if not chunk.get("more_body", False):
            break
    await communicator.wait(timeout=5)
    return response


def header(response: dict[str, Any], name: bytes) -> str:
    return dict((key.lower(), value) for key, value in response["headers"]).get(name, b"").decode()


async def try_connect(application: Any, url: str, headers=ORIGIN, timeout: float = 5) -> bool:
    communicator = WebsocketCommunicator(application, url, headers=headers)
    connected, _ = await communicator.connect(timeout=timeout)
    if connected:
        await communicator.disconnect()
    return connected


@pytest.fixture(scope="module")
def debug_application() -> Any:
    with override_settings(DEBUG=True):
        return get_asgi_application()


# HTTP -----------------------------------------------------------------------------


async def test_http_page_is_served(application):
    response = await http_get(application, "/")
    assert response["status"] == 200
    assert header(response, b"content-type") == "text/html; charset=utf-8"
    body = response["body"].decode()
    assert CONFIG_ATTRIBUTE in body and '<script src="/static/django_rt/rt.min.js" defer>' in body


async def test_http_unknown_page_is_404(application):
    assert (await http_get(application, "/no/such/page/"))["status"] == 404


@pytest.mark.parametrize("name", ["rt.js", "rt.min.js"])
async def test_client_script_is_served_with_debug(debug_application, name):
    # Needs src/django_rt/static/django_rt/rt.js (the client) and rt.min.js to exist.
    path = RT_JS.with_name(name)
    response = await http_get(debug_application, f"/static/django_rt/{name}")
    assert response["status"] == 200, f"{path} is not served (does it exist? {path.exists()})"
    assert "javascript" in header(response, b"content-type")
    assert response["body"] == path.read_bytes()


async def test_static_files_are_served_with_debug_only(tmp_path, debug_application, application):
    (tmp_path / "probe.js").write_text("console.log('probe');\n")
    with override_settings(STATICFILES_DIRS=[tmp_path]):
        served = await http_get(debug_application, "/static/probe.js")
        assert served["status"] == 200
        assert "javascript" in header(served, b"content-type")
        assert served["body"] == b"console.log('probe');\n"
        # Without DEBUG when the application was built, the app serves no static files.
        assert (await http_get(application, "/static/probe.js"))["status"] == 404


async def test_client_script_is_not_served_without_debug(application):
    response = await http_get(application, "/static/django_rt/rt.js")
    assert response["status"] == 404
    assert "javascript" not in header(response, b"content-type")


async def test_pages_are_still_served_with_debug(debug_application):
    response = await http_get(debug_application, "/")
    assert response["status"] == 200 and CONFIG_ATTRIBUTE in response["body"].decode()


# WebSockets -----------------------------------------------------------------------


async def test_websocket_path_is_routed(application):
    assert await try_connect(application, "/rt/ws/")


async def test_websocket_to_an_unknown_path_is_closed_cleanly(application):
    communicator = WebsocketCommunicator(application, "/not/a/socket/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=0.5)
    assert not connected


@pytest.mark.parametrize(
    "headers",
    [
        [(b"origin", b"http://evil.example"), *HOST],
        [(b"origin", b"http://testserver.evil.example"), *HOST],
        [(b"origin", b"null"), *HOST],
        HOST,  # no Origin at all
    ],
    ids=["foreign", "lookalike", "null", "missing"],
)
async def test_websocket_from_a_foreign_origin_is_refused(application, headers):
    communicator = WebsocketCommunicator(application, "/rt/ws/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_websocket_from_an_allowed_host_origin_is_accepted(application):
    for origin in (b"http://testserver", b"https://localhost:8443", b"http://127.0.0.1:8000"):
        assert await try_connect(application, "/rt/ws/", [(b"origin", origin), *HOST]), origin


async def test_extra_websocket_urlpatterns_are_routed():
    application = get_asgi_application([path("extra/<str:name>/", EchoConsumer.as_asgi())])
    communicator = WebsocketCommunicator(application, "/extra/ann/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert await communicator.receive_from(timeout=5) == "hello ann"
    await communicator.disconnect()
    # django-rt's own route is still there, and the extra routes are behind the origin check.
    assert await try_connect(application, "/rt/ws/")
    foreign = WebsocketCommunicator(
        application, "/extra/ann/", headers=[(b"origin", b"http://evil.example")]
    )
    assert not (await foreign.connect(timeout=5))[0]


class ScopeConsumer(AsyncWebsocketConsumer):
    seen: list[Any] = []

    async def connect(self) -> None:
        self.seen.append(self.scope.get(SERVER_SEND))
        await self.accept()


async def test_websocket_consumers_get_the_servers_own_send():
    application = get_asgi_application([path("scope/", ScopeConsumer.as_asgi())])
    communicator = WebsocketCommunicator(application, "/scope/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    # What the server called the application with, not a middleware's wrapper of it:
    # django-rt's frames skip the wrappers (see ``RTConsumer._write_now``).
    assert ScopeConsumer.seen == [communicator.output_queue.put]
    await communicator.disconnect()


async def test_websocket_path_follows_the_setting():
    with override_settings(DJANGO_RT={"WEBSOCKET_PATH": "/live/socket/"}):
        application = get_asgi_application()
    assert await try_connect(application, "/live/socket/")
    assert not await try_connect(application, "/rt/ws/")


@pytest.mark.parametrize(
    "value",
    [{"WEBSOCKET_PATH": "rt/ws/"}, {"TOKEN_MAX_AGE": 0}, {"UNKNOWN": 1}, ["not", "a", "dict"]],
)
def test_bad_setting_refuses_to_build_the_application(value):
    with override_settings(DJANGO_RT=value), pytest.raises(ImproperlyConfigured, match="DJANGO_RT"):
        get_asgi_application()


def awaiting(task: Any) -> list[str]:
    """The coroutines that ``task`` is suspended in, outermost first."""
    names = []
    awaited = task.get_coro()
    while awaited is not None and hasattr(awaited, "cr_code"):
        names.append(awaited.cr_code.co_qualname)
        awaited = awaited.cr_await
    return names


async def test_an_open_socket_keeps_its_consumer_alone(application):
    before = asyncio.all_tasks()
    communicator = WebsocketCommunicator(application, "/rt/ws/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await asyncio.sleep(0.05)
    # The middleware (origin, cookies, session, user, routes) made the scope and ended:
    # the socket waits in its consumer, with no task of its own to read its frames.
    assert awaiting(communicator.future) == [
        "ProtocolTypeRouter.__call__",
        "_WebSocketEntry.__call__",
        "AsyncConsumer.as_asgi.<locals>.app",
        "RTConsumer.__call__",
        "Queue.get",  # the communicator's receive
    ]
    assert asyncio.all_tasks() - before == {communicator.future}
    await communicator.disconnect()


class SessionConsumer(AsyncWebsocketConsumer):
    seen: list[Any] = []

    async def connect(self) -> None:
        self.seen.append((self.scope["user"].is_anonymous, "session" in self.scope))
        await self.accept()


async def test_other_routes_still_run_inside_the_middleware():
    application = get_asgi_application([path("session/", SessionConsumer.as_asgi())])
    communicator = WebsocketCommunicator(application, "/session/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert SessionConsumer.seen == [(True, True)]
    assert "AuthMiddleware.__call__" in awaiting(communicator.future)
    await communicator.disconnect()
