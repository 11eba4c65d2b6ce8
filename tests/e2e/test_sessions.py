"""Sessions end, access is revoked, connections age: what the browser does about it, in
Chromium against a real ASGI server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

from tests.testapp.models import Entry

from .conftest import new_page, open_page

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in(browser: Any, asgi_server: Any) -> Iterator[Any]:
    """A browser context signed in as a new user (``context.user``)."""
    contexts = []

    def sign_in(username: str = "alice", permission: str | None = None) -> Any:
        user = User.objects.create_user(username, password="pw")
        if permission is not None:
            user.user_permissions.add(Permission.objects.get(codename=permission))
        client = Client()
        client.force_login(user)
        context = browser.new_context()
        context.set_default_timeout(10_000)
        cookie = client.cookies["sessionid"].value
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": asgi_server.url}])
        context.user = user
        contexts.append(context)
        return context

    yield sign_in
    for context in contexts:
        context.close()


def marked(page: Any) -> Any:
    """A page that forgets ``window.marked`` when it reloads."""
    page.evaluate("window.marked = true")
    return page


def post(page: Any, path: str) -> None:
    status = page.evaluate(
        "(path) => fetch(path, {method: 'POST', credentials: 'same-origin'}).then((r) => r.status)",
        path,
    )
    assert status == 200


def test_signing_out_in_another_tab_sends_the_page_to_the_login_page(signed_in, asgi_server):
    context = signed_in()
    page = marked(open_page(new_page(context), asgi_server.url + "/sec/private/"))
    other = open_page(new_page(context), asgi_server.url + "/sec/entries/")
    post(other, "/sec/logout/")
    page.wait_for_url("**/sec/login/?next=/sec/private/")
    assert page.text_content("#login") == "Log in"
    assert page.errors == []


def test_a_password_change_in_another_tab_reloads_the_page_still_signed_in(signed_in, asgi_server):
    context = signed_in()
    page = marked(open_page(new_page(context), asgi_server.url + "/sec/private/"))
    other = open_page(new_page(context), asgi_server.url + "/sec/entries/")
    post(other, "/sec/password/")  # update_session_auth_hash(): a new session key
    page.wait_for_function("window.marked === undefined")
    page.wait_for_selector("html.rt-connected")
    assert page.url.endswith("/sec/private/")
    page.click("#whoami")
    page.wait_for_selector("#out:text-is('alice')")


def test_a_deactivated_user_stops_seeing_changes_and_goes_to_the_login_page(signed_in, asgi_server):
    context = signed_in()
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 0}):
        page = marked(open_page(new_page(context), asgi_server.url + "/sec/private/"))
        Entry.objects.create(name="visible")
        page.wait_for_selector("#list li:text-is('visible')")
        context.user.is_active = False
        context.user.save()
        Entry.objects.create(name="private")
        page.wait_for_url("**/sec/login/?next=/sec/private/")
    assert "private" not in page.content()


def test_a_revoked_permission_stops_the_handlers_and_reloads(signed_in, asgi_server):
    context = signed_in("bob", permission="change_entry")
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 0}):
        page = marked(open_page(new_page(context), asgi_server.url + "/sec/staff/"))
        page.click("#whoami")
        page.wait_for_selector("#out:text-is('bob')")
        context.user.user_permissions.clear()
        page.evaluate("document.querySelector('#out').textContent = ''")
        page.click("#whoami")
        page.wait_for_function("window.marked === undefined")  # reloaded: the view says 403
    assert "403" in page.content() or "Forbidden" in page.content()
    assert page.query_selector("#out") is None


def test_an_old_connection_rejoins_without_a_reload(page, asgi_server):
    with override_settings(DJANGO_RT={"MAX_CONNECTION_AGE": 1}):
        marked(open_page(page, asgi_server.url + "/sec/entries/"))
        page.evaluate(
            "window.closes = [];"
            "document.addEventListener('rt:disconnected', (e) => window.closes.push(e.detail.code))"
        )
        page.wait_for_function("window.closes.length >= 2", timeout=10_000)  # twice rejoined
        assert page.evaluate("window.closes.slice(0, 2)") == [4000, 4000]
        page.wait_for_selector("html.rt-connected")
        page.click("#ping")
        page.wait_for_selector("#out:text-is('pong')")
        assert page.evaluate("window.marked") is True
        assert page.errors == []
