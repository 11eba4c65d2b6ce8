"""Every open page equals a reload, in Chromium: values a view picked or computed with
queries, counts over another table, values where no marker can go (title, style,
json_script, attributes, textarea, a script), a template that fails on some data, a
morph while the user types, and per-user prefetched rows that never reach another
user's socket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from tests.testapp.models import Author, Entry, Note

from .conftest import new_page, open_page

pytestmark = [pytest.mark.django_db(transaction=True)]

SHOWN = """() => ({
  title: document.title,
  text: document.body.innerText,
  values: [...document.querySelectorAll('input, textarea')].map((el) => el.value),
  titles: [...document.querySelectorAll('[title]')].map((el) => el.title),
  json: [...document.querySelectorAll('script[type="application/json"]:not([data-rt-config])')]
    .map((el) => el.textContent),
  width: document.getElementById('bar') && getComputedStyle(document.getElementById('bar')).width,
})"""


def shown(page: Any) -> dict[str, Any]:
    return page.evaluate(SHOWN)


def wait_like_a_reload(page: Any, context: Any, url: str) -> None:
    """Wait until the open page shows what a fresh load of ``url`` shows."""
    fresh = new_page(context)
    fresh.goto(url)
    expected = shown(fresh)
    fresh.close()
    try:
        page.wait_for_function(
            f"(expected) => JSON.stringify(({SHOWN})()) === JSON.stringify(expected)",
            arg=expected,
        )
    except Exception:
        assert shown(page) == expected  # says what differs
        raise


def test_values_picked_and_computed_by_queries(context, asgi_server):
    Entry.objects.create(name="first", position=2)
    url = asgi_server.url + "/truth/picked/"
    page = open_page(new_page(context), url)
    assert page.text_content("#total").startswith("1 entries")
    Entry.objects.create(name="newer", position=1, done=True)
    page.wait_for_selector("#newest:text-is('newer')")
    wait_like_a_reload(page, context, url)
    assert page.text_content("#featured") == "newer"
    assert page.text_content("#total") == "2 entries, top 2, sum 3"
    assert page.errors == []


def test_counts_over_another_table_and_the_order_they_give(context, asgi_server):
    ann, bob = Author.objects.create(name="Ann"), Author.objects.create(name="Bob")
    Entry.objects.create(name="a1", author=ann)
    url = asgi_server.url + "/truth/annotated/"
    page = open_page(new_page(context), url)
    assert page.eval_on_selector_all("#authors li", "els => els.map(e => e.dataset.n)") == [
        "1",
        "0",
    ]
    for name in ("b1", "b2"):
        Entry.objects.create(name=name, author=bob, done=True)
    page.wait_for_function(
        "() => document.querySelector('#authors li').textContent.startsWith('Bob: 2 (2 done)')"
    )
    wait_like_a_reload(page, context, url)
    assert page.get_attribute("#authors li rect", "width") == "20"
    assert page.errors == []


def test_values_where_no_marker_can_go(context, asgi_server):
    Entry.objects.create(name="one", position=1)
    Entry.objects.create(name="two", position=2)
    url = asgi_server.url + "/truth/rawtext/"
    page = open_page(new_page(context), url)
    assert page.title() == "one and 2 more"
    assert page.evaluate("first") == "one"
    Entry.objects.create(name="three", position=3)  # the count: title, style, attributes
    page.wait_for_function("() => document.title === 'one and 3 more'")
    wait_like_a_reload(page, context, url)
    assert shown(page)["width"] == "30px"
    first = Entry.objects.order_by("pk").first()
    first.name = 'uno "1"'
    first.save()  # also read by an inline script that already ran: the page reloads
    page.wait_for_function("() => window.first === 'uno \"1\"'")
    page.wait_for_selector("html.rt-connected")
    wait_like_a_reload(page, context, url)
    assert json.loads(shown(page)["json"][0]) == 'uno "1"'
    assert page.errors == []


@override_settings(DEBUG=True)
def test_a_failing_update_is_shown_then_the_page_recovers(context, asgi_server):
    entry = Entry.objects.create(name="fine")
    url = asgi_server.url + "/truth/fragile/"
    page = open_page(new_page(context), url)
    page.evaluate(
        "() => { window.rtErrors = []; document.addEventListener('rt:error',"
        " (e) => window.rtErrors.push(e.detail.code)); }"
    )
    entry.name = "explode"
    entry.save()
    page.wait_for_selector("#rt-notice")
    assert "RuntimeError" in page.text_content("#rt-notice")
    assert page.evaluate("window.rtErrors") == ["stale"]
    assert page.text_content("#entries") == "fine ok"  # old, and the page says so
    entry.name = "mended"
    entry.save()
    page.wait_for_selector("#entries li:text-is('mended ok')")
    assert page.query_selector("#rt-notice") is None  # up to date again: the notice goes
    wait_like_a_reload(page, context, url)
    assert page.errors == []


def test_a_morph_keeps_focus_and_typing_and_fires_no_event(context, asgi_server):
    Entry.objects.create(name="first", position=1)
    middle = Entry.objects.create(name="middle", position=2)
    last = Entry.objects.create(name="last", position=3)
    url = asgi_server.url + "/truth/rawtext/"
    page = open_page(new_page(context), url)
    page.evaluate(
        "() => { window.seen = []; for (const type of ['change', 'blur', 'focusout'])"
        " document.addEventListener(type, (e) => window.seen.push(type), true); }"
    )
    field = f"input[data-pk='{last.pk}']"
    page.click(field)
    page.keyboard.press("End")
    page.keyboard.type(" half-typed")
    # The row before the one being edited goes; the title and attributes outside any region
    # change too, so the page morphs while the user types.
    middle.delete()
    page.wait_for_function("() => document.title === 'first and 2 more'")
    assert page.query_selector(f"input[data-pk='{middle.pk}']") is None
    assert page.evaluate("document.activeElement.dataset.pk") == str(last.pk)
    assert page.input_value(field) == "last half-typed"
    assert page.evaluate("window.seen") == []
    assert page.errors == []


def test_per_user_prefetched_rows_never_reach_another_user(browser, asgi_server):
    users = {name: User.objects.create_user(name, password="pw") for name in ("ann", "bob")}
    entry = Entry.objects.create(name="shared")
    url = asgi_server.url + "/truth/notes/"
    pages, frames, contexts = {}, {}, []
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        context = browser.new_context()
        contexts.append(context)
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": asgi_server.url,
                }
            ]
        )
        page = new_page(context)
        frames[name] = []
        page.on(
            "websocket",
            lambda ws, seen=frames[name]: ws.on("framereceived", lambda data: seen.append(data)),
        )
        pages[name] = open_page(page, url)
    try:
        for round_ in range(3):  # an admin adds a private note for each, again and again
            for name, user in users.items():
                Note.objects.create(entry=entry, user=user, text=f"{name}-secret-{round_}")
            for name, page in pages.items():
                page.wait_for_selector(f"em:text-is('{name}-secret-{round_}')")
        entry.name = "shared, renamed"
        entry.save()
        for name, page in pages.items():
            page.wait_for_selector("#entries li:has-text('shared, renamed')")
            texts = page.eval_on_selector_all("em", "els => els.map((el) => el.textContent)")
            assert texts == [f"{name}-secret-{r}" for r in range(3)]
        for name in users:
            other = "bob" if name == "ann" else "ann"
            received = "".join(frame for frame in frames[name] if isinstance(frame, str))
            assert f"{name}-secret" in received
            assert f"{other}-secret" not in received
    finally:
        for context in contexts:
            context.close()
