"""Django's template semantics hold through the proxies and the recorder: each case
renders a template plainly and with tracking, and the tracked render, markers removed,
is Django's output, or raises what Django raises."""

from __future__ import annotations

import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import django
import pytest
from django import forms
from django.db import connection
from django.template import Context, Engine, Library, Template
from django.template.backends.django import DjangoTemplates
from django.template.defaultfilters import register as default_filters
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils.safestring import mark_safe

from django_rt.live.page import Changes, LivePage
from django_rt.live.proxies import label
from django_rt.live.recorder import strip_markers
from django_rt.live.render import render_template

from .testapp.models import Author, Entry

pytestmark = pytest.mark.django_db

#: The tag library the templates below load as ``{% load semantics %}``.
register = Library()


@register.simple_tag
def shouted_item(entry: Any) -> str:
    """A tag that renders another template and works on the string it gets."""
    return mark_safe(render_to_string("testapp/live/item.html", {"entry": entry}).upper())


@register.simple_tag
def item_length(entry: Any) -> int:
    return len(render_to_string("testapp/live/item.html", {"entry": entry}))


def engine(**templates: str) -> Engine:
    return Engine(
        loaders=[("django.template.loaders.locmem.Loader", templates)],
        libraries={"semantics": __name__},
    )


@pytest.fixture
def data() -> SimpleNamespace:
    ann = Author.objects.create(name="Ann")
    rows = [
        Entry.objects.create(name=name, position=position, author=ann)
        for position, name in enumerate(["delta", "alpha", "charlie", "bravo"])
    ]
    blank = Entry.objects.create(name="", position=9)
    return SimpleNamespace(ann=ann, rows=rows, entry=rows[1], blank=blank)


def both(template: Any, context: Callable[[], dict[str, Any]]) -> tuple[str, Any]:
    """The plain render and the tracked render (each with a fresh context)."""
    plain = template.render(Context(context()))
    live = render_template(template, context())
    return plain, live


def assert_same(template: Any, context: Callable[[], dict[str, Any]]) -> Any:
    plain, live = both(template, context)
    assert strip_markers(live.html) == plain
    return live


