"""The live engine's key property: with its comment markers removed, a tracked render
is exactly what Django renders, byte for byte. And the shape of what it records: which
parts become regions, list regions, and what each depends on."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.template import Context, RequestContext, Template
from django.template.loader import get_template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from django_rt.live.html import DATA, scan
from django_rt.live.recorder import MARKERS, strip_markers
from django_rt.live.render import render_template

from .testapp.models import Author, Entry, Tag

pytestmark = pytest.mark.django_db

ENTRY = "testapp.entry"
AUTHOR = "testapp.author"
TAG = "testapp.tag"


@pytest.fixture
def data() -> SimpleNamespace:
    ann = Author.objects.create(name="Ann")
    bob = Author.objects.create(name="Bob <3")
    alpha = Entry.objects.create(name="Alpha", position=2, author=ann)
    beta = Entry.objects.create(name="Beta & <b>\"q'", position=1, author=ann, done=True)
    gamma = Entry.objects.create(name="Gamma", position=3, author=bob)
    delta = Entry.objects.create(name="Delta", position=4)
    red = Tag.objects.create(name="red")
    blue = Tag.objects.create(name="blue")
    red.entries.set([alpha, beta])
    blue.entries.set([alpha])
    return SimpleNamespace(
        ann=ann, bob=bob, alpha=alpha, beta=beta, gamma=gamma, delta=delta, red=red, blue=blue
    )


class FakeView:
    """What a view exposes to its template as ``view``."""

    def __init__(self) -> None:
        self.counter = 3
        self.title = "Dashboard <1>"
        self.opening = "<section>"
        self.closing = "</section>"

    @property
    def entries(self) -> Any:
        return Entry.objects.order_by("position")

    def greeting(self) -> str:
        return "hello"


def ordered() -> Any:
    return Entry.objects.order_by("position")


def base_context(d: SimpleNamespace) -> dict[str, Any]:
    return {
        "entry": Entry.objects.get(pk=d.alpha.pk),
        "beta": Entry.objects.get(pk=d.beta.pk),
        "delta": Entry.objects.get(pk=d.delta.pk),
        "author": Author.objects.get(pk=d.ann.pk),
        "tag": Tag.objects.get(pk=d.red.pk),
        "entries": ordered(),
        "authors": Author.objects.order_by("pk"),
        "undone": Entry.objects.filter(done=False).order_by("pk"),
        "nothing": Entry.objects.none(),
        "pairs": Entry.objects.order_by("pk").values_list("pk", "name"),
        "listed": list(ordered()),
        "when": datetime.datetime(2024, 5, 6, 7, 8, tzinfo=datetime.UTC),
        "words": ["x", "<y>", "z"],
        "rows": [{"n": "b", "v": 2}, {"n": "a", "v": 1}],
        "view": FakeView(),
        "flag": True,
    }


@dataclass
class Case:
    id: str
    source: str = ""  # inline template source ...
    name: str = ""  # ... or a template file's name
    extra: Callable[[SimpleNamespace], dict[str, Any]] | None = None
    tracked: bool = True  # the template reads tracked data
    request: bool = False

    def template(self) -> Template:
        if self.name:
            return get_template(self.name).template
        return Template(self.source)

    def context(self, d: SimpleNamespace) -> dict[str, Any]:
        values = base_context(d)
        if self.extra is not None:
            values.update(self.extra(d))
        return values


def case(id: str, source: str, **kwargs: Any) -> Any:
    marks = kwargs.pop("marks", ())
    return pytest.param(Case(id, source, **kwargs), id=id, marks=marks)


LOOP = "{% for e in entries %}<li>{{ e.name }}</li>{% endfor %}"

CORPUS = [
    # variables in every position
    case("content", "<p>{{ entry.name }}</p>"),
    case("content-bare", "{{ entry.name }}"),
    case("str", "<p>{{ entry }}</p>"),
    case("escaped-content", "<p>{{ beta.name }}</p>"),
    case("attribute-double", '<p title="{{ beta.name }}">x</p>'),
    case("attribute-single", "<p title='{{ beta.name }}'>x</p>"),
    case("attribute-unquoted", "<p class={{ entry.name|lower }}>x</p>"),
    case("attribute-name", "<p data-{{ entry.name|lower }}=1>x</p>"),
    case("tag-name", "<h{{ entry.position }}>t</h{{ entry.position }}>"),
    case("tag-name-whole", "<{{ entry.name|lower }}>x</{{ entry.name|lower }}>"),
    case("script", '<script>var name = "{{ beta.name|escapejs }}"; if (a < b) {}</script>'),
    case("script-json", "{{ beta.name|json_script:'entry-name' }}"),
    case(
        "style", "<style>.x::after { content: '{{ entry.name }}'; }</style><p>{{ entry.name }}</p>"
    ),
    case("textarea", "<textarea name=t>{{ beta.name }}</textarea>"),
    case("title", "<title>{{ entry.name }} | site</title><h1>{{ entry.name }}</h1>"),
    case("comment", "<!-- {{ entry.name }} --><p>{{ entry.name }}</p>"),
    case(
        "doctype",
        "<!DOCTYPE html><html><head><title>{{ entry }}</title></head>"
        "<body><p>{{ entry.name }}</p></body></html>",
    ),
    case("xml-pi", '<?xml version="1.0"?><svg><text>{{ entry.name }}</text></svg>'),
    case("lt-not-a-tag", "<p>1 < 2 {{ entry.name }} <3 {{ entry.position }}</p>"),
    # filters with arguments
    case("upper", "<p>{{ entry.name|upper }}</p>"),
    case("default", '<p>{{ delta.author.name|default:"nobody" }}</p>'),
    case("default-none-fk", '<p>{{ delta.author|default:"none" }}</p>'),
    case("date", '<p>{{ when|date:"Y" }} {{ entry.name }}</p>'),
    case("length", "<p>{{ entries|length }} {{ entries|length|pluralize }}</p>"),
    case("join", '<p>{{ entries|join:", " }}</p>'),
    case("join-words", '<p>{{ words|join:", " }} {{ entry.name }}</p>'),
    case("slice-string", '<p>{{ entry.name|slice:":2" }}</p>'),
    case(
        "slice-queryset", '<ul>{% for e in entries|slice:":2" %}<li>{{ e }}</li>{% endfor %}</ul>'
    ),
    case("first", "<p>{{ entries|first }} / {{ listed|last }}</p>"),
    case("index", "<p>{{ entries.0.name }} {{ entries.1 }}</p>"),
    case("dictsort-dicts", '{% for r in rows|dictsort:"n" %}{{ r.n }}{% endfor %}{{ entry }}'),
    case(
        "dictsort-queryset", '{% for e in entries|dictsort:"name" %}<i>{{ e.name }}</i>{% endfor %}'
    ),
    case("yesno", '<p>{{ entry.done|yesno:"yes,no" }} {{ beta.done|yesno:"yes,no" }}</p>'),
    case("add", "<p>{{ entry.position|add:10 }}</p>"),
    case("linebreaks", "<div>{{ beta.name|linebreaks }}</div>"),
    case("count-method", "<p>{{ entries.count }} {{ entry.tags.count }}</p>"),
    case("first-method", "{% with f=entries.first %}<p>{{ f.name }}</p>{% endwith %}"),
    # conditions
    case("if-attribute", "<p>{% if entry.done %}done{% else %}open{% endif %}</p>"),
    case(
        "if-elif-else",
        "<p>{% if entry.done %}<b>{{ entry.name }}</b>{% elif entry.author %}"
        "<i>{{ entry.author.name }}</i>{% else %}{{ entry.name }}{% endif %}</p>",
    ),
    case(
        "if-elif-else-none",
        "{% if delta.done %}a{% elif delta.author %}b{% else %}<s>c</s>{% endif %}",
    ),
    case("if-queryset", "{% if entries %}<ul>" + LOOP + "</ul>{% else %}<p>none</p>{% endif %}"),
    case("if-empty-queryset", "{% if nothing %}<ul>x</ul>{% else %}<p>none</p>{% endif %}"),
    case("if-exists", "{% if undone.exists %}<p>some</p>{% endif %}"),
    case("if-compare", "{% if entry.position > 1 and not entry.done %}<p>y</p>{% endif %}"),
    case("if-fk-compare", '{% if entry.author.name == "Ann" %}<p>ann</p>{% endif %}'),
    case(
        "if-in",
        "{% if entry in undone %}<p>in</p>{% endif %}{% if beta in undone %}<p>b</p>{% endif %}",
    ),
    case("if-in-tag", '<div{% if beta.done %} class="done"{% endif %}>x</div>'),
    case(
        "if-in-attribute", '<div class="{% if entry.done %}done{% else %}open{% endif %}">x</div>'
    ),
    case(
        "unbalanced-if",
        "{% if entry.author %}<div class=a>{% endif %}<p>{{ entry.name }}</p>"
        "{% if entry.author %}</div>{% endif %}",
    ),
    case(
        "unbalanced-if-else",
        "{% if entry.done %}<section>{% else %}<div>{% endif %}{{ entry.name }}"
        "{% if entry.done %}</section>{% else %}</div>{% endif %}",
    ),
    # loops
    case("for-queryset", "<ul>" + LOOP + "</ul>"),
    case(
        "for-empty",
        "<ul>{% for e in nothing %}<li>{{ e }}</li>{% empty %}<li>none</li>{% endfor %}</ul>",
    ),
    case(
        "for-empty-unused",
        "<ul>{% for e in entries %}<li>{{ e }}</li>{% empty %}<li>none</li>{% endfor %}</ul>",
    ),
    case(
        "for-counter",
        "<ol>{% for e in entries %}<li>{{ forloop.counter }}. {{ e.name }}</li>{% endfor %}</ol>",
    ),
    case(
        "for-loopvars",
        "{% for e in entries %}<i>{{ forloop.counter0 }}{{ forloop.revcounter }}"
        "{{ forloop.revcounter0 }}{{ forloop.first }}{{ forloop.last }}</i>{% endfor %}",
    ),
    case(
        "for-nested-parentloop",
        "{% for a in authors %}<h2>{{ a.name }}</h2><ul>{% for e in a.entry_set.all %}"
        "<li>{{ forloop.parentloop.counter }}.{{ forloop.counter }} {{ e.name }}</li>"
        "{% endfor %}</ul>{% endfor %}",
    ),
    case(
        "for-nested",
        "{% for a in authors %}<div>{% for t in tag.entries.all %}<b>{{ a.name }}{{ t.name }}</b>"
        "{% endfor %}</div>{% endfor %}",
    ),
    case(
        "for-reversed", "<ul>{% for e in entries reversed %}<li>{{ e.name }}</li>{% endfor %}</ul>"
    ),
    case(
        "for-unpack-values-list",
        "{% for pk, name in pairs %}<p>{{ pk }}={{ name }}</p>{% endfor %}",
    ),
    case(
        "for-unpack-items",
        "{% for key, value in mapping.items %}<p>{{ key }}={{ value.name }}</p>{% endfor %}",
        extra=lambda d: {"mapping": {"a": Entry.objects.get(pk=d.alpha.pk)}},
    ),
    case(
        "for-list-of-instances", "<ul>{% for e in listed %}<li>{{ e.name }}</li>{% endfor %}</ul>"
    ),
    case("for-list-reversed", "{% for e in listed reversed %}{{ e }}{% endfor %}"),
    case("for-filtered", "<ul>{% for e in undone %}<li>{{ e.name }}</li>{% endfor %}</ul>"),
    case("for-all-method", "<ul>{% for e in entries.all %}<li>{{ e.name }}</li>{% endfor %}</ul>"),
    case(
        "for-first-last",
        "{% for e in entries %}{% if forloop.first %}<hr>{% endif %}<p>{{ e }}</p>{% endfor %}",
    ),
    case("for-in-attribute", '<p title="{% for e in entries %}{{ e.name }} {% endfor %}">x</p>'),
    case(
        "for-in-script",
        "<script>var names = [{% for e in entries %}'{{ e.name|escapejs }}',"
        "{% endfor %}];</script>",
    ),
    case(
        "if-equal",
        "{% if entry == entries.1 %}<p>same</p>{% endif %}"
        "{% if entry != beta %}<p>diff</p>{% endif %}",
    ),
    case(
        "unbalanced-in-loop",
        "<ul>{% for e in entries %}<li>{% if e == entry %}<b>{% endif %}{{ e.name }}"
        "{% if e == entry %}</b>{% endif %}</li>{% endfor %}</ul>",
    ),
    case(
        "nested-lists-include",
        "{% for a in authors %}<ul>{% for e in a.entry_set.all %}"
        '{% include "testapp/live/item.html" with entry=e %}'
        "{% empty %}<li>none</li>{% endfor %}</ul>{% endfor %}",
    ),
    case("pre", "<pre>{{ entry.name }}\n{{ beta.name }}</pre>"),
    case(
        "regroup",
        "{% regroup entries by author as groups %}{% for g in groups %}<h3>{{ g.grouper }}</h3>"
        "{% for e in g.list %}<p>{{ e.name }}</p>{% endfor %}{% endfor %}",
    ),
    # with, cycle, ifchanged, firstof, misc tags
    case("with", "{% with e=entry %}<p>{{ e.name }}</p>{% endwith %}"),
    case("with-length", "{% with n=entries|length %}<p>{{ n }}</p>{% endwith %}"),
    case(
        "cycle",
        '{% for e in entries %}<li class="'
        "{% cycle 'odd' 'even' %}\">{{ e.name }}</li>{% endfor %}",
    ),
    case(
        "cycle-content",
        "{% for e in entries %}<li>{% cycle 'a' 'b' %} {{ e.name }}</li>{% endfor %}",
    ),
    case(
        "cycle-resetcycle",
        "{% for a in authors %}{% for e in a.entry_set.all %}<i>{% cycle 'x' 'y' %}{{ e }}</i>"
        "{% endfor %}{% resetcycle %}{% endfor %}",
    ),
    case(
        "ifchanged-args",
        "{% for e in entries %}{% ifchanged e.author %}"
        "<h3>{{ e.author.name }}</h3>{% endifchanged %}"
        "<p>{{ e.name }}</p>{% endfor %}",
    ),
    case("firstof", '<p>{% firstof delta.author.name entry.author.name "anon" %}</p>'),
    case("widthratio", "<p>{% widthratio entry.position 4 100 %}</p>"),
    case(
        "verbatim", "{% verbatim %}<p>{{ entry.name }}</p>{% endverbatim %}<p>{{ entry.name }}</p>"
    ),
    case(
        "comment-tag",
        "{% comment %}<p>{{ entry.name }}</p>{% endcomment %}{# {{ entry }} #}<p>{{ entry }}</p>",
    ),
    case("templatetag", "<p>{% templatetag openvariable %} {{ entry.name }}</p>"),
    case("lorem", "<p>{% lorem 3 w %} {{ entry.name }}</p>"),
    # escaping
    case("autoescape-off", "{% autoescape off %}<p>{{ beta.name }}</p>{% endautoescape %}"),
    case(
        "autoescape-nested",
        "{% autoescape off %}{{ beta.name }}{% autoescape on %}"
        "<p>{{ beta.name }}</p>{% endautoescape %}{% endautoescape %}",
    ),
    case("property", "<div>{{ beta.emphasis }}</div>"),
    case("property-safe", "<div>{{ beta.emphasis|safe }}</div>"),
    case(
        "escape-filter", "<div>{% autoescape off %}{{ beta.name|escape }}{% endautoescape %}</div>"
    ),
    case(
        "safe-unbalanced", "{{ view.opening|safe }}<p>{{ entry.name }}</p>{{ view.closing|safe }}"
    ),
    # relations
    case("fk", "<p>{{ entry.author.name }}</p>"),
    case("fk-str", "<p>{{ entry.author }}</p>"),
    case("fk-missing", "<p>[{{ delta.author.name }}]</p>"),
    case(
        "reverse", "<ul>{% for e in author.entry_set.all %}<li>{{ e.name }}</li>{% endfor %}</ul>"
    ),
    case("reverse-count", "<p>{{ author.entry_set.count }}</p>"),
    case("m2m", "<ul>{% for t in entry.tags.all %}<li>{{ t.name }}</li>{% endfor %}</ul>"),
    case("m2m-reverse", "<ul>{% for e in tag.entries.all %}<li>{{ e.name }}</li>{% endfor %}</ul>"),
    case("owner", "<p>[{{ entry.owner.username }}]</p>"),
    # tables and selects
    case(
        "table-tbody",
        "<table><tbody>{% for e in entries %}<tr><td>{{ e.name }}</td>"
        '<td>{{ e.done|yesno:"y,n" }}</td></tr>{% endfor %}</tbody></table>',
    ),
    case(
        "table-rows",
        "<table>{% for e in entries %}<tr><td>{{ e.name }}</td></tr>{% endfor %}</table>",
    ),
    case(
        "select",
        '<select name="e">{% for e in entries %}<option value="{{ e.pk }}"'
        "{% if e.done %} selected{% endif %}>{{ e.name }}</option>{% endfor %}</select>",
    ),
    # the view
    case("view", "<p>{{ view.counter }}</p><p>{{ view.greeting }}</p>"),
    case("view-title", "<title>{{ view.title }}</title><p>{{ view.title }}</p>"),
    case("view-queryset", "<ul>{% for e in view.entries %}<li>{{ e.name }}</li>{% endfor %}</ul>"),
    # includes, inheritance, custom tags
    case("include", '<ul>{% include "testapp/live/item.html" %}</ul>'),
    case(
        "include-with",
        "<ul>{% for e in entries %}"
        '{% include "testapp/live/item.html" with entry=e label="x" %}{% endfor %}</ul>',
    ),
    case(
        "include-only",
        "<ul>{% for e in entries %}"
        '{% include "testapp/live/item.html" with entry=e only %}{% endfor %}</ul>',
    ),
    case("include-in-title", '<title>{% include "testapp/live/item.html" %}</title>'),
    case("extends", "", name="testapp/live/child.html"),
    case("extends-base", "", name="testapp/live/base.html"),
    case("extends-if", "", name="testapp/live/child_if.html"),
    case(
        "extends-inline",
        '{% extends "testapp/live/base.html" %}'
        "{% block content %}<p>{{ entry.name }}</p>{% endblock %}",
    ),
    case("inclusion-tag", "{% load live_tags %}<div>{% entry_card entry %}</div>"),
    case(
        "inclusion-tag-loop",
        '{% load live_tags %}{% for e in entries %}{% entry_card e note="n" %}{% endfor %}',
    ),
    case(
        "simple-tag", "{% load live_tags %}<p>{% shout entry.name %} {% shout beta.name '?' %}</p>"
    ),
    case("simple-tag-as", "{% load live_tags %}{% shout entry.name as loud %}<p>{{ loud }}</p>"),
    case("block-tag", '{% load live_tags %}{% boxed "x" %}<p>{{ entry.name }}</p>{% endboxed %}'),
    case(
        "block-tag-loop",
        "{% load live_tags %}{% boxed entry.name %}<ul>" + LOOP + "</ul>{% endboxed %}",
    ),
    case(
        "request",
        "<p>{{ request.path }} {{ entry.name }} {{ user.is_authenticated }}</p>",
        request=True,
    ),
    # known failures: nodes that post-process the output of their children
    case(
        "filter-tag",
        "{% filter upper %}<p>{{ entry.name }}</p>{% endfilter %}",
    ),
    case(
        "filter-force-escape",
        "{% filter force_escape %}<p>{{ entry.name }}</p>{% endfilter %}",
    ),
    case(
        "spaceless",
        "{% spaceless %}<p>x {% if entry.name %} "
        "<b>{{ entry.name }}</b>{% endif %}</p>{% endspaceless %}",
    ),
    case(
        "ifchanged-content",
        "{% for e in entries %}{% ifchanged %}"
        "<h3>{{ e.author.name }}</h3>{% endifchanged %}{% endfor %}",
    ),
    case(
        "queryset-str",
        "<p>{{ entries }}</p>",
    ),
    case(
        "manager-str",
        "<p>{{ entry.tags }}</p>",
    ),
]

UNTRACKED = [
    case("plain-text", "<p>hello</p>", tracked=False),
    case("plain-vars", "<p>{{ words.0 }} {{ flag }} {{ missing }}</p>", tracked=False),
    case("plain-loop", "<ul>{% for w in words %}<li>{{ w }}</li>{% endfor %}</ul>", tracked=False),
    case(
        "plain-dicts", '{% for r in rows|dictsort:"v" %}<p>{{ r.n }}</p>{% endfor %}', tracked=False
    ),
    case(
        "plain-if", "{% if flag %}<b>{{ words|join:'-' }}</b>{% else %}no{% endif %}", tracked=False
    ),
    case("plain-date", '<time>{{ when|date:"Y-m-d" }}</time>', tracked=False),
    case(
        "plain-cycle",
        "{% for w in words %}<i>{% cycle 'a' 'b' %}{{ w }}</i>{% endfor %}",
        tracked=False,
    ),
    case(
        "plain-include",
        '<ul>{% include "testapp/live/item.html" with entry=row %}</ul>',
        tracked=False,
        extra=lambda d: {"row": {"name": "dict row", "done": True}},
    ),
    case(
        "plain-inclusion-tag",
        "{% load live_tags %}{% entry_card row %}",
        tracked=False,
        extra=lambda d: {"row": {"name": "n", "author": {"name": "a"}}},
    ),
    case(
        "plain-block-tag",
        '{% load live_tags %}{% boxed "c" %}<p>{{ words.1 }}</p>{% endboxed %}',
        tracked=False,
    ),
    case(
        "plain-extends",
        '{% extends "testapp/live/base.html" %}{% block title %}{{ words.0 }}{% endblock %}',
        tracked=False,
        extra=lambda d: {"entry": {"name": "not a model"}},
    ),
    case(
        "plain-request",
        "<p>{{ request.path }} {{ user.is_authenticated }}</p>",
        tracked=False,
        request=True,
    ),
]


def render_both(c: Case, d: SimpleNamespace) -> tuple[Any, str]:
    template = c.template()
    if c.request:
        request = RequestFactory().get("/some/path/")
        live = render_template(template, c.context(d), request)
        plain = template.render(RequestContext(request, c.context(d)))
    else:
        live = render_template(template, c.context(d))
        plain = template.render(Context(c.context(d)))
    return live, plain


def marker_ids(html: str) -> list[tuple[bool, str]]:
    """(is start, id) of each marker, in order."""
    found = []
    for match in MARKERS.finditer(html):
        text = match.group()[4:-3]
        found.append((not text.startswith("/"), text.removeprefix("/").removeprefix("rt:")))
    return found


def assert_well_formed(live: Any) -> None:
    """Markers nest properly, stand in element content, and match the regions."""
    stack: list[str] = []
    seen: list[str] = []
    for start, region_id in marker_ids(live.html):
        if start:
            stack.append(region_id)
            seen.append(region_id)
        else:
            assert stack and stack.pop() == region_id, region_id
    assert not stack
    assert len(seen) == len(set(seen))
    # ids of items are REGION#KEY; any other id is a region's
    assert {rid for rid in seen if "#" not in rid.rsplit(".", 1)[-1]} == set(live.regions)
    for region in live.regions.values():
        if region.kind == "list":
            prefix = region.id + "#"
            keys = [rid[len(prefix) :] for rid in seen if rid.startswith(prefix)]
            assert [key for key in keys if "." not in key and "#" not in key] == region.keys
    # Every marker stands where a comment is element content.
    state, position = DATA, 0
    for match in MARKERS.finditer(live.html):
        state = scan(state, live.html[position : match.start()])
        assert state.markable, (live.html[: match.start()], state)
        position = match.end()


@pytest.mark.parametrize("c", CORPUS)
def test_markers_removed_is_what_django_renders(data: SimpleNamespace, c: Case) -> None:
    live, plain = render_both(c, data)
    assert strip_markers(live.html) == plain
    assert live.regions or live.page_dependencies, "the case reads nothing tracked"
    assert_well_formed(live)


@pytest.mark.parametrize("c", UNTRACKED)
def test_untracked_render_has_no_markers(data: SimpleNamespace, c: Case) -> None:
    live, plain = render_both(c, data)
    assert live.html == plain
    assert "<!--rt:" not in live.html and "<!--/rt:" not in live.html
    assert live.regions == {}
    assert live.page_dependencies == frozenset()


def test_corpus_is_broad() -> None:
    assert len(CORPUS) >= 60
    assert len({p.id for p in CORPUS}) == len(CORPUS)


def test_render_is_deterministic(data: SimpleNamespace) -> None:
    template = get_template("testapp/live/child.html")
    first = render_template(template, base_context(data))
    second = render_template(template, base_context(data))
    assert first.html == second.html
    assert set(first.regions) == set(second.regions)
    assert first.hash == second.hash


# shape ---------------------------------------------------------------------------------


def render(source: str, d: SimpleNamespace, **extra: Any) -> Any:
    return render_template(Template(source), {**base_context(d), **extra})


def instance(obj: Any) -> tuple[str, str, str]:
    return ("i", obj._meta.label_lower, str(obj.pk))


def test_content_variable_is_a_region(data: SimpleNamespace) -> None:
    live = render("<p>{{ entry.name }}</p>", data)
    assert live.html == "<p><!--rt:1-->Alpha<!--/rt:1--></p>"
    region = live.regions["1"]
    assert region.kind == "node"
    assert region.html == "Alpha"
    assert region.deps == {instance(data.alpha)}
    assert live.page_dependencies == frozenset()


@pytest.mark.parametrize(
    "source",
    [
        '<p title="{{ entry.name }}">x</p>',
        "<p title='{{ entry.name }}'>x</p>",
        "<p title={{ entry.name }}>x</p>",
        "<title>{{ entry.name }}</title>",
        "<textarea>{{ entry.name }}</textarea>",
        "<script>var n = '{{ entry.name }}';</script>",
        "<style>/* {{ entry.name }} */</style>",
        "<!-- {{ entry.name }} -->",
        "<{{ entry.name }}>",
        '<title>{% include "testapp/live/item.html" %}</title>',
        '<p title="{% if entry.done %}{{ entry.name }}{% endif %}">x</p>',
    ],
)
def test_non_content_read_goes_to_the_page(data: SimpleNamespace, source: str) -> None:
    live = render(source, data)
    assert "<!--rt:" not in live.html
    assert live.regions == {}
    assert instance(data.alpha) in live.page_dependencies


def test_attribute_read_goes_to_the_enclosing_region(data: SimpleNamespace) -> None:
    live = render('{% if entry.author %}<b title="{{ entry.name }}">x</b>{% endif %}', data)
    assert live.html.startswith('<!--rt:1--><b title="Alpha">')
    assert live.regions["1"].deps == {instance(data.alpha)}
    assert live.page_dependencies == frozenset()


def test_for_over_queryset_is_a_list_region(data: SimpleNamespace) -> None:
    live = render("<ul>" + LOOP + "</ul>", data)
    region = live.regions["1"]
    expected = [str(e.pk) for e in (data.beta, data.alpha, data.gamma, data.delta)]
    assert region.kind == "list"
    assert region.keys == expected
    assert list(region.items) == expected
    assert ("t", ENTRY) in region.deps
    for key in expected:
        assert f"<!--rt:1#{key}--><li>" in live.html
        assert f"<!--/rt:1#{key}-->" in live.html
        assert region.items[key].startswith("<li>")
    # each name is a region of its own inside its item
    alpha = f"1#{data.alpha.pk}.1"
    assert live.regions[alpha].deps == {instance(data.alpha)}
    assert live.regions[alpha].html == "Alpha"
    assert region.html == live.html[len("<ul><!--rt:1-->") : -len("<!--/rt:1--></ul>")]


def test_reversed_list_keys(data: SimpleNamespace) -> None:
    live = render("{% for e in entries reversed %}<p>{{ e.name }}</p>{% endfor %}", data)
    keys = [str(e.pk) for e in (data.delta, data.gamma, data.alpha, data.beta)]
    assert live.regions["1"].keys == keys


def test_filtered_and_empty_lists(data: SimpleNamespace) -> None:
    live = render(
        "<ul>{% for e in undone %}<li>{{ e }}</li>{% endfor %}</ul>"
        "<ul>{% for e in nothing %}<li>{{ e }}</li>{% empty %}<li>none</li>{% endfor %}</ul>",
        data,
    )
    assert live.regions["1"].keys == [str(e.pk) for e in (data.alpha, data.gamma, data.delta)]
    empty = live.regions["2"]
    assert empty.kind == "list"
    assert empty.keys == []
    assert empty.html == "<li>none</li>"
    assert empty.deps == {("t", ENTRY)}


def test_list_item_reads_without_a_region_belong_to_the_list(data: SimpleNamespace) -> None:
    live = render('{% for e in entries %}<li title="{{ e.name }}">x</li>{% endfor %}', data)
    region = live.regions["1"]
    assert region.deps == {("t", ENTRY)} | {
        instance(e) for e in (data.alpha, data.beta, data.gamma, data.delta)
    }
    assert set(live.regions) == {"1"}


def test_foreign_key_read_depends_on_both_rows(data: SimpleNamespace) -> None:
    live = render("<p>{{ entry.author.name }}</p>", data)
    assert live.regions["1"].deps == {instance(data.alpha), instance(data.ann)}


def test_reverse_and_many_to_many_lists(data: SimpleNamespace) -> None:
    live = render(
        "<ul>{% for e in author.entry_set.all %}<li>{{ e.name }}</li>{% endfor %}</ul>"
        "<ul>{% for t in entry.tags.all %}<li>{{ t.name }}</li>{% endfor %}</ul>",
        data,
    )
    reverse, tags = live.regions["1"], live.regions["2"]
    assert reverse.kind == tags.kind == "list"
    assert sorted(reverse.keys) == sorted([str(data.alpha.pk), str(data.beta.pk)])
    assert ("t", ENTRY) in reverse.deps
    assert sorted(tags.keys) == sorted([str(data.red.pk), str(data.blue.pk)])
    assert ("t", TAG) in tags.deps
    assert instance(data.alpha) in tags.deps  # entry.tags read the entry


def test_cycle_makes_the_loop_not_a_region(data: SimpleNamespace) -> None:
    live = render(
        '<ul>{% for e in entries %}<li class="'
        "{% cycle 'odd' 'even' %}\">{{ e.name }}</li>{% endfor %}</ul>",
        data,
    )
    assert all(region.kind != "list" for region in live.regions.values())
    assert "#" not in "".join(live.regions)
    assert ("t", ENTRY) in live.page_dependencies
    # the names are still regions of their own
    assert sorted(r.html for r in live.regions.values()) == sorted(
        ["Alpha", "Beta &amp; &lt;b&gt;&quot;q&#x27;", "Gamma", "Delta"]
    )


def test_block_super_is_not_a_region(data: SimpleNamespace) -> None:
    live = render_template("testapp/live/child.html", base_context(data))
    assert "<footer><small><!--rt:" in live.html  # the parent's variable is a region
    for region in live.regions.values():
        assert "block.super" not in getattr(region.node, "token", None).contents


def test_list_over_instances_is_a_plain_region(data: SimpleNamespace) -> None:
    live = render('{% for e in listed %}<p title="{{ e.name }}">x</p>{% endfor %}', data)
    region = live.regions["1"]
    assert region.kind == "node"
    assert region.keys == []
    assert instance(data.gamma) in region.deps
    assert ("t", ENTRY) not in region.deps


def test_unbalanced_branches_are_not_regions(data: SimpleNamespace) -> None:
    live = render(
        "{% if entry.author %}<div class=a>{% endif %}"
        "<p>{{ entry.name }}</p>{% if entry.author %}</div>{% endif %}",
        data,
    )
    (only,) = live.regions.values()
    assert only.html == "Alpha"
    assert live.html == f"<div class=a><p><!--rt:{only.id}-->Alpha<!--/rt:{only.id}--></p></div>"
    assert instance(data.alpha) in live.page_dependencies


def test_view_read_is_a_region(data: SimpleNamespace) -> None:
    live = render("<p>{{ view.counter }}</p><title>{{ view.title }}</title>", data)
    assert live.html.startswith("<p><!--rt:1-->3<!--/rt:1--></p>")
    assert live.regions["1"].deps == {("v",)}
    assert ("v",) in live.page_dependencies


def test_included_and_inclusion_tag_templates_get_regions(data: SimpleNamespace) -> None:
    live = render(
        '{% load live_tags %}<ul>{% include "testapp/live/item.html" %}</ul>{% entry_card entry %}',
        data,
    )
    assert '<li class="item"><!--rt:1.1-->Alpha<!--/rt:1.1-->' in live.html
    assert any(region.html == "Ann" for region in live.regions.values())


def test_rows_directly_in_table_are_not_marked(data: SimpleNamespace) -> None:
    live = render(
        "<table>{% for e in entries %}<tr><td>{{ e.name }}</td></tr>{% endfor %}</table>", data
    )
    assert not re.search(r"<table><!--rt:[^>]*--><tr>|<table><!--rt:[^>]*--><!--rt:", live.html)


def queries(render: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        render()
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "{% for e in entries %}{{ e.name }}{% endfor %}{{ entries|length }}", id="loop"
        ),
        pytest.param("{{ entry.tags.count }}{{ entry.author.name }}", id="related"),
        pytest.param("<p>{{ entries.count }}</p>", id="count"),
        pytest.param("{% if entries.exists %}y{% endif %}", id="exists"),
        pytest.param("{{ entries.first.name }}", id="first"),
    ],
)
def test_tracked_render_runs_the_queries_django_runs(data: SimpleNamespace, source: str) -> None:
    template = Template(source)
    entry = Entry.objects.get(pk=data.alpha.pk)
    plain = queries(lambda: template.render(Context({"entries": ordered(), "entry": entry})))
    entry = Entry.objects.get(pk=data.alpha.pk)
    live = queries(lambda: render_template(template, {"entries": ordered(), "entry": entry}))
    assert live == plain


def test_item_keys_are_marker_safe() -> None:
    from django_rt.live.recorder import item_key

    assert item_key(12) == "12" and item_key(0) == "0"
    assert item_key(-3) == "%2D3"  # a key that is an int is no exception
    assert item_key(True) == "True"  # a bool is not taken for an int
    assert item_key("a_b.c") == "a_b%2Ec"  # "." separates region ids
    assert item_key("a b-c>%") == "a%20b%2Dc%3E%25"
    assert item_key("a b") != item_key("a%20b")
