"""Live forms (RTFormMixin and the three views) and bound values (RTView.bind), through
the test client: over a real socket, patches applied to the page as the client applies
them."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.views.generic import TemplateView

from django_rt import RTFormMixin, RTFormView, RTView
from django_rt.consumer import RTConsumer
from django_rt.events import Bind
from django_rt.testing import RTError, SyncRTClient

from .testapp.forms_views import EntryForm
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def rt():
    with SyncRTClient() as client:
        yield client


@pytest.fixture
def fruit():
    return [Entry.objects.create(name=name) for name in ("apple", "apricot", "banana")]


def errors(page, selector=".errorlist li"):
    return page.texts(selector)


# bound values -----------------------------------------------------------------------


def test_a_bound_value_filters_the_queryset_the_view_builds(rt, fruit):
    page = rt.open("/forms/search/live/")
    assert page.texts("#results .name") == ["apple", "apricot", "banana"]
    page.fill("#search", "ap")
    assert page.texts("#results .name") == ["apple", "apricot"]
    assert page.text("#summary") == "2 for “ap”"
    # Only what differs was sent, region by region: no morph of the page.
    assert set(page.ops) <= {"region", "list"} and page.ops
    # The queryset built from the value is live: a new row that matches it shows.
    Entry.objects.create(name="apex")
    Entry.objects.create(name="cherry")
    page.settle()
    assert page.texts("#results .name") == ["apex", "apple", "apricot"]
    assert page.shown != page.fresh()  # a fresh load shows the unfiltered page


def test_the_same_value_again_runs_nothing(rt, fruit, monkeypatch):
    reruns = []
    refresh = RTConsumer.refresh
    monkeypatch.setattr(RTConsumer, "refresh", lambda self: reruns.append(1) or refresh(self))
    page = rt.open("/forms/search/live/")
    count = len(reruns)  # the join sent the box's value: unchanged, nothing ran
    page.fill("#search", "ban")
    page.fill("#search", "ban")
    assert len(reruns) == count + 1
    assert page.texts("#results .name") == ["banana"]


def test_a_bound_value_starts_from_the_query_string(rt, fruit):
    page = rt.open("/forms/search/?query=ban")
    assert page.texts("#results .name") == ["banana"]
    assert page.element("#search").get("value") == "ban"
    # Typing over it: the page follows the box (here a morph: the value attribute of
    # the box is rendered from the view, outside any region).
    page.fill("#search", "apr")
    assert page.texts("#results .name") == ["apricot"]
    assert page.value("#search") == "apr"


def test_a_bound_value_survives_a_reconnect(rt, fruit):
    page = rt.open("/forms/search/live/")
    page.fill("#search", "ban")
    # A new connection is a new view instance, which starts from the page's URL: the
    # client sends the box's value again after the join.
    page.reconnect()
    assert page.texts("#results .name") == ["banana"]
    Entry.objects.create(name="bandana")
    page.settle()
    assert page.texts("#results .name") == ["banana", "bandana"]


def test_a_bound_value_is_coerced_to_its_annotation(rt):
    for name in "abcdef":
        Entry.objects.create(name=name)
    page = rt.open("/forms/paged/")
    assert page.texts("#rows li") == ["a", "b"]
    page.fill("#page", "3")
    assert page.texts("#rows li") == ["e", "f"] and page.text("#at") == "Page 3"
    with pytest.raises(RTError) as refused:
        page.fire("change", "#page", gathered={"#page": "three"})
    assert refused.value.code == "invalid_value"
    assert rt.open("/forms/paged/?page=2").texts("#rows li") == ["c", "d"]
    assert rt.open("/forms/paged/?page=x").texts("#rows li") == ["a", "b"]  # the default


def test_bind_declares_its_handler():
    class View(RTView):
        template_name = "testapp/forms/paged.html"
        page: int = RTView.bind("#page", event="change", default=1, param="p")
        query = RTView.bind("#q", debounce=200)

    assert isinstance(View.query, Bind) and View.page.annotation is int
    handler = View.rt_handlers["rt_set_query"]
    (binding,) = handler.bindings
    assert binding.as_config(handler) == {
        "e": "input",
        "s": "#q",
        "h": "rt_set_query",
        "g": {"value": "#q"},
        "debounce": 200,
        "sync": True,
    }
    view = View()
    assert view.query == "" and view.page == 1  # no request: the defaults
    view.query = "set"
    assert view.query == "set"

    class Child(View):
        query = RTView.bind("#other")

    assert Child.rt_handlers["rt_set_query"].gathered == {"value": "#other"}
    assert "rt_set_page" in Child.rt_handlers


def test_bind_refuses_an_annotation_it_cannot_coerce():
    # Python 3.11 wraps what __set_name__ raises in a RuntimeError; 3.12+ does not.
    with pytest.raises((ImproperlyConfigured, RuntimeError)) as raised:

        class View(RTView):
            thing: bytes = RTView.bind("#t")

    error = raised.value
    if not isinstance(error, ImproperlyConfigured):
        error = error.__cause__
    assert isinstance(error, ImproperlyConfigured)
    assert "View.thing: cannot coerce to bytes" in str(error)


# live forms -------------------------------------------------------------------------


def test_the_form_validates_as_the_user_types(rt):
    Entry.objects.create(name="apple")
    page = rt.open("/forms/entries/new/")
    page.fill("#id_name", "apple")
    # Only the field the user was in shows its errors; the form is one region.
    assert errors(page) == ["An entry named apple exists."]
    assert page.element("#id_name").get("aria-invalid") == "true"
    assert set(page.ops) == {"region"}
    # The form shown keeps its markup's values: what the user typed stays theirs.
    assert page.element("#id_name").get("value") is None
    assert page.value("#id_name") == "apple"
    page.fill("#id_name", "apples")
    assert errors(page) == [] and page.value("#id_name") == "apples"
    # Leaving a field empty shows its error once the user leaves it.
    page.fill("#id_position", "")
    page.blur()
    assert errors(page) == ["This field is required."]
    assert page.value("#id_name") == "apples"
    assert Entry.objects.count() == 1


def test_a_failed_submit_shows_every_error_and_saves_nothing(rt):
    Entry.objects.create(name="apple")
    page = rt.open("/forms/entries/new/")
    page.fill("#id_done", True)
    page.submit()
    assert errors(page, ".errorlist.nonfield li") == ["A finished entry needs a position."]
    assert errors(page, "#id_name_error li") == ["This field is required."]
    assert page.redirected_to is None and Entry.objects.count() == 1
    assert page.value("#id_done") is True
    # Once a submit was refused, validation shows every error as the user fixes them
    # (a validation still on its way after the submit does not hide them).
    page.fill("#id_name", "banana")
    assert errors(page) == ["A finished entry needs a position."]
    page.fill("#id_position", "3")
    assert errors(page) == []


def test_a_submit_saves_redirects_and_every_page_follows(rt):
    Entry.objects.create(name="apple")
    listing = rt.open("/forms/entries/")
    page = rt.open("/forms/entries/new/")
    page.fill("#id_name", "banana")
    page.fill("#id_position", "4")
    page.submit()
    assert page.redirected_to == "/forms/entries/"
    assert Entry.objects.get(name="banana").position == 4
    listing.settle()
    assert listing.texts("#entries .name") == ["apple", "banana"]
    # The total the form's view computes follows too.
    assert page.text("#total") == "2"


def test_a_submit_goes_through_the_views_own_dispatch(rt):
    page = rt.open("/forms/entries/new/closed/")
    page.fill("#id_name", "banana")
    with pytest.raises(RTError) as refused:
        page.submit()
    assert refused.value.code == "forbidden" and "405" in refused.value.message
    assert not Entry.objects.exists()


def test_the_update_view_validates_against_its_own_row(rt):
    apple = Entry.objects.create(name="apple")
    Entry.objects.create(name="banana")
    page = rt.open(f"/forms/entries/{apple.pk}/edit/")
    assert page.value("#id_name") == "apple" and page.text("#heading") == "Edit apple"
    page.fill("#id_name", "apple")
    assert errors(page) == []  # its own name is not taken
    page.fill("#id_name", "banana")
    assert errors(page) == ["An entry named banana exists."]
    page.submit()
    assert errors(page, "#id_name_error li") == ["An entry named banana exists."]
    # Neither a validation nor a refused submit shows unsaved values as the row's.
    assert page.text("#heading") == "Edit apple"
    page.fill("#id_name", "avocado")
    page.submit()
    assert page.redirected_to == "/forms/entries/"
    apple.refresh_from_db()
    assert apple.name == "avocado"


def test_the_update_view_shows_the_row_as_others_change_it(rt):
    apple = Entry.objects.create(name="apple")
    page = rt.open(f"/forms/entries/{apple.pk}/edit/")
    page.fill("#id_name", "typed")
    Entry.objects.filter(pk=apple.pk).update(name="renamed")
    page.settle()
    assert page.text("#heading") == "Edit renamed"
    assert page.value("#id_name") == "typed"
    apple.delete()
    page.settle()
    assert page.reloads == 1 and page.status_code == 404  # the view now answers 404


def test_a_view_that_shows_its_page_again_gets_a_fresh_form(rt):
    page = rt.open("/forms/entries/new/again/")
    page.fill("#id_name", "first")
    commands = page.submit()
    assert commands[0]["a"] == "reset" and page.redirected_to is None
    assert page.value("#id_name") == "" and page.text("#total") == "1"
    assert Entry.objects.get().name == "first"


def test_without_javascript_the_view_answers_the_post_and_redirects():
    Entry.objects.create(name="apple")
    client = Client()
    assert "data-rt-config" in client.get("/forms/entries/new/").content.decode()
    refused = client.post("/forms/entries/new/", {"name": "apple", "position": "1"})
    html = refused.content.decode()
    assert refused.status_code == 200 and "An entry named apple exists." in html
    assert "data-rt-config" not in html  # a page answering a POST is not live
    saved = client.post("/forms/entries/new/", {"name": "cherry", "position": "1"})
    assert saved.status_code == 302 and saved["Location"] == "/forms/entries/"
    assert Entry.objects.filter(name="cherry").exists()


MIDDLEWARE_WITH_MESSAGES = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


@override_settings(MIDDLEWARE=MIDDLEWARE_WITH_MESSAGES)
def test_a_form_without_a_model_and_the_messages_of_its_submit(rt):
    user = User.objects.create_user("ann")
    page = rt.open("/forms/contact/", user=user)
    page.fill("#id_email", "not an address")
    page.fill("#id_message", "hi")
    assert errors(page) == [
        "Enter a valid email address.",
        "Ensure this value has at least 5 characters (it has 2).",
    ]
    page.fill("#id_email", "ann@example.com")
    page.fill("#id_message", "hello there")
    page.fill("#id_topic", "praise")
    page.fill("#id_copy", True)
    page.submit("#contact")
    assert page.redirected_to == "/forms/thanks/"
    # SuccessMessageMixin's message waits in the session for the next page.
    stored = page.client.session["_messages"]
    assert "Thanks, ann@example.com" in json.dumps(stored)


def test_a_form_with_files_is_validated_live_and_posted_by_the_browser(rt):
    page = rt.open("/forms/upload/")
    page.fill("#id_title", "ab")
    assert errors(page) == ["Ensure this value has at least 3 characters (it has 2)."]
    page.fill("#id_attachment", "")  # a file field never reports from the socket
    assert errors(page) == ["Ensure this value has at least 3 characters (it has 2)."]
    with pytest.raises(LookupError, match="no binding"):
        page.submit()  # no live submit: the browser posts the form, files included


def test_a_form_selector_of_none_turns_the_live_form_off():
    class Plain(RTFormView):
        form_class = EntryForm
        template_name = "testapp/forms/entry_form.html"
        form_selector = None

    assert "rt_form_input" not in Plain.rt_handlers
    assert "rt_form_submit" not in Plain.rt_handlers


def test_another_selector_and_debounce_rebind_the_handlers():
    class Custom(RTFormView):
        form_class = EntryForm
        form_selector = "#mine"
        validate_debounce = 50

    validate = Custom.rt_handlers["rt_form_input"]
    assert validate.gathered == {"data": "#mine"}
    assert {b.event: b.debounce for b in validate.bindings} == {"input": 50, "focusout": None}
    (submit,) = Custom.rt_handlers["rt_form_submit"].bindings
    assert submit.selector.startswith(":is(#mine)") and submit.prevent_default


def test_the_mixin_without_a_form_view_says_what_to_do():
    class Wrong(RTFormMixin, TemplateView):
        template_name = "testapp/forms/entries.html"

    with pytest.raises(ImproperlyConfigured, match="before FormView, CreateView or UpdateView"):
        Wrong.as_view()(Client().get("/").wsgi_request)