class Counter:
    """An object whose method counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def items(self) -> list[str]:
        self.calls += 1
        return ["a", "b"]


class Site:
    """A view-like object with methods that take arguments, raise, and subscripting."""

    title = "attribute"

    def greet(self, name: str) -> str:
        return f"hello {name}"

    def broken(self) -> str:
        raise TypeError("raised inside the method")

    def __getitem__(self, key: str) -> str:
        if key == "title":
            return "item"
        raise KeyError(key)


# methods and subscripting ------------------------------------------------------------


@pytest.mark.parametrize("invalid", ["", "INVALID"])
def test_method_that_needs_arguments_renders_as_django_renders_it(
    data: SimpleNamespace, invalid: str
) -> None:
    source = "<p>[{{ entry.serializable_value }}] [{{ view.greet }}] {{ entry.name }}</p>"
    template = Engine(string_if_invalid=invalid).from_string(source)
    live = assert_same(
        template, lambda: {"entry": Entry.objects.get(pk=data.entry.pk), "view": Site()}
    )
    assert strip_markers(live.html) == f"<p>[{invalid}] [{invalid}] alpha</p>"


def test_type_error_raised_inside_a_method_propagates(data: SimpleNamespace) -> None:
    template = Template("<p>{{ view.broken }}</p>")
    with pytest.raises(TypeError, match="raised inside the method"):
        template.render(Context({"view": Site()}))
    with pytest.raises(TypeError, match="raised inside the method"):
        render_template(template, {"view": Site()})


def test_subscripting_comes_first_as_in_django(data: SimpleNamespace) -> None:
    template = Template("<p>{{ view.title }} {{ view.greet }}</p>")
    live = assert_same(template, lambda: {"view": Site()})
    assert strip_markers(live.html) == "<p>item </p>"


# containers ---------------------------------------------------------------------------


def test_error_list_renders_as_an_error_list(data: SimpleNamespace) -> None:
    class NameForm(forms.Form):
        name = forms.CharField()

    def context() -> dict[str, Any]:
        form = NameForm(data={})
        form.is_valid()
        return {"errors": form.errors["name"], "form": form, "entry": data.entry}

    live = assert_same(
        Template("{{ errors }}<p>{{ entry.name }}</p>{{ form.name.errors }}"), context
    )
    assert strip_markers(live.html).startswith('<ul class="errorlist"')


def test_the_same_container_is_the_same_object(data: SimpleNamespace) -> None:
    template = Template("{% if a is b %}<p>same {{ entry.name }}</p>{% endif %}")
    shared = ["x"]
    live = assert_same(template, lambda: {"a": shared, "b": shared, "entry": data.entry})
    assert "same" in live.html


# loops --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "<ul>{% for x in counter.items %}<li>{{ x }}</li>{% endfor %}</ul>",
        "<ul>{% for x in counter.items %}<li>{{ x }} {{ entry.name }}</li>{% endfor %}</ul>",
        "<ul>{% for x in counter.items reversed %}<li>{{ x }}</li>{% empty %}-{% endfor %}</ul>",
    ],
)
def test_a_loop_sequence_is_evaluated_once(data: SimpleNamespace, source: str) -> None:
    plain_counter, live_counter = Counter(), Counter()
    template = Template(source)
    plain = template.render(Context({"counter": plain_counter, "entry": data.entry}))
    live = render_template(template, {"counter": live_counter, "entry": data.entry})
    assert strip_markers(live.html) == plain
    assert plain_counter.calls == live_counter.calls == 1


# nested renders -----------------------------------------------------------------------

PARENT = "<div>{% block b %}<i>{{ entry.name }}</i>{% endblock %}</div><p>{{ entry.name }}</p>"


@pytest.mark.parametrize(
    "child",
    [
        "{% block b %}{{ block.super|upper }}{% endblock %}",
        "{% block b %}{% with s=block.super %}{{ s|length }}{% endwith %}{% endblock %}",
        "{% block b %}{% filter lower %}{{ block.super }}{% endfilter %}{% endblock %}",
        "{% block b %}{{ block.super|striptags|wordcount }} {{ block.super }}{% endblock %}",
    ],
)
def test_block_super_as_a_value_shows_no_markers(data: SimpleNamespace, child: str) -> None:
    templates = engine(
        **{"parent.html": PARENT, "child.html": '{% extends "parent.html" %}' + child}
    )
    live = assert_same(templates.get_template("child.html"), lambda: {"entry": data.entry})
    assert "<!--rt:" in live.html  # the rest of the page still has its regions


def test_a_block_super_that_renders_empty_is_false(data: SimpleNamespace) -> None:
    templates = engine(
        **{
            "parent.html": "{% block b %}{{ entry.name }}{% endblock %}",
            "child.html": '{% extends "parent.html" %}'
            "{% block b %}{% if block.super %}full{% else %}empty{% endif %}{% endblock %}",
        }
    )
    live = assert_same(templates.get_template("child.html"), lambda: {"entry": data.blank})
    assert strip_markers(live.html) == "empty"


def test_bare_block_super_keeps_its_regions(data: SimpleNamespace) -> None:
    templates = engine(
        **{
            "parent.html": PARENT,
            "child.html": '{% extends "parent.html" %}{% block b %}{{ block.super }}{% endblock %}',
        }
    )
    live = assert_same(templates.get_template("child.html"), lambda: {"entry": data.entry})
    assert "<i><!--rt:" in live.html


@pytest.mark.parametrize(
    "source",
    [
        "{% load semantics %}<p>{% shouted_item entry %}</p>",
        "{% load semantics %}<p>{% item_length entry %}</p>",
    ],
)
def test_a_separate_render_inside_a_tag_shows_no_markers(
    data: SimpleNamespace, source: str
) -> None:
    template = engine().from_string(source)
    live = assert_same(template, lambda: {"entry": Entry.objects.get(pk=data.entry.pk)})
    # What the separate render read belongs to the tag that asked for it.
    assert any(("i", "testapp.entry", str(data.entry.pk)) in r.deps for r in live.regions.values())


def test_includes_keep_their_regions(data: SimpleNamespace) -> None:
    live = assert_same(
        Template('<ul>{% include "testapp/live/item.html" %}</ul>'), lambda: {"entry": data.entry}
    )
    assert '<li class="item"><!--rt:' in live.html


# partials -----------------------------------------------------------------------------

partials = pytest.mark.skipif(
    django.VERSION < (6, 0), reason="template partials ({% partialdef %}) are new in Django 6.0"
)
PAGE = (
    "{% partialdef card %}<article>{{ entry.name }}</article>{% endpartialdef %}"
    "<main>{% partial card %}{% partialdef note inline %}<small>{{ entry.position }}</small>"
    "{% endpartialdef %}</main>"
)


@partials
def test_a_page_with_partials_renders_with_tracking(data: SimpleNamespace) -> None:
    templates = engine(**{"page.html": PAGE})
    live = assert_same(templates.get_template("page.html"), lambda: {"entry": data.entry})
    assert "<article><!--rt:" in live.html and "<small><!--rt:" in live.html


@partials
def test_a_partial_renders_with_tracking(data: SimpleNamespace) -> None:
    templates = engine(**{"page.html": PAGE})
    live = assert_same(templates.get_template("page.html#card"), lambda: {"entry": data.entry})
    assert strip_markers(live.html) == "<article>alpha</article>"
    assert live.html == "<article><!--rt:1-->alpha<!--/rt:1--></article>"


@partials
def test_a_partial_renders_with_tracking_through_the_backend(data: SimpleNamespace) -> None:
    """As ``RTView`` renders ``template_name = "page.html#note"``."""
    backend = DjangoTemplates(
        {
            "NAME": "partials",
            "DIRS": [],
            "APP_DIRS": False,
            "OPTIONS": {
                "loaders": [("django.template.loaders.locmem.Loader", {"page.html": PAGE})]
            },
        }
    )
    live = render_template(backend.get_template("page.html#note"), {"entry": data.entry})
    assert live.html == f"<small><!--rt:1-->{data.entry.position}<!--/rt:1--></small>"


# querysets and the filters that treat them specially ---------------------------------

FILTERS = [
    "{{ entries|first }}",
    "{{ entries|first|default:'none' }}",
    "{{ entries|last }}",
    "{{ entries|length }}",
    "{{ entries|slice:':2' }}",
    "{{ entries|slice:'1:3'|join:',' }}",
    "{{ entries|slice:'::2'|join:',' }}",
    "{% for e in entries|slice:':2' %}<i>{{ e.name }}</i>{% endfor %}",
    "{% for e in entries|slice:'-2:' %}<i>{{ e.name }}</i>{% endfor %}",
    "{{ entries|join:', ' }}",
    "{% for e in entries|dictsort:'name' %}<i>{{ e.name }}</i>{% endfor %}",
    "{% for e in entries|dictsortreversed:'position' %}<i>{{ e }}</i>{% endfor %}",
    "{{ entries|random }}",
    "{{ entries|unordered_list }}",
    "{{ entries }}",
    "{{ entries.0 }} {{ entries.3 }} {{ entries.9 }}",
    "{% for e in entries %}{{ e }}{% endfor %}{{ entries|last }}",
    "{% for e in entries %}{{ e }}{% endfor %}{{ entries|slice:':2' }}",
    "{{ entries|make_list|length }}",
    "{{ entries|pprint }}",
    "{% if entries|length > 3 %}many{% endif %}",
    "{{ nothing|first }}|{{ nothing|last }}|{{ nothing|length }}|{{ nothing|join:',' }}",
    "{{ many }}",
]
if "length_is" in default_filters.filters:  # removed in Django 5.1
    FILTERS.append("{{ entries|length_is:'4' }}")


def outcome(render: Callable[[], str]) -> tuple[str, str]:
    try:
        return "ok", strip_markers(render())
    except Exception as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize("source", FILTERS)
def test_queryset_filters_as_in_django(data: SimpleNamespace, source: str) -> None:
    for _ in range(3):
        Entry.objects.create(name="more", position=20)
    for index in range(20):
        Author.objects.create(name=f"author {index}")

    def context() -> dict[str, Any]:
        return {
            "entries": Entry.objects.filter(author=data.ann).order_by("position"),
            "nothing": Entry.objects.none(),
            "many": Author.objects.order_by("pk"),
        }

    template = Template(f"<div>{source}</div>")
    random.seed(7)
    plain = outcome(lambda: template.render(Context(context())))
    random.seed(7)
    tracked = outcome(lambda: render_template(template, context()).html)
    assert tracked == plain


def test_last_of_a_queryset_raises_as_in_django(data: SimpleNamespace) -> None:
    template = Template("<p>{{ entries|last }}</p>")
    with pytest.raises(Exception) as plain:
        template.render(Context({"entries": Entry.objects.order_by("pk")}))
    with pytest.raises(type(plain.value), match=str(plain.value)):
        render_template(template, {"entries": Entry.objects.order_by("pk")})


def test_a_sliced_queryset_is_a_keyed_list(data: SimpleNamespace) -> None:
    template = Template(
        "<ul>{% for e in entries|slice:':2' %}<li>{{ e.name }}</li>{% endfor %}</ul>"
    )
    live = assert_same(template, lambda: {"entries": Entry.objects.order_by("name")})
    (region,) = [r for r in live.regions.values() if r.kind == "list"]
    assert region.keys == [str(data.blank.pk), str(data.entry.pk)]


@pytest.mark.parametrize(
    "source",
    [
        "{{ entries.0.name }}",
        "{{ entries|first }}",
        "{{ entries|slice:':2'|join:',' }}",
        "{{ entries|slice:'::2'|join:',' }}",
        "{% for e in entries|slice:'1:3' %}{{ e }}{% endfor %}",
        "{{ entries }}",
    ],
)
def test_queryset_indexing_runs_the_queries_django_runs(data: SimpleNamespace, source: str) -> None:
    template = Template(source)

    def queries(render: Callable[[], Any]) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            render()
        return [query["sql"] for query in captured.captured_queries]

    plain = queries(lambda: template.render(Context({"entries": Entry.objects.order_by("pk")})))
    live = queries(lambda: render_template(template, {"entries": Entry.objects.order_by("pk")}))
    assert live == plain


def test_a_sliced_list_follows_its_rows(data: SimpleNamespace) -> None:
    """A keyed list over ``entries|slice``: a row added before the slice's end comes in,
    the row pushed past it goes."""
    source = "<ul>{% for e in entries|slice:':2' %}<li>{{ e.name }}</li>{% endfor %}</ul>"

    def context() -> dict[str, Any]:
        return {"entries": Entry.objects.order_by("position", "pk")}

    page = LivePage(Template(source), context(), None)
    page.render()
    new = Entry.objects.create(name="new", position=-1)
    batch = Changes(instances={(label(Entry), str(new.pk)): new}, tables={label(Entry)})
    ops = page.update(batch)
    assert ops and strip_markers(page.html) == Template(source).render(Context(context()))
    assert "<li>new</li><li>delta</li>" in strip_markers(page.html)
