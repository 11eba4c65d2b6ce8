"""What a tracked render puts in the page, read as a browser reads it: item keys that
stay distinct and never look like nested ids, markers that never change how the page is
parsed, and marker-like text from the data that never captures a patch.

``client_apply`` mirrors how ``rt.js`` finds a region (the last start comment of that
id in the page, then the next end comment of it) to check where a patch lands, without a
browser; ``tests/e2e/test_output_safety.py`` checks the same in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from django import template
from django.template import Context, Engine, Template
from django.utils.safestring import mark_safe

from django_rt.hub import QueryCache
from django_rt.live.html import read
from django_rt.live.page import Changes, LivePage
from django_rt.live.recorder import MARKERS, end_marker, item_key, start_marker, strip_markers
from django_rt.live.render import render_template
from django_rt.protocol import PatchKey, PatchOp

from .test_live_invariant import CORPUS, Case, data, render_both  # noqa: F401  (a fixture)
from .testapp.models import Entry, Label, Tag

pytestmark = pytest.mark.django_db

LABEL = "testapp.label"
LIST = "<ul>{% for label in labels %}<li>{{ label.name }}</li>{% endfor %}</ul>"

#: Primary keys that broke item keys: an escape of varying width ("\u2d30" and "-30"
#: both gave "%2D30"), dots that read as nested ids ("a.1": region 1 of item "a"),
#: and what must never end up in a comment.
AWKWARD_KEYS = [
    "\u2d30",
    "-30",
    "a",
    "a.1",
    "a#1",
    "1",
    "1.1",
    "50%",
    "%25",
    "%2D30",
    "-->",
    "--!>",
    "a b",
    "x>y",
    "\U0001f600",
    "%F0%9F%98%80",
    "_",
    "É",
]


#: A tag library for ``ENGINE`` (``{% load forging %}``): a custom tag that renders a
#: tracked template and writes marker-like text of its own beside it.
register = template.Library()
ENGINE = Engine(libraries={"forging": "tests.test_output_safety"})


@register.simple_tag(takes_context=True)
def forging_list(context: Context, forged: str) -> str:
    return mark_safe(Template(LIST).render(context) + forged)


def labels() -> Any:
    return Label.objects.order_by("code")


def create(*codes: str) -> list[Label]:
    return [Label.objects.create(code=code, name=f"name of {code}") for code in codes]


def assert_markers_hold(html: str, regions: dict[str, Any]) -> None:
    """As a browser reads ``html``: every marker is a comment that changes nothing around
    it (none swallowed by a tag, a comment, a script), each once, and every region (and
    list item) has both of its markers."""
    reading = read(html)
    names = [comment.data for comment in reading.markers if comment.exact]
    assert all(comment.exact and comment.placed for comment in reading.markers), reading
    assert len(names) == len(set(names)), names
    assert len(MARKERS.findall(html)) == len(names), "marker text the browser reads otherwise"
    for region_id, region in regions.items():
        for name in (region_id, *(f"{region_id}#{key}" for key in region.keys)):
            assert f"rt:{name}" in names and f"/rt:{name}" in names, name


def client_apply(html: str, ops: list[dict[str, Any]]) -> str:
    """``ops`` applied to ``html`` as ``rt.js`` applies them (region and list ops)."""
    for op in ops:
        if op[PatchKey.OP] == PatchOp.MORPH:  # the whole body (these pages are all body)
            html = op[PatchKey.HTML]
            continue
        start, end = _find_region(html, op[PatchKey.ID])
        if op[PatchKey.OP] == PatchOp.REGION:
            html = html[:start] + op[PatchKey.HTML] + html[end:]
            continue
        assert op[PatchKey.OP] == PatchOp.LIST
        region_id, inner = op[PatchKey.ID], html[start:end]
        have: dict[str, str] = {}
        position = 0
        prefix = f"<!--rt:{region_id}#"
        while (at := inner.find(prefix, position)) >= 0:
            key = inner[at + len(prefix) : inner.index("-->", at)]
            stop = inner.index(end_marker(f"{region_id}#{key}"), at)
            have[key] = inner[at + len(start_marker(f"{region_id}#{key}")) : stop]
            position = stop
        items = {**have, **op[PatchKey.ITEMS]}
        body = "".join(
            start_marker(f"{region_id}#{key}") + items[key] + end_marker(f"{region_id}#{key}")
            for key in op[PatchKey.KEYS]
        )
        html = html[:start] + body + html[end:]
    return html


def _find_region(html: str, region_id: str) -> tuple[int, int]:
    # rt.js indexes the start comments in page order: the last one of an id wins.
    start = html.rindex(start_marker(region_id)) + len(start_marker(region_id))
    return start, html.index(end_marker(region_id), start)


def as_shown(plain: str) -> str:
    """What Django renders, with the space that marker-like comments gain in a page."""
    return re.sub(r"<!(?:--)?(?=/?rt:)|</(?=/rt:)", lambda match: match.group() + " ", plain)


class Page:
    """A live page over a template, and what its browser shows after each update."""

    def __init__(self, source: str, make_context: Callable[[], dict[str, Any]]) -> None:
        self.source = source
        self.make_context = make_context
        self.live = LivePage(Template(source), make_context(), None)
        self.browser = self.live.render()

    def update(
        self, *saved: Any, deleted: tuple[Any, ...] = (), tables: frozenset[str] = frozenset()
    ):
        instances: dict[tuple[str, str], Any] = {}
        for obj in saved:
            instances[(obj._meta.label_lower, str(obj.pk))] = type(obj).objects.get(pk=obj.pk)
        for model, pk in deleted:
            instances[(model._meta.label_lower, str(pk))] = None
        touched = {model._meta.label_lower for model, _ in deleted}
        touched |= {obj._meta.label_lower for obj in saved}
        changes = Changes(instances=instances, tables=touched | tables, evaluate=QueryCache())
        ops = self.live.update(changes)
        self.browser = client_apply(self.browser, ops)
        return ops

    def assert_fresh(self) -> None:
        """The server's copy and the browser's both show what Django renders now (with
        marker-like comments neutralised)."""
        expected = as_shown(Template(self.source).render(Context(self.make_context())))
        assert strip_markers(self.live.html) == expected
        assert strip_markers(self.browser) == expected
        assert_markers_hold(self.live.html, self.live.regions)


# item keys -----------------------------------------------------------------------------


def test_item_keys_are_injective_and_comment_safe() -> None:
    keys = [item_key(pk) for pk in AWKWARD_KEYS]
    assert len(set(keys)) == len(keys)
    for pk, key in zip(AWKWARD_KEYS, keys, strict=True):
        assert re.fullmatch(r"[A-Za-z0-9_%]+", key), key  # no ".", "#", "-", ">", space
        assert unquote(key) == pk
    assert item_key("\u2d30") != item_key("-30")
    assert item_key(17) == "17" and item_key("a_1") == "a_1"


def test_colliding_keys_both_render() -> None:
    create("\u2d30", "-30")
    live = render_template(Template(LIST), {"labels": labels()})
    region = live.regions["1"]
    assert region.kind == "list"
    assert len(region.keys) == len(region.items) == 2
    assert "name of \u2d30" in live.html and "name of -30" in live.html
    assert strip_markers(live.html) == Template(LIST).render(Context({"labels": labels()}))
    assert_markers_hold(live.html, live.regions)


def test_dotted_key_is_not_read_as_a_nested_region() -> None:
    create("a", "a.1", "a.1.1")
    page = Page(LIST, lambda: {"labels": labels()})
    ids = [comment.data for comment in read(page.live.html).markers]
    assert len(ids) == len(set(ids))  # no item id equals a region id nested in another item
    row = Label.objects.get(code="a")
    row.name = "renamed"
    row.save()
    (op,) = page.update(row)
    assert op[PatchKey.OP] == PatchOp.REGION and op[PatchKey.HTML] == "renamed"
    page.assert_fresh()  # the browser shows "renamed" in row "a", and nowhere else
    assert page.browser.count("renamed") == 1


def test_awkward_keys_through_renames_inserts_and_deletes() -> None:
    rows = create(*AWKWARD_KEYS[::2])
    page = Page(LIST, lambda: {"labels": labels()})
    page.assert_fresh()
    for row in rows[:4]:
        row.name = f"new {row.code}"
        row.save()
        page.update(row)
        page.assert_fresh()
    for code in AWKWARD_KEYS[1::2]:
        ops = page.update(*create(code))
        assert [op[PatchKey.OP] for op in ops] == [PatchOp.LIST]
        page.assert_fresh()
    for row in rows[1::3]:
        pk = row.pk
        row.delete()
        page.update(deleted=((Label, pk),))
        page.assert_fresh()
    assert len(page.live.regions["1"].keys) == len(set(page.live.regions["1"].keys))


def test_a_list_whose_rows_repeat_is_a_plain_region() -> None:
    """A join can list a row twice: then the rows are no keyed list (no key twice)."""
    alpha = Entry.objects.create(name="alpha")
    red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")
    red.entries.set([alpha])
    source = "<ul>{% for e in entries %}<li>{{ e.name }}</li>{% endfor %}</ul>"

    def context() -> dict[str, Any]:
        return {"entries": Entry.objects.filter(tags__name__in=["red", "blue"]).order_by("pk")}

    page = Page(source, context)
    assert page.live.regions["1"].kind == "list"
    blue.entries.set([alpha])  # now the join lists alpha twice
    ops = page.update(tables={"testapp.entry"})
    assert [op[PatchKey.OP] for op in ops] == [PatchOp.REGION]
    assert page.live.regions["1"].kind == "node"
    page.assert_fresh()
    live = render_template(Template(source), context())
    assert live.regions["1"].kind == "node" and live.regions["1"].keys == []
    assert_markers_hold(live.html, live.regions)


# markers that would change how the page is parsed ------------------------------------


def rendered(source: str, **values: Any) -> Any:
    live = render_template(Template(source), values)
    assert strip_markers(live.html) == Template(source).render(Context(values))
    assert_markers_hold(live.html, live.regions)
    return live


@pytest.mark.parametrize("element", ["pre", "listing"])
def test_no_marker_right_after_a_pre_start_tag(element: str) -> None:
    (label,) = create("p")
    label.name = "\nleading newline"
    label.save()
    live = rendered(f"<{element}>{{{{ label.name }}}}</{element}>", label=label)
    assert f"<{element}><!--" not in live.html
    assert ("i", LABEL, "p") in live.page_dependencies
    # After literal text, or inside the element's first child, markers are fine.
    live = rendered(f"<{element}>\n{{{{ label.name }}}}</{element}>", label=label)
    assert live.regions
    # A loop right after the tag is not a list: its items' markers would come first.
    live = rendered(
        f"<{element}>{{% for l in labels %}}{{{{ l.name }}}}\n{{% endfor %}}</{element}>",
        labels=labels(),
    )
    assert f"<{element}><!--" not in live.html
    # Nor anything after a tag that may render nothing, up to the next text.
    live = rendered(
        f"<{element}>{{% if flag %}}x{{% endif %}}{{{{ label.name }}}}</{element}>",
        label=label,
        flag=False,
    )
    assert f"<{element}><!--" not in live.html


def test_no_marker_after_a_pre_that_a_value_wrote() -> None:
    (label,) = create("p")
    live = rendered("{{ opening|safe }}{{ label.name }}</pre>", label=label, opening="<pre>")
    assert "<pre><!--" not in live.html
    assert ("i", LABEL, "p") in live.page_dependencies


@pytest.mark.parametrize(
    "source",
    [
        "<p>{{ html|safe }} {{ label.name }}</p>",
        "<p>{% autoescape off %}{{ html }} {{ label.name }}{% endautoescape %}</p>",
        "<p>{% if label %}{{ html|safe }}{% endif %}{{ label.name }}</p>",
        "{{ html|safe }}{% for l in labels %}<i>{{ l.name }}</i>{% endfor %}",
    ],
)
@pytest.mark.parametrize("html", ["a <b", "a <b title='x", "a <!-- x", "a <script>x", "x <"])
def test_an_unfinished_tag_in_unescaped_output_takes_no_marker(source: str, html: str) -> None:
    (label,) = create("p")
    live = rendered(source, label=label, labels=labels(), html=html)  # markers hold
    # The read is kept: by a region whose markers stand in element content, or the page.
    assert ("i", LABEL, "p") in live.page_dependencies | {
        dependency for region in live.regions.values() for dependency in region.deps
    }


def test_an_unfinished_tag_makes_no_region_of_its_own() -> None:
    (label,) = create("p")
    label.name = "a <b"
    label.save()
    live = rendered("<p>{{ label.name|safe }}</p>", label=label)
    assert live.regions == {}
    live = rendered("<p>{{ label.name|safe }}</p>", label=Label(code="q", name="a <b>x</b>"))
    assert set(live.regions) == {"1"}


@pytest.mark.parametrize(
    ("before", "name"),
    [("&", "amp;"), ("&am", "p;"), ("&#", "38;"), ("AT&", "T;")],
)
def test_no_marker_splits_a_character_reference(before: str, name: str) -> None:
    label = Label(code="c", name=name)
    live = rendered(f"<p>{before}{{{{ label.name }}}}</p>", label=label)
    assert "<!--" not in live.html
    live = rendered("<p>{{ start|safe }}{{ label.name }}</p>", label=label, start=before)
    assert "<!--" not in live.html


def test_no_marker_splits_a_crlf() -> None:
    label = Label(code="c", name="line\r")
    live = rendered("<pre>\n{{ label.name }}\nnext</pre>", label=label)
    assert "\r<!--" not in live.html
    live = rendered("<pre>\nfirst\r{{ label.name }}</pre>", label=Label(code="d", name="\n"))
    assert "\r<!--" not in live.html


def test_text_directly_in_a_table_section_is_no_region() -> None:
    entry = Entry.objects.create(name="row", done=True)
    source = (
        "<table><tbody><tr>{% if entry.done %}<td>{{ entry.name }}</td>{% else %}loose"
        "{% endif %}</tr></tbody></table>"
    )
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=entry.pk)})
    assert any(region.html.startswith("<td>") for region in page.live.regions.values())
    entry.done = False
    entry.save()
    ops = page.update(entry)
    # Rendered again, the region would hold text that the browser moves out of the table.
    assert [op[PatchKey.OP] for op in ops] == [PatchOp.MORPH]
    page.assert_fresh()


@pytest.mark.parametrize(
    ("source", "markup"),
    [
        # Text in SVG is patched as text: a region.
        ("<svg><text>{{ label.name }}</text></svg>", False),
        # In a <foreignObject>, content is HTML again: markup may be a region.
        (
            "<svg><foreignObject><div>{% if label.name %}<b>{{ label.name }}</b>{% endif %}"
            "</div></foreignObject></svg>",
            True,
        ),
    ],
)
def test_regions_in_svg(source: str, markup: bool) -> None:
    (label,) = create("a")
    live = rendered(source, label=label)
    assert any(("<" in region.html) is markup for region in live.regions.values())


@pytest.mark.parametrize(
    "source",
    [
        '<svg><g>{% if label.name %}<circle r="5"/>{% endif %}</g></svg>',
        '<svg>{% for l in labels %}<circle r="1"/>{% endfor %}</svg>',
        "<math><mrow>{% if label.name %}<mi>x</mi>{% endif %}</mrow></math>",
    ],
)
def test_no_region_of_markup_in_svg(source: str) -> None:
    """Parsed as HTML (as the client parses a patch), a <circle> would not be SVG's."""
    (label,) = create("a")
    live = rendered(source, label=label, labels=labels())
    assert live.regions == {}
    assert live.page_dependencies


