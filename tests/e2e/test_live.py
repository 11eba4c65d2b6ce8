"""Live data end to end: two browser pages follow the database, in Chromium, against a
real ASGI server."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from tests.testapp.models import Author, Entry

from .conftest import new_page, open_page

pytestmark = [pytest.mark.django_db(transaction=True)]


def texts(page, selector):
    return page.eval_on_selector_all(selector, "els => els.map((el) => el.textContent)")


def wait_texts(page, selector, expected):
    page.wait_for_function(
        "([selector, expected]) => JSON.stringify([...document.querySelectorAll(selector)]"
        ".map((el) => el.textContent)) === JSON.stringify(expected)",
        arg=[selector, expected],
    )


@pytest.fixture
def two_pages(context, asgi_server):
    url = asgi_server.url + "/live/entries/"
    return open_page(new_page(context), url), open_page(new_page(context), url)


def test_rename_add_delete_reorder_follow_in_both_pages(two_pages):
    a = Entry.objects.create(name="apple", position=1)
    b = Entry.objects.create(name="banana", position=2)
    # Created after the pages loaded: they join with the render that has them.
    pages = two_pages
    for page in pages:
        wait_texts(page, "#list .name", ["apple", "banana"])

    a.name = "apricot"
    a.save()
    for page in pages:
        wait_texts(page, "#list .name", ["apricot", "banana"])
        wait_texts(page, "#list .upper", ["APRICOT", "BANANA"])
        assert page.get_attribute(f"#e{a.pk}", "title") == "apricot"

    c = Entry.objects.create(name="cherry", position=3)
    for page in pages:
        wait_texts(page, "#list .name", ["apricot", "banana", "cherry"])
        wait_texts(page, "#table td", ["apricot", "banana", "cherry"])
        wait_texts(page, "#select option", ["apricot", "banana", "cherry"])
        wait_texts(page, "#count", ["3"])

    b.delete()
    for page in pages:
        wait_texts(page, "#list .name", ["apricot", "cherry"])
        wait_texts(page, "#table td", ["apricot", "cherry"])
        wait_texts(page, "#count", ["2"])

    c.position = 0
    c.save()
    for page in pages:
        wait_texts(page, "#list .name", ["cherry", "apricot"])
        wait_texts(page, "#select option", ["cherry", "apricot"])
        assert page.errors == []


def test_if_and_foreign_key_follow(two_pages):
    entry = Entry.objects.create(name="task")
    pages = two_pages
    for page in pages:
        wait_texts(page, "#list .name", ["task"])
        assert page.query_selector("#list .done") is None

    entry.done = True
    entry.save()
    for page in pages:
        page.wait_for_selector(f"#e{entry.pk} em.done")

    author = Author.objects.create(name="Ada")
    entry.author = author
    entry.save()
    for page in pages:
        wait_texts(page, "#list .author", ["Ada"])

    author.name = "Ada Lovelace"
    author.save()
    for page in pages:
        wait_texts(page, "#list .author", ["Ada Lovelace"])


def test_a_rolled_back_save_changes_nothing(two_pages):
    entry = Entry.objects.create(name="stable")
    pages = two_pages
    for page in pages:
        wait_texts(page, "#list .name", ["stable"])
    with transaction.atomic():
        entry.name = "rolled"
        entry.save()
        Entry.objects.create(name="ghost")
        transaction.set_rollback(True)
    # A committed change after it: once it shows, the rolled-back one would have too.
    Author.objects.create(name="unrelated")
    entry.refresh_from_db()
    entry.done = True
    entry.save()
    for page in pages:
        page.wait_for_selector("#list em.done")
        assert texts(page, "#list .name") == ["stable"]


def test_a_per_user_queryset_shows_nothing_of_another_user(context, browser, asgi_server):
    def logged_in_page(username):
        user = User.objects.create_user(username, password="pw")
        client = Client()
        client.force_login(user)
        own_context = browser.new_context()
        own_context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": asgi_server.url,
                }
            ]
        )
        return user, open_page(own_context.new_page(), asgi_server.url + "/live/mine/")

    alice, alice_page = logged_in_page("alice")
    bob, bob_page = logged_in_page("bob")
    try:
        Entry.objects.create(name="alice's", owner=alice)
        Entry.objects.create(name="bob's", owner=bob)
        wait_texts(alice_page, "#list .name", ["alice's"])
        wait_texts(bob_page, "#list .name", ["bob's"])
        assert "alice" not in bob_page.content()
        assert "bob's" not in alice_page.content()
    finally:
        alice_page.context.close()
        bob_page.context.close()


def test_a_change_between_page_load_and_join_still_shows(page, asgi_server):
    Entry.objects.create(name="before")

    def create_then_serve(route):
        # The page's HTML is already here; its script has not joined yet.
        Entry.objects.create(name="meanwhile")
        route.continue_()

    page.route("**/django_rt/rt*.js", create_then_serve)
    page.goto(asgi_server.url + "/live/entries/")
    page.wait_for_selector("html.rt-connected")
    wait_texts(page, "#list .name", ["before", "meanwhile"])


def test_typing_survives_patches(two_pages):
    first, second = two_pages
    first.click("#typing")
    first.keyboard.type("hello")
    Entry.objects.create(name="interrupt")
    wait_texts(first, "#list .name", ["interrupt"])
    first.keyboard.type(" world")
    assert first.input_value("#typing") == "hello world"
    assert first.evaluate("document.activeElement.id") == "typing"


def test_a_change_reaches_chromium_in_frames_written_directly(two_pages, monkeypatch):
    """The test server is uvicorn's default protocol, websockets-sansio, and Chromium
    negotiates permessage-deflate: the patch frame, built once, is written to each
    socket's transport uncompressed (``wire.py``), and both pages apply it."""
    from django_rt import wire

    written = []
    write = wire.write

    def recording(protocol, frame):
        written.append(write(protocol, frame))
        return written[-1]

    monkeypatch.setattr(wire, "write", recording)
    entry = Entry.objects.create(name="fig", position=1)
    for page in two_pages:
        wait_texts(page, "#list .name", ["fig"])
    entry.name = "date"
    entry.save()
    for page in two_pages:
        wait_texts(page, "#list .name", ["date"])
    assert written.count(True) >= 2, written
