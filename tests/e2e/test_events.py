"""The events half end to end: Chromium, the real client, a real ASGI server on loopback."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from .conftest import open_page
from .servers import ProcessServer

pytestmark = [pytest.mark.django_db(transaction=True)]

RECORD_ERRORS = """
window.rtErrors = [];
document.addEventListener("rt:error", (event) => window.rtErrors.push(event.detail));
"""


def rt_errors(page):
    return page.evaluate("window.rtErrors")


def wait_for_error(page, code):
    page.wait_for_function(f"window.rtErrors.some((e) => e.code === {json.dumps(code)})")


def test_type_click_see_result(page, asgi_server):
    open_page(page, asgi_server.url + "/")
    page.fill("#myinput", "hello world")
    page.click("#mybutton")
    page.wait_for_selector("#result:has-text('Result: hello world')")
    assert page.errors == []


def test_the_browser_runs_the_minified_client_outside_debug(page, asgi_server):
    # DEBUG is off in the test settings: the browser tests run rt.min.js.
    open_page(page, asgi_server.url + "/")
    sources = page.evaluate("[...document.scripts].map((script) => script.src).filter(Boolean)")
    assert [source.rsplit("/", 1)[-1] for source in sources] == ["rt.min.js"]
    page.fill("#myinput", "small")
    page.click("#mybutton")
    page.wait_for_selector("#result:has-text('Result: small')")
    assert page.errors == []


def test_gathered_markup_echoed_back_does_not_run(page, asgi_server):
    open_page(page, asgi_server.url + "/")
    payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    page.fill("#myinput", payload)
    page.click("#mybutton")
    page.wait_for_function(
        "document.querySelector('#result').textContent.startsWith('Result: <img')"
    )
    assert page.text_content("#result") == "Result: " + payload
    assert page.query_selector("#result img") is None
    page.wait_for_timeout(200)  # an onerror would have fired by now
    assert page.evaluate("window.pwned") is None


def test_view_state_persists_between_events(page, asgi_server):
    open_page(page, asgi_server.url + "/")
    for expected in ("1", "2", "3"):
        page.click("#counter")
        page.wait_for_selector(f"#count:text-is('{expected}')")


def test_key_filter_and_async_handler(page, asgi_server):
    open_page(page, asgi_server.url + "/")
    page.fill("#myinput", "abc")
    page.press("#myinput", "a")
    page.wait_for_timeout(150)
    assert page.text_content("#entered") == ""
    page.press("#myinput", "Enter")
    page.wait_for_selector("#entered:text-is('Entered: abca')")


def test_debounce_sends_one_event(page, asgi_server):
    open_page(page, asgi_server.url + "/")
    # Five keystrokes well inside the 200 ms debounce, however slow the machine: typed
    # with a delay, a loaded machine could leave a gap longer than that between two.
    page.evaluate(
        """() => {
            const field = document.querySelector('#debounced');
            for (const key of 'hello') {
                field.value += key;
                field.dispatchEvent(new Event('input', {bubbles: true}));
            }
        }"""
    )
    page.wait_for_selector("#typed:text-is('1:hello')")
    page.wait_for_timeout(300)
    assert page.text_content("#typed") == "1:hello"


def test_loading_state_while_pending(page, asgi_server):
    open_page(page, asgi_server.url + "/")
    page.click("#slow")
    page.wait_for_selector("#slow.rt-loading[aria-busy=true]")
    page.wait_for_selector("#slowed:text-is('done')")
    assert page.get_attribute("#slow", "class") in ("", None)
    assert page.get_attribute("#slow", "aria-busy") is None


def test_typed_values_forms_and_targets(page, asgi_server):
    page.add_init_script(RECORD_ERRORS)
    open_page(page, asgi_server.url + "/typed/")
    page.click("#go")
    page.wait_for_selector("#out:has-text('count')")
    out = page.text_content("#out")
    assert "('agree', True)" in out and "('count', 3)" in out and "('ratio', 0.5)" in out
    assert "('tags', ['x', 'z'])" in out and "('size', 'm')" in out and "('note', None)" in out
    assert "'form', {'title': 'Hello', 'n': ['1', '2']}" in out
    page.click("#b2")
    page.wait_for_selector("#picked:text-is('r2:b2')")
    # submit is prevented by default: the page stays, the handler answers.
    page.fill("#form input[name=title]", "<b>x</b>")
    page.click("#submit")
    page.wait_for_selector("#out b")
    assert page.text_content("#out b") == "<b>x</b>"
    assert page.url == asgi_server.url + "/typed/"
    # A value of the wrong type: a clear error on the page, and the page keeps working.
    page.fill("#count", "three")
    page.click("#go")
    wait_for_error(page, "invalid_value")
    message = [e for e in rt_errors(page) if e["code"] == "invalid_value"][0]["message"]
    assert "'three' is not a whole number" in message
    page.fill("#count", "4")
    page.click("#go")
    page.wait_for_selector("#out:has-text('(\\'count\\', 4)')")


def test_handler_error_keeps_the_page_working(page, asgi_server):
    page.add_init_script(RECORD_ERRORS)
    open_page(page, asgi_server.url + "/")
    page.click("#fail")
    wait_for_error(page, "handler_error")
    page.fill("#myinput", "after")
    page.click("#mybutton")
    page.wait_for_selector("#result:text-is('Result: after')")


def tamper_config(page, url, change):
    """Serve the page at ``url`` with its django-rt configuration changed by ``change``."""

    def handle(route):
        response = route.fetch()
        html = response.text()
        pattern = re.compile(
            r"(<script type=\"application/json\" data-rt-config>)(.*?)(</script>)", re.S
        )
        config = json.loads(pattern.search(html).group(2))
        change(config)
        html = pattern.sub(lambda m: m.group(1) + json.dumps(config) + m.group(3), html)
        route.fulfill(response=response, body=html)

    page.route(url, handle)


def test_forged_token_is_refused_and_other_pages_keep_working(context, asgi_server):
    good = open_page(context.new_page(), asgi_server.url + "/")
    forged = context.new_page()
    forged.add_init_script(RECORD_ERRORS)
    tamper_config(
        forged,
        asgi_server.url + "/",
        lambda config: config.update(token=config["token"][:-4] + "AAAA"),
    )
    forged.goto(asgi_server.url + "/")
    wait_for_error(forged, "invalid_token")
    forged.wait_for_selector("html.rt-disconnected")
    forged.wait_for_timeout(500)
    assert not forged.evaluate("document.documentElement.classList.contains('rt-connected')")
    good.fill("#myinput", "fine")
    good.click("#mybutton")
    good.wait_for_selector("#result:text-is('Result: fine')")


def test_unknown_handler_is_refused_and_the_page_keeps_working(page, asgi_server):
    page.add_init_script(RECORD_ERRORS)
    tamper_config(
        page,
        asgi_server.url + "/",
        lambda config: config["events"].append(
            {"e": "click", "s": "#nope", "h": "get_context_data", "g": {}}
        ),
    )
    open_page(page, asgi_server.url + "/")
    page.click("#nope")
    wait_for_error(page, "unknown_handler")
    page.fill("#myinput", "still")
    page.click("#mybutton")
    page.wait_for_selector("#result:text-is('Result: still')")


def test_oversized_frame_is_refused_and_the_page_keeps_working(page, asgi_server):
    page.add_init_script(RECORD_ERRORS)
    open_page(page, asgi_server.url + "/")
    page.evaluate("document.querySelector('#myinput').value = 'x'.repeat(70000)")
    page.click("#mybutton")
    wait_for_error(page, "frame_too_large")
    assert page.text_content("#result") == ""
    page.fill("#myinput", "small")
    page.click("#mybutton")
    page.wait_for_selector("#result:text-is('Result: small')")


def test_logged_in_user_reaches_the_handlers(context, asgi_server):
    User.objects.create_user("carol", password="pw")
    client = Client()
    client.login(username="carol", password="pw")
    cookie = client.cookies["sessionid"]
    context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": asgi_server.url}])
    page = open_page(context.new_page(), asgi_server.url + "/private/")
    page.click("#whoami")
    page.wait_for_selector("#who:text-is('carol')")


def test_reconnects_after_the_server_is_killed_and_restarted(page):
    server = ProcessServer().start()
    try:
        open_page(page, server.url + "/")
        page.click("#counter")
        page.wait_for_selector("#count:text-is('1')")
        server.kill()
        page.wait_for_selector("html.rt-disconnected")
        server.start()
        page.wait_for_selector("html.rt-connected", timeout=20_000)
        page.fill("#myinput", "back")
        page.click("#mybutton")
        page.wait_for_selector("#result:text-is('Result: back')")
        # A new connection is a new view instance: state starts again.
        page.click("#counter")
        page.wait_for_selector("#count:text-is('1')")
    finally:
        server.kill()