def test_a_new_row_that_would_not_read_as_an_item_renders_the_list_again() -> None:
    create("a")
    source = "<ul>{% for label in labels %}<li>{{ label.name|safe }}</li>{% endfor %}</ul>"
    page = Page(source, lambda: {"labels": labels()})
    (bad,) = create("b")
    bad.name = "x <i"  # "<li>x <i</li>": the item's end marker would sit in a tag
    bad.save()
    ops = page.update(bad)
    assert [op[PatchKey.OP] for op in ops] == [PatchOp.MORPH]
    page.assert_fresh()


@pytest.mark.parametrize("c", CORPUS)
def test_corpus_markers_hold_as_a_browser_reads_them(data: Any, c: Case) -> None:  # noqa: F811
    live, plain = render_both(c, data)
    assert strip_markers(live.html) == plain
    assert_markers_hold(live.html, live.regions)


# marker text the engine did not write ------------------------------------------------

FORGED = [
    "<!--rt:1-->x<!--/rt:1-->",
    "<!--/rt:1#a.1-->",
    "<!rt:1>",
    "<!/rt:1>",
    "<//rt:1>",
]


@pytest.mark.parametrize("forged", FORGED)
@pytest.mark.parametrize(
    "source",
    [
        "<div>{{ note.name|safe }}</div>" + LIST,
        "<div>{% autoescape off %}{{ note.name }}{% endautoescape %}</div>" + LIST,
        "{% for label in labels %}<p>{{ label.name }}{{ note.name|safe }}</p>{% endfor %}",
        '{% load live_tags %}{% boxed "b" %}{{ note.name|safe }}{% endboxed %}' + LIST,
        "<p title='{{ note.name|safe }}'>{{ note.name|safe }}</p>" + LIST,
    ],
)
def test_marker_text_in_output_is_neutralised(source: str, forged: str) -> None:
    create("a")
    note = Label(code="note", name=forged)
    live = render_template(Template(source), {"labels": labels(), "note": note})
    assert_markers_hold(live.html, live.regions)
    plain = Template(source).render(Context({"labels": labels(), "note": note}))
    # The page differs from Django's in those comments only: they gained a space.
    assert strip_markers(live.html) == as_shown(plain)


