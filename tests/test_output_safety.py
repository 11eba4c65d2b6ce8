"""What a tracked render puts in the page: item keys that stay distinct and never look
like nested ids.

``client_apply`` mirrors how ``rt.js`` finds a region (the last start comment of that
id in the page, then the next end comment of it) to check where a patch lands, without a
browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from django.template import Context, Template

from django_rt.hub import QueryCache
from django_rt.live.page import Changes, LivePage
from django_rt.live.recorder import MARKERS, end_marker, item_key, start_marker, strip_markers
from django_rt.live.render import render_template
from django_rt.protocol import PatchKey, PatchOp

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


def labels() -> Any:
    return Label.objects.order_by("code")


def create(*codes: str) -> list[Label]:
    return [Label.objects.create(code=code, name=f"name of {code}") for code in codes]


def assert_markers_hold(html: str, regions: dict[str, Any]) -> None:
    """Every marker once, and every region (and list item) with both of its markers."""
    names = [match.group()[4:-3] for match in MARKERS.finditer(html)]
    assert len(names) == len(set(names)), names
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
        """The server's copy and the browser's both show what Django renders now."""
        expected = Template(self.source).render(Context(self.make_context()))
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
    ids = [match.group()[4:-3] for match in MARKERS.finditer(page.live.html)]
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
