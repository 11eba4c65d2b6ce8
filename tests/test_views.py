"""``RTView`` over plain HTTP: script injection, page configuration, token, tag."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.template import Context, Template
from django.test import Client, override_settings
from django.urls import include, path
from django.views.generic import TemplateView

from django_rt import RTView
from django_rt.protocol import CONFIG_ATTRIBUTE, VERSION, BindingKey, ConfigKey
from django_rt.tokens import PageToken
from tests.testapp.views import ExampleView

from .helpers import page_config

# Views and templates of these tests ------------------------------------------------

PAGE = (
    "<!doctype html>\n<html><head><title>t</title></head><body><p id='p'>page</p></body></html>\n"
)

TEMPLATES_OF_THESE_TESTS = {
    "rt/page.html": PAGE,
    "rt/no_body_end.html": "<p>No end tag here</p>",
    "rt/upper.html": "<HTML><BODY><p>upper</p></BODY >\n</HTML>",
    "rt/two_ends.html": '<html><body><script>var s = "</body>";</script><p>end</p></body></html>',
    "rt/plain.txt": "plain text with </body> in it",
    "rt/tag_twice.html": (
        "{% load django_rt %}<html><head>{% rt_script %}</head><body>{% rt_script %}</body></html>"
    ),
}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": False,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
            "loaders": [
                ("django.template.loaders.locmem.Loader", TEMPLATES_OF_THESE_TESTS),
                "django.template.loaders.app_directories.Loader",
            ],
        },
    }
]


class PageView(RTView):
    template_name = "rt/page.html"

    @RTView.event("click", "#save")
    @RTView.event("keydown.enter", "#title", debounce=200)
    def save(self, request, title="#title", body="#body", page=1, target=None):
        pass

    @RTView.event("submit", "form.post", stop_propagation=True)
    async def send(self, request, form: dict = "form.post"):
        pass

    @RTView.event("scroll", "#list", throttle=100)
    def more(self, request):
        pass


class NoBodyEndView(PageView):
    template_name = "rt/no_body_end.html"


class UpperView(PageView):
    template_name = "rt/upper.html"


class TwoEndsView(PageView):
    template_name = "rt/two_ends.html"


class PlainTextView(PageView):
    template_name = "rt/plain.txt"
    content_type = "text/plain"


class TagTwiceView(PageView):
    template_name = "rt/tag_twice.html"


class EvilSelectorView(RTView):
    template_name = "rt/page.html"

    @RTView.event("click", "</script><script>alert(1)</script>")
    def evil(self, request, value="<!--", other="</SCRIPT >&amp;\u2028"):
        pass


class NoHandlersView(RTView):
    template_name = "rt/page.html"


urlpatterns = [
    path("t/page/", PageView.as_view()),
    path("t/no-body-end/", NoBodyEndView.as_view()),
    path("t/upper/", UpperView.as_view()),
    path("t/two-ends/", TwoEndsView.as_view()),
    path("t/plain/", PlainTextView.as_view()),
    path("t/tag-twice/", TagTwiceView.as_view()),
    path("t/evil/", EvilSelectorView.as_view()),
    path("t/no-handlers/", NoHandlersView.as_view()),
    path("t/plain-view-with-tag/", TemplateView.as_view(template_name="testapp/tag.html")),
    path("", include("tests.testapp.urls")),
]


@pytest.fixture(autouse=True)
def urls_and_templates():
    with override_settings(ROOT_URLCONF=__name__, TEMPLATES=TEMPLATES):
        yield


# DEBUG is off in the test settings: pages load the minified client.
SCRIPT = re.compile(
    r'<script type="application/json" data-rt-config>[^<]*</script>'
    r'<script src="/static/django_rt/rt\.min\.js" defer></script>'
)


def get(url: str, client: Client | None = None) -> str:
    response = (client or Client()).get(url)
    assert response.status_code == 200
    return response.content.decode()


def script_of(html: str) -> str:
    (match,) = SCRIPT.findall(html)
    return match


# injection ------------------------------------------------------------------------


def test_script_is_injected_right_before_the_last_body_end_once():
    html = get("/t/page/")
    script = script_of(html)
    assert html.count(CONFIG_ATTRIBUTE) == 1 and html.count("<script") == 2
    assert html == PAGE.replace("</body>", script + "</body>")


def test_example_page_gets_the_script_before_body_end():
    html = get("/")
    script = script_of(html)
    assert html.count(CONFIG_ATTRIBUTE) == 1
    assert html.index(script) + len(script) == html.rindex("</body>")


def test_only_the_last_body_end_counts():
    html = get("/t/two-ends/")
    script = script_of(html)
    assert html == (
        '<html><body><script>var s = "</body>";</script><p>end</p>' + script + "</body></html>"
    )


def test_body_end_is_found_whatever_its_case_and_spacing():
    html = get("/t/upper/")
    script = script_of(html)
    assert html == "<HTML><BODY><p>upper</p>" + script + "</BODY >\n</HTML>"


def test_page_without_body_end_gets_the_script_appended():
    html = get("/t/no-body-end/")
    script = script_of(html)
    assert html == "<p>No end tag here</p>" + script


def test_rt_script_tag_places_the_script_and_prevents_injection():
    html = get("/tag/")
    script = script_of(html)
    assert html.count(CONFIG_ATTRIBUTE) == 1
    assert html.index(script) < html.index("</head>")
    assert "<body><p>Placed in head.</p></body></html>" in html
    assert page_config(html)[ConfigKey.EVENTS]  # the tag renders the full configuration


def test_rt_script_tag_used_twice_renders_once():
    html = get("/t/tag-twice/")
    assert html.count(CONFIG_ATTRIBUTE) == 1


def test_non_html_response_gets_nothing():
    response = Client().get("/t/plain/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"plain text with </body> in it"


def test_rt_script_tag_outside_an_rtview_renders_nothing():
    template = Template("{% load django_rt %}[{% rt_script %}]")
    assert template.render(Context({})) == "[]"
    assert template.render(Context({"view": TemplateView()})) == "[]"
    assert template.render(Context({"view": "a string"})) == "[]"
    html = get("/t/plain-view-with-tag/")
    assert CONFIG_ATTRIBUTE not in html and "<script" not in html
    assert "<head></head>" in html


def test_rt_script_tag_renders_a_placeholder_that_the_response_fills():
    # The script carries the hash of the render, so it goes in after the render; a
    # socket's render (a join, a resync) leaves the placeholder, and never sends it.
    from django_rt.live.page import SCRIPT_PLACEHOLDER, morph_op

    view = PageView()
    view.rt_connected = True
    template = Template("{% load django_rt %}<body>[{% rt_script %}]</body>")
    html = template.render(Context({"view": view}))
    assert html == f"<body>[{SCRIPT_PLACEHOLDER}]</body>"
    assert morph_op(html)["html"] == "[]"


# the configuration ----------------------------------------------------------------


def test_config_cannot_break_out_of_the_script_element():
    html = get("/t/evil/")
    script = script_of(html)  # exactly one config element, then the client script
    assert html.count("<script") == 2 and html.count("</script>") == 2
    assert html.lower().count("</script") == 2
    assert "<!--" not in html and "alert(1)</script>" not in html
    raw = re.search(r"data-rt-config>(.*?)</script>", script).group(1)
    assert "<" not in raw and ">" not in raw and "&" not in raw and "\u2028" not in raw
    # ... and the client still reads the original strings.
    (binding,) = page_config(html)[ConfigKey.EVENTS]
    assert binding[BindingKey.SELECTOR] == "</script><script>alert(1)</script>"
    assert binding[BindingKey.GATHER] == {"value": "<!--", "other": "</SCRIPT >&amp;\u2028"}


def test_config_lists_every_binding_with_its_gathered_map():
    config = page_config(get("/t/page/"))
    gather = {"title": "#title", "body": "#body"}
    assert config[ConfigKey.EVENTS] == [
        {"e": "click", "s": "#save", "h": "save", "g": gather},
        {"e": "keydown", "s": "#title", "h": "save", "g": gather, "key": "enter", "debounce": 200},
        {
            "e": "submit",
            "s": "form.post",
            "h": "send",
            "g": {"form": "form.post"},
            "prevent": True,
            "stop": True,
        },
        {"e": "scroll", "s": "#list", "h": "more", "g": {}, "throttle": 100},
    ]


def test_example_config_lists_each_handler_of_the_view():
    config = page_config(get("/"))
    events = config[ConfigKey.EVENTS]
    expected = [
        (name, binding.event, binding.selector, dict(handler.gathered))
        for name, handler in ExampleView.rt_handlers.items()
        for binding in handler.bindings
    ]
    got = [(e["h"], e["e"], e["s"], e["g"]) for e in events]
    assert got == expected
    assert ("mybutton_click", "click", "#mybutton", {"gathered": "#myinput"}) in got
    assert ("enter", "keydown", "#myinput", {"text": "#myinput"}) in got


def test_view_without_handlers_still_gets_a_config():
    config = page_config(get("/t/no-handlers/"))
    assert config[ConfigKey.EVENTS] == []


def test_config_keys_and_values():
    config = page_config(get("/t/page/"))
    assert set(config) == set(ConfigKey)
    assert config[ConfigKey.VERSION] == VERSION
    assert config[ConfigKey.URL] == "/rt/ws/"
    assert config[ConfigKey.DEBUG] is False


def test_config_follows_settings():
    with override_settings(
        DEBUG=True, DJANGO_RT={"WEBSOCKET_PATH": "/live/", "SCRIPT": "js/rt.min.js"}
    ):
        html = get("/t/page/")
    config = page_config(html)
    assert config[ConfigKey.DEBUG] is True
    assert config[ConfigKey.URL] == "/live/"
    assert '<script src="/static/js/rt.min.js" defer></script></body>' in html


# the token ------------------------------------------------------------------------


def test_token_names_the_view_the_full_path_and_no_user():
    config = page_config(get("/?q=1&x=%C3%A9"))
    token = PageToken.load(config[ConfigKey.TOKEN])
    assert token == PageToken(
        view="tests.testapp.views.ExampleView", path="/?q=1&x=%C3%A9", user=""
    )


def test_token_of_a_view_defined_here():
    token = PageToken.load(page_config(get("/t/page/"))[ConfigKey.TOKEN])
    assert token == PageToken(view=f"{__name__}.PageView", path="/t/page/", user="")


@pytest.mark.django_db
def test_token_names_the_logged_in_user():
    user = User.objects.create_user("dora", password="pw")
    client = Client()
    client.force_login(user)
    token = PageToken.load(page_config(get("/?q=1", client))[ConfigKey.TOKEN])
    assert token == PageToken(
        view="tests.testapp.views.ExampleView", path="/?q=1", user=str(user.pk)
    )


def test_tag_token_is_the_same_kind_of_token():
    token = PageToken.load(page_config(get("/tag/?a=b"))[ConfigKey.TOKEN])
    assert token == PageToken(view="tests.testapp.views.TagView", path="/tag/?a=b", user="")


# still a TemplateView -------------------------------------------------------------


def test_page_renders_as_a_template_view():
    response = Client().get("/")
    assert response.status_code == 200
    assert [t.name for t in response.templates] == ["testapp/example.html"]
    view = response.context["view"]
    assert isinstance(view, ExampleView) and not view.rt_connected
    assert response.context["entries"] == ["a", "b", "c"]
    assert "<li>a</li><li>b</li><li>c</li>" in response.content.decode()
    assert response["Content-Type"] == "text/html; charset=utf-8"


def test_other_methods_are_those_of_a_template_view():
    assert Client().post("/").status_code == 405
    head = Client().head("/")
    assert head.status_code == 200 and head.content == b""