def test_marker_text_in_the_template_is_neutralised() -> None:
    (label,) = create("a")
    source = "<p><!--rt:1-->{{ label.name }}<!--/rt:1--></p>"
    live = render_template(Template(source), {"label": label})
    assert live.html == "<p><!-- rt:1--><!--rt:1-->name of a<!--/rt:1--><!-- /rt:1--></p>"
    # Rendered by Django alone, the template is as it was written.
    assert Template(source).render(Context({"label": label})) == (
        "<p><!--rt:1-->name of a<!--/rt:1--></p>"
    )
    live = render_template(Template("{% if label %}" + source + "{% endif %}"), {"label": label})
    assert "<!-- rt:1--><!--rt:1.1-->name of a<!--/rt:1.1--><!-- /rt:1-->" in live.html


def test_marker_text_does_not_capture_a_patch() -> None:
    create("a", "b")
    forged = "<!--rt:1#a.1-->captured<!--/rt:1#a.1-->"

    def context() -> dict[str, Any]:
        return {"labels": labels(), "note": Label(code="note", name=forged)}

    page = Page(LIST + "<div>{{ note.name|safe }}</div>", context)
    row = Label.objects.get(code="a")
    row.name = "renamed"
    row.save()
    page.update(row)
    page.assert_fresh()
    assert "captured" in page.browser and page.browser.count("renamed") == 1


@pytest.mark.parametrize(
    "forged",
    [
        "<!--rt:9-->x<!--/rt:9-->",  # an id the page does not have
        "<!--rt:1.1-->x<!--/rt:1.1-->",  # the list's own markers, again
        "<!--/rt:1.1#a.1-->",  # the end of row "a"'s name, again
        "<!--/rt:1.1#a-->",  # the end of row "a", again
        "<!--rt:1.1#a.1-->x",  # the start of row "a"'s name, again
    ],
)
def test_marker_text_beside_markers_in_a_custom_tag(forged: str) -> None:
    create("a", "b")
    source = "{% load forging %}<div>{% forging_list forged %}</div>"
    context = {"labels": labels(), "forged": forged}
    live = render_template(Template(source, engine=ENGINE), context)
    assert_markers_hold(live.html, live.regions)
    plain = Template(source, engine=ENGINE).render(Context(context))
    # The engine's markers stand around what it rendered; the copies are neutralised.
    assert strip_markers(live.html) == as_shown(plain)
    assert live.regions["1.1"].kind == "list"
    assert {"1.1#a.1", "1.1#b.1"} <= set(live.regions)
