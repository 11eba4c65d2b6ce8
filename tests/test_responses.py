"""``RTResponse`` and ``as_commands``: what a handler asks the browser to do."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import DisallowedRedirect
from django.test import RequestFactory
from django.urls import reverse_lazy
from django.utils.functional import lazystr
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from django_rt import RTResponse
from django_rt.protocol import Action, CommandKey
from django_rt.responses import as_commands


def command(action, selector, content):
    return {CommandKey.ACTION: action, CommandKey.SELECTOR: selector, CommandKey.CONTENT: content}


# every action ---------------------------------------------------------------------


def test_default_action_is_html():
    response = RTResponse("#out", "hi")
    assert response.action is Action.HTML
    assert response.as_command() == command("html", "#out", "hi")
    assert RTResponse("#out").as_command() == command("html", "#out", "")


@pytest.mark.parametrize("action", ["html", "append", "prepend", "replace"])
def test_html_actions_escape_plain_strings(action):
    response = RTResponse("#out", '<img src=x onerror="alert(1)"> & more', action=action)
    assert response.as_command() == command(
        action, "#out", "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more"
    )


@pytest.mark.parametrize("action", ["html", "append", "prepend", "replace"])
def test_html_actions_keep_safe_strings(action):
    safe = mark_safe("<b>bold</b>")
    assert RTResponse("#out", safe, action=action).as_command()[CommandKey.CONTENT] == "<b>bold</b>"
    formatted = format_html("<i>{}</i>", "<script>")
    assert RTResponse("#out", formatted, action=action).as_command()[CommandKey.CONTENT] == (
        "<i>&lt;script&gt;</i>"
    )


def test_commands_are_json():
    commands = [
        RTResponse("#out", mark_safe("<b>x</b>")).as_command(),
        RTResponse("#c", {"open": True, "n": 1}, action="attr").as_command(),
        RTResponse.dispatch("done", {"n": [1, 2]}).as_command(),
    ]
    assert json.loads(json.dumps(commands)) == [
        {"a": "html", "s": "#out", "c": "<b>x</b>"},
        {"a": "attr", "s": "#c", "c": {"open": True, "n": "1"}},
        {"a": "dispatch", "s": None, "c": {"name": "done", "detail": {"n": [1, 2]}}},
    ]


def test_html_non_string_content():
    assert RTResponse("#n", 42).as_command()[CommandKey.CONTENT] == "42"
    assert RTResponse("#n", Decimal("1.50")).as_command()[CommandKey.CONTENT] == "1.50"
    # Nothing renders as nothing, as for "text", not as the word None.
    assert RTResponse("#n", None).as_command()[CommandKey.CONTENT] == ""


def test_text_is_not_escaped_server_side():
    # The client sets textContent: escaping here would show entities on the page.
    assert RTResponse("#t", "<b> & ", action="text").as_command() == command("text", "#t", "<b> & ")
    assert RTResponse("#t", 3, action="text").as_command()[CommandKey.CONTENT] == "3"
    assert RTResponse("#t", None, action="text").as_command()[CommandKey.CONTENT] == ""


@pytest.mark.parametrize("action", ["remove", "focus", "reset"])
def test_remove_and_focus_carry_no_content(action):
    assert RTResponse(".row", "ignored", action=action).as_command() == command(
        action, ".row", None
    )


def test_attr():
    response = RTResponse(
        "#c",
        {"title": "<t>", "hidden": None, "open": True, "disabled": False, "data-n": 5},
        action="attr",
    )
    assert response.as_command() == command(
        "attr",
        "#c",
        {"title": "<t>", "hidden": None, "open": True, "disabled": False, "data-n": "5"},
    )


@pytest.mark.parametrize("name", ["onclick", "ONCLICK", "onMouseOver", " onerror", "onfocus"])
@pytest.mark.parametrize("value", ["alert(1)", "", 1, lazystr("x()")])
def test_attr_refuses_event_handlers(name, value):
    with pytest.raises(ValueError) as info:
        RTResponse("#c", {"title": "ok", name: value}, action="attr")
    message = str(info.value)
    assert repr(name) in message and "event handler" in message
    assert "@RTView.event" in message and "mark_safe" in message


URL_ATTRIBUTES = ["href", "src", "action", "formaction", "xlink:href", "data", "poster", "HREF"]
SCRIPT_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "\x00javascript:alert(1)",
    "\x01\x02 javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "javascript\r:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "javascript&colon;alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    " DATA:image/svg+xml,<svg onload=alert(1)>",
]


@pytest.mark.parametrize("name", URL_ATTRIBUTES)
@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_attr_refuses_script_urls(name, url):
    with pytest.raises(ValueError) as info:
        RTResponse("#c", {name: url}, action="attr")
    message = str(info.value)
    assert repr(name) in message and "URL" in message and "mark_safe" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "/path/?a=1#b",
        "relative/javascript:x",
        "?q=javascript:1",
        "#javascript:",
        "javascript.html",
        "mailto:a@example.com",
        "tel:+1",
        "",
    ],
)
def test_attr_allows_other_urls(url):
    command = RTResponse("#a", {"href": url, "src": url}, action="attr").as_command()
    assert command[CommandKey.CONTENT] == {"href": url, "src": url}


def test_attr_refuses_srcdoc():
    with pytest.raises(ValueError, match="'srcdoc'.*a document"):
        RTResponse("iframe", {"srcdoc": "<p>hi</p>"}, action="attr")


def test_attr_takes_what_is_marked_safe():
    content = {
        "onclick": mark_safe("go()"),
        "href": mark_safe("javascript:go()"),
        "src": format_html("data:image/png;base64,{}", "AAAA"),
        "srcdoc": mark_safe("<p>hi</p>"),
    }
    assert RTResponse("#a", content, action="attr").as_command()[CommandKey.CONTENT] == content


def test_attr_removing_or_emptying_a_handler_is_fine():
    content = {"onclick": None, "onload": False, "href": None, "onerror": True}
    assert RTResponse("#a", content, action="attr").as_command()[CommandKey.CONTENT] == content


def test_attr_script_scheme_in_other_attributes_is_text():
    content = {"title": "javascript:alert(1)", "data-url": "javascript:x", "value": "data:x"}
    assert RTResponse("#a", content, action="attr").as_command()[CommandKey.CONTENT] == content


@pytest.mark.parametrize("action", ["html", "append", "prepend", "replace"])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (lazystr("<b>lazy</b>"), "&lt;b&gt;lazy&lt;/b&gt;"),
        (["<i>"], "[&#x27;&lt;i&gt;&#x27;]"),
        (type("Html", (), {"__html__": lambda self: "<b>own</b>"})(), "<b>own</b>"),
        ("<!--rt:1-->", "&lt;!--rt:1--&gt;"),
    ],
)
def test_html_actions_escape_what_is_not_safe(action, content, expected):
    assert RTResponse("#out", content, action=action).as_command()[CommandKey.CONTENT] == expected


@pytest.mark.parametrize("action", ["html", "append", "prepend", "replace"])
def test_html_actions_neutralise_marker_like_comments(action):
    # Safe HTML that holds marker-like comments would capture a live region's patches.
    content = mark_safe("<p><!--rt:1-->x<!--/rt:1--><!rt:2></p><!-- note -->")
    command = RTResponse("#out", content, action=action).as_command()
    assert command[CommandKey.CONTENT] == "<p><!-- rt:1-->x<!-- /rt:1--><! rt:2></p><!-- note -->"


@pytest.mark.parametrize("action", ["add_class", "remove_class"])
def test_classes(action):
    assert RTResponse("#x", "a b", action=action).as_command() == command(action, "#x", "a b")
    assert RTResponse("#x", None, action=action).as_command() == command(action, "#x", "")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("text", "text"),
        (5, "5"),
        (Decimal("2.5"), "2.5"),
        (True, True),
        (False, False),
        (None, None),
        (["a", "b"], ["a", "b"]),
        # Option values are text: numbers and tuples become lists of strings.
        ([1, 2], ["1", "2"]),
        (("a", "b"), ["a", "b"]),
    ],
)
def test_value(content, expected):
    assert RTResponse("#v", content, action="value").as_command() == command(
        "value", "#v", expected
    )


def test_action_may_be_given_as_the_enum():
    assert RTResponse("#x", "y", Action.TEXT).as_command() == command("text", "#x", "y")


def test_every_action_is_covered():
    # A new action must be added to the tests above.
    covered = {
        "html",
        "append",
        "prepend",
        "replace",
        "text",
        "remove",
        "focus",
        "reset",
        "attr",
        "add_class",
        "remove_class",
        "value",
        "redirect",
        "dispatch",
    }
    assert {action.value for action in Action} == covered


# render ---------------------------------------------------------------------------


def test_render_a_fragment_with_the_request():
    request = RequestFactory().get("/list/")
    response = RTResponse.render(
        "#items", "testapp/fragments/item.html", {"name": "<Ann>"}, request, action="append"
    )
    assert response.action is Action.APPEND
    assert isinstance(response.content, SafeString)
    # Rendered templates are safe: not escaped again, but their variables were.
    assert response.as_command() == command(
        "append", "#items", '<li class="item">&lt;Ann&gt; at /list/</li>\n'
    )


def test_render_defaults_to_html_and_accepts_no_context():
    response = RTResponse.render(
        "#items", ["testapp/fragments/missing.html", "testapp/fragments/item.html"]
    )
    assert response.as_command() == command("html", "#items", '<li class="item"> at </li>\n')


# errors ---------------------------------------------------------------------------


def test_unknown_action():
    with pytest.raises(ValueError) as info:
        RTResponse("#x", "y", action="explode")
    message = str(info.value)
    assert "unknown action 'explode'" in message and "'html'" in message and "'dispatch'" in message


@pytest.mark.parametrize("action", sorted(set(Action) - {Action.REDIRECT, Action.DISPATCH}))
@pytest.mark.parametrize("selector", [None, "", "   ", 5])
def test_missing_selector(action, selector):
    content = {} if action is Action.ATTR else "x"
    with pytest.raises(ValueError, match=rf"RTResponse\('{action.value}'\) needs a CSS selector"):
        RTResponse(selector, content, action=action)


@pytest.mark.parametrize("content", ["title=x", ["title"], None, 5])
def test_attr_needs_a_dict(content):
    with pytest.raises(TypeError, match="takes a dict of attribute values"):
        RTResponse("#x", content, action="attr")


# redirect and dispatch ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/done/",
        "https://example.com/x?y=1",
        "HTTP://EXAMPLE.COM/",
        "?page=2",
        "#anchor",
        "done/",
        "//example.com/",
    ],
)
def test_redirect(url):
    response = RTResponse.redirect(url)
    assert response.action is Action.REDIRECT
    assert response.as_command() == command("redirect", None, url)


def test_redirect_to_a_lazy_url():
    assert RTResponse.redirect(reverse_lazy("example")).as_command() == command(
        "redirect", None, "/"
    )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "ftp://example.com/",
        "mailto:a@b.c",
    ],
)
def test_redirect_refuses_unsafe_schemes(url):
    # As Django's HttpResponseRedirect: a redirect to a user-supplied URL must not run script.
    # Only http(s), the schemes rt.js follows: the handler fails loudly instead.
    with pytest.raises(DisallowedRedirect):
        RTResponse.redirect(url)
    with pytest.raises(DisallowedRedirect):
        RTResponse(None, url, action="redirect")


def test_dispatch():
    assert RTResponse.dispatch("cart:updated", {"count": 3}).as_command() == command(
        "dispatch", None, {"name": "cart:updated", "detail": {"count": 3}}
    )
    assert RTResponse.dispatch("ping", selector="#box").as_command() == command(
        "dispatch", "#box", {"name": "ping", "detail": None}
    )


# equality and repr ----------------------------------------------------------------


def test_equality_compares_the_commands():
    assert RTResponse("#a", "x") == RTResponse("#a", "x")
    assert RTResponse("#a", "x") == RTResponse("#a", "x", action="html")
    assert RTResponse("#a", "<b>") == RTResponse("#a", mark_safe("&lt;b&gt;"))
    assert RTResponse("#a", "x") != RTResponse("#b", "x")
    assert RTResponse("#a", "x") != RTResponse("#a", "y")
    assert RTResponse("#a", "x") != RTResponse("#a", "x", action="text")
    assert RTResponse.redirect("/a/") == RTResponse.redirect("/a/")
    assert RTResponse("#a", "x") != "x"
    assert (RTResponse("#a", "x") == object()) is False


def test_responses_are_unhashable():
    with pytest.raises(TypeError):
        hash(RTResponse("#a", "x"))


def test_repr():
    assert repr(RTResponse("#a", "<b>")) == "RTResponse('#a', '<b>', action='html')"
    assert repr(RTResponse.redirect("/x/")) == "RTResponse(None, '/x/', action='redirect')"


# as_commands ----------------------------------------------------------------------


def test_as_commands_normalises():
    one = RTResponse("#a", "1")
    two = RTResponse("#b", "2", action="text")
    assert as_commands(None, "h") == []
    assert as_commands(one, "h") == [one.as_command()]
    assert as_commands([one, two], "h") == [one.as_command(), two.as_command()]
    assert as_commands((one, two), "h") == [one.as_command(), two.as_command()]
    assert as_commands([], "h") == []
    assert as_commands((r for r in [two, one]), "h") == [two.as_command(), one.as_command()]


def test_as_commands_accepts_a_generator_handler():
    def handler():
        yield RTResponse("#a", "1")
        yield RTResponse.redirect("/next/")

    assert as_commands(handler(), "handler") == [
        command("html", "#a", "1"),
        command("redirect", None, "/next/"),
    ]


@pytest.mark.parametrize(
    ("result", "type_name"),
    [
        (42, "int"),
        ("<b>html</b>", "str"),
        (mark_safe("<b>html</b>"), "SafeString"),
        (b"bytes", "bytes"),
        ({"a": "html"}, "dict"),
        ([RTResponse("#a", "x"), "extra"], "list"),
        ([None], "list"),
        (True, "bool"),
    ],
)
def test_as_commands_refuses_other_values(result, type_name):
    with pytest.raises(TypeError) as info:
        as_commands(result, "my_handler")
    message = str(info.value)
    assert message.startswith(f"Handler my_handler() returned {type_name};")
    assert "return an RTResponse, a list of them, or None" in message
