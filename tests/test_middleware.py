"""The socket's request goes through the project's ``MIDDLEWARE`` as the page's did: what
middleware set is there for the join, for every later render (in the hub's thread) and
for every handler (``django_rt.middleware``)."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, override_settings

from django_rt.live.recorder import strip_markers
from django_rt.protocol import VERSION, CloseCode, CommandKey, ErrorCode, Frame, Key, PatchKey
from django_rt.tokens import PageToken

from .helpers import event, join, page_config
from .testapp import integration
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]

SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    SESSION,
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tests.testapp.integration.flavour_middleware",
    "tests.testapp.integration.ToppingMiddleware",
    "tests.testapp.integration.timezone_middleware",
    "tests.testapp.integration.urlconf_middleware",
    "tests.testapp.integration.refusing_middleware",
]
LANGUAGES = [("en", "English"), ("de", "Deutsch")]


def project(*extra_first: str, extra_last: tuple[str, ...] = (), **more):
    return override_settings(
        MIDDLEWARE=[*extra_first, *MIDDLEWARE, *extra_last], LANGUAGES=LANGUAGES, **more
    )


def load(client: Client, url: str) -> tuple[str, dict]:
    """The page as it reads (no markers), and its configuration."""
    response = client.get(url)
    assert response.status_code == 200, response
    html = response.content.decode()
    return strip_markers(html), page_config(html)


def page_socket(application, client: Client, **headers: str) -> WebsocketCommunicator:
    """The page's socket: its browser's cookies and the headers it sends."""
    sent = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if client.cookies:
        cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
        sent.append((b"cookie", cookie.encode()))
    sent += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return WebsocketCommunicator(application, "/rt/ws/", headers=sent)


async def joined(application, client, config, **headers):
    communicator = page_socket(application, client, **headers)
    reply = await join(communicator, config["token"], config["hash"])
    assert reply[Key.TYPE] == Frame.JOINED, reply
    return communicator


async def patch(communicator):
    frame = await communicator.receive_json_from(timeout=5)
    assert frame[Key.TYPE] == Frame.PATCH, frame
    return frame[Key.OPS]


def content(reply):
    assert reply[Key.TYPE] == Frame.REPLY, reply
    return reply[Key.COMMANDS][0][CommandKey.CONTENT]


async def refused(communicator, token):
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({Key.TYPE: Frame.JOIN, Key.VERSION: VERSION, Key.TOKEN: token})
    error = await communicator.receive_json_from(timeout=5)
    closed = await communicator.receive_output(timeout=5)
    assert error[Key.TYPE] == Frame.ERROR, error
    return error, closed


# language, time zone, request attributes ---------------------------------------------


async def test_a_german_page_stays_german_after_the_join_and_for_rows_added_later(application):
    await sync_to_async(Entry.objects.create)(name="first")
    with project():
        client = Client(headers={"accept-language": "de"})
        html, config = await sync_to_async(load)(client, "/int/page/")
        assert '<p id="language">de de</p>' in html
        assert "Januar 5" in html and '<span class="done">Nein</span>' in html
        communicator = await joined(application, client, config, accept_language="de")
        # The join rendered the page in German too: no morph to English.
        assert await communicator.receive_nothing(timeout=0.5)
        second = await sync_to_async(Entry.objects.create)(name="second", done=True)
        (op,) = await patch(communicator)
        assert op[PatchKey.KEYS][-1] == str(second.pk)
        assert '<span class="done">Ja</span>' in strip_markers(op[PatchKey.ITEMS][str(second.pk)])
        assert content(await event(communicator, "describe")).startswith("de ")
        assert "Ja,Nein,Vielleicht" in content(await event(communicator, "describe", ref=2))
        assert content(await event(communicator, "describe_async", ref=3)).startswith("de ")
        await communicator.disconnect()


async def test_the_pages_time_zone_is_active_for_the_join_updates_and_handlers(application):
    await sync_to_async(Entry.objects.create)(name="first")
    with project():
        client = Client()
        client.cookies["tz"] = "Asia/Tokyo"
        html, config = await sync_to_async(load)(client, "/int/page/")
        assert "January 5 21:00" in html and '<span class="zone">JST</span>' in html
        communicator = await joined(application, client, config)
        assert await communicator.receive_nothing(timeout=0.5)
        second = await sync_to_async(Entry.objects.create)(name="second")
        (op,) = await patch(communicator)
        assert '<span class="zone">JST</span>' in op[PatchKey.ITEMS][str(second.pk)]
        assert "Asia/Tokyo" in content(await event(communicator, "describe"))
        assert content(await event(communicator, "describe_async", ref=2)).endswith(" Asia/Tokyo")
        await communicator.disconnect()


async def test_attributes_that_middleware_set_reach_the_template_and_the_handlers(application):
    with project():
        client = Client(headers={"x-flavour": "mint", "x-topping": "sprinkles"})
        html, config = await sync_to_async(load)(client, "/int/page/")
        assert '<p id="flavour">mint sprinkles</p>' in html
        communicator = await joined(
            application, client, config, x_flavour="mint", x_topping="sprinkles"
        )
        assert await communicator.receive_nothing(timeout=0.5)
        assert " mint sprinkles " in content(await event(communicator, "describe"))
        await communicator.disconnect()
        # The socket's own request is processed, not a copy of the page's.
        communicator = await joined(application, client, config, x_flavour="lemon")
        (op,) = await patch(communicator)
        assert '<p id="flavour">lemon none</p>' in strip_markers(op[PatchKey.HTML])
        await communicator.disconnect()


async def test_a_urlconf_that_middleware_chose_holds_for_later_renders(application):
    await sync_to_async(Entry.objects.create)(name="first")
    with project():
        client = Client(headers={"x-urlconf": "integration"})
        html, config = await sync_to_async(load)(client, "/page/")
        communicator = await joined(application, client, config, x_urlconf="integration")
        assert await communicator.receive_nothing(timeout=0.5)
        entry = await sync_to_async(Entry.objects.create)(name="linked")
        (op,) = await patch(communicator)
        assert '<a href="/page/">' in op[PatchKey.ITEMS][str(entry.pk)]
        await communicator.disconnect()


# middleware that answers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("refuse", "expected"),
    [("forbidden", "answered 403 before the view ran"), ("redirect", "302 before the view ran")],
)
async def test_middleware_that_answers_instead_of_the_view_refuses_the_join(
    application, refuse, expected
):
    with project():
        client = Client()
        _, config = await sync_to_async(load)(client, "/int/page/")
        error, closed = await refused(
            page_socket(application, client, x_refuse=refuse), config["token"]
        )
    assert error[Key.CODE] == ErrorCode.FORBIDDEN and expected in error[Key.MESSAGE], error
    assert closed == {"type": "websocket.close", "code": CloseCode.FORBIDDEN}
    if refuse == "redirect":
        assert "(to /elsewhere/)" in error[Key.MESSAGE]


async def test_login_required_middleware_applies_to_the_socket(application):
    alice = await sync_to_async(User.objects.create_user)("alice", password="pw")
    required = "django.contrib.auth.middleware.LoginRequiredMiddleware"
    with project(extra_last=(required,)):
        anonymous = PageToken("tests.testapp.integration.Page", "/int/page/", "").sign()
        error, _ = await refused(page_socket(application, Client()), anonymous)
        assert error[Key.CODE] == ErrorCode.FORBIDDEN
        assert "302" in error[Key.MESSAGE] and "/login/?next=/int/page/" in error[Key.MESSAGE]
        client = Client()
        await sync_to_async(client.force_login)(alice)
        _, config = await sync_to_async(load)(client, "/int/page/")
        communicator = await joined(application, client, config)
        assert content(await event(communicator, "whoami")).startswith("alice ")
        await communicator.disconnect()


async def test_response_middleware_runs_on_a_stand_in_that_no_cache_keeps(application):
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "django-rt-middleware-tests",
        }
    }
    with project(
        "django.middleware.cache.UpdateCacheMiddleware",
        "tests.testapp.integration.recording_middleware",
        extra_last=("django.middleware.cache.FetchFromCacheMiddleware",),
        CACHES=caches,
    ):
        integration.RESPONSES.clear()
        client = Client()
        html, config = await sync_to_async(load)(client, "/int/uncached/")
        assert not client.cookies  # the socket and the page share one cache key
        communicator = await joined(application, client, config)
        assert integration.RESPONSES == [200, 204]
        await communicator.disconnect()
        again = await sync_to_async(client.get)("/int/uncached/")
        assert again.status_code == 200 and '<ul id="list">' in again.content.decode()


# CSRF, messages, sessions -------------------------------------------------------------

CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


async def test_a_form_rendered_again_carries_a_token_of_the_browsers_own_secret(application):
    await sync_to_async(Entry.objects.create)(name="first")
    with project():
        client = Client(enforce_csrf_checks=True)
        _, config = await sync_to_async(load)(client, "/int/forms/")
        assert "csrftoken" in client.cookies
        communicator = await joined(application, client, config)
        second = await sync_to_async(Entry.objects.create)(name="second")
        (op,) = await patch(communicator)
        token = CSRF_VALUE.search(op[PatchKey.ITEMS][str(second.pk)]).group(1)
        await communicator.disconnect()
        posted = await sync_to_async(client.post)("/int/post/", {"csrfmiddlewaretoken": token})
    assert posted.status_code == 200, posted


async def test_the_socket_neither_shows_nor_consumes_the_next_pages_messages(application):
    storage = "django.contrib.messages.storage.session.SessionStorage"
    with project(MESSAGE_STORAGE=storage):
        client = Client()
        await sync_to_async(client.get)("/int/flash/?text=first")
        html, config = await sync_to_async(load)(client, "/int/page/")
        assert "<li>first</li>" in html  # the page's own request showed it
        await sync_to_async(client.get)("/int/flash/?text=second")  # for the next page
        communicator = await joined(application, client, config)
        (op,) = await patch(communicator)  # the join renders without messages: a morph
        assert "<li>" not in op[PatchKey.HTML].split('<ol id="notes">')[1].split("</ol>")[0]
        await communicator.disconnect()
        html, _ = await sync_to_async(load)(client, "/int/page/")
    assert "<li>second</li>" in html


async def test_the_session_and_user_are_loaded_once_and_are_the_sockets_own(
    application, monkeypatch
):
    alice = await sync_to_async(User.objects.create_user)("alice", password="pw")
    client = Client()
    await sync_to_async(client.force_login)(alice)
    with project():
        _, config = await sync_to_async(load)(client, "/int/page/")
        loads = []
        load_session = SessionStore.load

        def counted(self):
            loads.append(self.session_key)
            return load_session(self)

        monkeypatch.setattr(SessionStore, "load", counted)
        communicator = page_socket(application, client)
        assert (await communicator.connect())[0]
        loads.clear()  # Channels' AuthMiddleware loads it at the handshake
        await communicator.send_json_to(
            {
                Key.TYPE: Frame.JOIN,
                Key.VERSION: VERSION,
                Key.TOKEN: config["token"],
                Key.HASH: config["hash"],
            }
        )
        assert (await communicator.receive_json_from(timeout=5))[Key.TYPE] == Frame.JOINED
        # Loaded afresh by the join, and not again by SessionMiddleware or the view.
        assert loads == [client.session.session_key]
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert content(await event(communicator, "whoami")) == f"alice True {key}"
        await communicator.disconnect()


def test_an_activation_sets_what_differs_and_restores_it_afterwards():
    from zoneinfo import ZoneInfo

    from django.utils import timezone, translation

    from django_rt.middleware import Activation

    paris = ZoneInfo("Europe/Paris")
    page = Activation(language="de", timezone=paris)
    with translation.override("fr"):
        with page.active():
            assert translation.get_language() == "de"
            assert timezone.get_current_timezone() is paris
            # What the code in between activates and leaves active (a view that
            # calls translation.activate()): the page's own activation sets it back.
            translation.activate("en")
            with page.active():
                assert translation.get_language() == "de"
            assert translation.get_language() == "en"
        assert translation.get_language() == "fr"
        assert timezone.get_current_timezone() is not paris


def test_an_activation_already_in_force_changes_nothing():
    from zoneinfo import ZoneInfo

    from django.utils import timezone, translation

    from django_rt.middleware import Activation

    paris = ZoneInfo("Europe/Paris")
    page = Activation(language="de", timezone=paris)
    with translation.override("de"), timezone.override(paris):
        with page.active():
            translation.activate("fr")
        # Nothing was overridden, so nothing is restored: the outer scope's own
        # override is what ends the change.
        assert translation.get_language() == "fr"
        with page.active():
            assert translation.get_language() == "de"  # differs again: set again
        assert translation.get_language() == "fr"
