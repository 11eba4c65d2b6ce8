"""``LivePage``: how a batch of database changes (or the view's own state) turns into
patch operations, without sockets. ``Changes`` are built as the hub builds them: the
changed rows refetched once, deleted rows as ``None``, and the changed tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.models import F, Model, Window
from django.db.models.functions import RowNumber
from django.template import Context, Template
from django.template.loader import get_template
from django.test.utils import CaptureQueriesContext

from django_rt.hub import QueryCache
from django_rt.live import page as page_module
from django_rt.live import recorder
from django_rt.live.page import Changes, LivePage, NeedsRefresh
from django_rt.live.proxies import label
from django_rt.live.recorder import strip_markers
from django_rt.protocol import PatchKey, PatchOp

from .testapp.models import Author, Entry, Tag

pytestmark = pytest.mark.django_db

OP, ID, HTML, KEYS, ITEMS, TITLE = (
    PatchKey.OP,
    PatchKey.ID,
    PatchKey.HTML,
    PatchKey.KEYS,
    PatchKey.ITEMS,
    PatchKey.TITLE,
)

LIST = "<ul>{% for e in entries %}<li>{{ e.name }}</li>{% endfor %}</ul>"


# helpers -------------------------------------------------------------------------------


def changes(*saved: Model, deleted: tuple[tuple[type[Model], Any], ...] = ()) -> Changes:
    """The batch the hub makes of these saves and deletes (see ``Hub._update`` and
    ``Hub._refetch``): each saved row fetched again, each deleted one ``None``, every
    model touched in ``tables``, and one query cache for the batch."""
    instances: dict[tuple[str, str], Model | None] = {}
    tables: set[str] = set()
    for obj in saved:
        model = type(obj)
        instances[(label(model), str(obj.pk))] = model._base_manager.filter(pk=obj.pk).first()
        tables.add(label(model))
    for model, pk in deleted:
        instances[(label(model), str(pk))] = None
        tables.add(label(model))
    return Changes(instances=instances, tables=tables, evaluate=QueryCache())


def delete(obj: Model) -> tuple[tuple[type[Model], Any], ...]:
    pk = obj.pk
    obj.delete()
    return ((type(obj), pk),)


def entries() -> Any:
    return Entry.objects.order_by("position", "pk")


class Page:
    """A live page over a template source, with a context made afresh on demand."""

    def __init__(self, source: str, make_context: Callable[[], dict[str, Any]]) -> None:
        self.source = source
        self.make_context = make_context
        self.live = LivePage(Template(source), make_context(), None)
        self.live.render()

    def update(self, batch: Changes) -> list[dict[str, Any]]:
        # The hub refetches the rows that some page depends on, and the saved rows of
        # a table that a page's query reads.
        dependencies = self.live.dependencies()
        batch.instances = {
            (model, pk): row
            for (model, pk), row in batch.instances.items()
            if ("i", model, pk) in dependencies
            or (row is not None and ("t", model) in dependencies)
            or (row is None and ("e", model, pk) in dependencies)
        }
        return self.live.update(batch)

    def assert_fresh(self) -> None:
        """What the page now holds is what Django renders from the data as it is now."""
        expected = Template(self.source).render(Context(self.make_context()))
        assert strip_markers(self.live.html) == expected


def region_op(region_id: str, html: str) -> dict[str, Any]:
    return {OP: PatchOp.REGION, ID: region_id, HTML: html}


def list_op(region_id: str, keys: list[Any], items: dict[Any, str]) -> dict[str, Any]:
    return {
        OP: PatchOp.LIST,
        ID: region_id,
        KEYS: [str(key) for key in keys],
        ITEMS: {str(key): html for key, html in items.items()},
    }


@pytest.fixture
def rows() -> list[Entry]:
    return [
        Entry.objects.create(name="a", position=1),
        Entry.objects.create(name="b", position=2),
        Entry.objects.create(name="c", position=3),
    ]


# a row's fields ------------------------------------------------------------------------


@pytest.fixture
def rerendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the regions rendered again alone, in order."""
    ids: list[str] = []
    rerender = page_module.rerender

    def counting(region: Any, *args: Any, **kwargs: Any) -> Any:
        ids.append(region.id)
        return rerender(region, *args, **kwargs)

    monkeypatch.setattr(page_module, "rerender", counting)
    return ids


def test_a_region_showing_fields_a_change_left_as_they_were_is_not_rendered_again(
    rows: list[Entry], rerendered: list[str]
) -> None:
    a = rows[0]
    page = Page(
        "<p>{{ entry.name }}</p><p>{{ entry.position }}</p>",
        lambda: {"entry": Entry.objects.get(pk=a.pk)},
    )
    a.position = 7
    a.save()
    assert page.update(changes(a)) == [region_op("2", "7")]
    assert rerendered == ["2"]
    page.assert_fresh()


def test_a_region_that_read_its_row_otherwise_renders_again_on_any_change(
    rows: list[Entry], rerendered: list[str]
) -> None:
    """``str()``, a property, a related row: what they show may come from any field."""
    a = rows[0]
    source = "<p>{{ entry }}</p><p>{{ entry.badge }}</p><p>{{ entry.author.name }}</p>"
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    a.position = 7
    a.save()
    assert page.update(changes(a)) == []
    assert sorted(rerendered) == ["1", "2", "3"]
    rerendered.clear()
    a.author = Author.objects.create(name="Ann")
    a.save()
    assert page.update(changes(a)) == [region_op("3", "Ann")]
    page.assert_fresh()


def test_a_foreign_keys_column_is_a_plain_field(rows: list[Entry], rerendered: list[str]) -> None:
    a = rows[0]
    page = Page(
        "<p>{{ entry.author_id }}</p><p>{{ entry.name }}</p>",
        lambda: {"entry": Entry.objects.get(pk=a.pk)},
    )
    author = Author.objects.create(name="Ann")
    a.author = author
    a.save()
    assert page.update(changes(a)) == [region_op("1", str(author.pk))]
    assert rerendered == ["1"]
    page.assert_fresh()


def test_fields_are_compared_with_what_the_region_showed_not_with_the_pages_copy(
    rows: list[Entry], rerendered: list[str]
) -> None:
    """A batch's refetched copy can be older than the row that the list's query then
    finds (a write committed in between): the page's copy of the row is the newer one,
    but the region still shows the older value, and renders again at the next batch."""
    a = rows[0]
    source = (
        '<ul>{% for e in entries %}<li id="e{{ e.pk }}">{{ e.name }} '
        "<i>{{ e.position }}</i></li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": Entry.objects.order_by("name")})
    a.name = "aa"
    a.save()
    batch = changes(a)  # refetched now: position 1
    Entry.objects.filter(pk=a.pk).update(position=9)  # committed before the list's query
    assert page.update(batch) == [region_op(f"1#{a.pk}.1", "aa")]
    assert rerendered == [f"1#{a.pk}.1"]
    rerendered.clear()
    assert page.update(changes(a)) == [region_op(f"1#{a.pk}.2", "9")]
    assert rerendered == [f"1#{a.pk}.2"]
    page.assert_fresh()


def test_a_field_value_that_could_change_in_place_counts_as_the_whole_row(
    rows: list[Entry],
) -> None:
    """A list or a dict (a JSON field's) kept as the region showed it could be changed
    in place afterwards, and then match a fresh copy the region never showed."""
    a = rows[0]
    entry = Entry.objects.get(pk=a.pk)
    entry.name = ["a"]  # type: ignore[assignment]
    page = Page("<p>{{ entry.name }}</p><p>{{ entry.position }}</p>", lambda: {"entry": entry})
    assert page.live.regions["1"].values == ()
    row = ("i", "testapp.entry", str(a.pk))
    assert page.live.regions["2"].values == ((row, "position", 1),)


def test_a_field_that_showed_two_values_in_one_frame_counts_as_the_whole_row() -> None:
    """A copy of the row swapped in the middle of a render (a query ran and found it
    newer): the frame's output may hold both values; any change renders it again."""
    row: tuple[str, ...] = ("i", "testapp.entry", "1")
    session = recorder.Session()
    with session.active():
        recorder.read_value(row, "name", "old")
        recorder.read_value(row, "position", 1)
        assert session.root.whole == set()
        recorder.read_value(row, "name", "new")
    assert session.root.whole == {row}
    outer = recorder.Frame("")
    outer.absorb_frame(recorder.Frame("1", deps={row}, values={row: {"position": 1.0}}))
    outer.absorb_frame(recorder.Frame("2", deps={row}, values={row: {"position": 1}}))
    assert outer.whole == {row}  # 1.0 and 1 compare equal, but do not render alike


# a row's key ---------------------------------------------------------------------------


def test_a_rows_key_in_an_attribute_leaves_the_rest_of_the_page_alone(
    rows: list[Entry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No region can hold a value inside a tag: the page itself reads the row's key
    there. The key stays while the row exists, so a rename renders the name's region
    alone, not the whole page."""
    a = rows[0]
    source = '<p id="e-{{ entry.pk }}" data-id="{{ entry.id }}">{{ entry.name }}</p>'
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    assert page.live.page_reads == {("e", "testapp.entry", str(a.pk))}
    whole = []
    monkeypatch.setattr(page.live, "rerender", lambda *args: whole.append(args))
    a.name = "renamed"
    a.save()
    assert page.update(changes(a)) == [region_op("1", "renamed")]
    assert whole == []
    page.assert_fresh()


def test_a_rows_key_read_with_its_content_adds_nothing(rows: list[Entry]) -> None:
    """A delete reaches what reads the row's content: its existence is not kept too."""
    a = rows[0]
    source = '<p id="e-{{ entry.pk }}" title="{{ entry.name }}">x</p>'
    page = Page(source, lambda: {"entry": a})
    assert page.live.page_reads == {("i", "testapp.entry", str(a.pk))}
    listing = Page(
        '<ul>{% for e in entries %}<li id="{{ e.pk }}-{{ e.name }}">x</li>{% endfor %}</ul>',
        lambda: {"entries": entries()},
    )
    assert {dep[0] for dep in listing.live.regions["1"].deps} == {"i", "t"}


def test_a_deleted_row_whose_key_the_page_shows_runs_the_view_again(rows: list[Entry]) -> None:
    """What shows a row's key learns of its delete: the page's own attribute, and a
    region that shows the key alone."""
    a, b, _ = rows
    for source, entry in (('<a href="/e/{{ entry.pk }}/">x</a>', a), ("<b>{{ entry.id }}</b>", b)):
        page = Page(source, lambda entry=entry: {"entry": entry})
        with pytest.raises(NeedsRefresh):
            page.update(changes(deleted=delete(entry)))


def test_a_list_item_that_shows_its_rows_key_reads_its_own_row_alone(rows: list[Entry]) -> None:
    source = '<ul>{% for e in entries %}<li id="e{{ e.pk }}">{{ e.name }}</li>{% endfor %}</ul>'
    page = Page(source, lambda: {"entries": entries()})
    assert page.live.regions["1"].items_read_more is False
    a = rows[0]
    assert page.update(changes(deleted=delete(a))) == [list_op("1", [r.pk for r in rows[1:]], {})]
    page.assert_fresh()


# rows of a list --------------------------------------------------------------------------


def test_first_render(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": entries()})
    a, b, c = rows
    assert page.live.html == (
        f"<ul><!--rt:1--><!--rt:1#{a.pk}--><li><!--rt:1#{a.pk}.1-->a<!--/rt:1#{a.pk}.1--></li>"
        f"<!--/rt:1#{a.pk}--><!--rt:1#{b.pk}--><li><!--rt:1#{b.pk}.1-->b<!--/rt:1#{b.pk}.1-->"
        f"</li><!--/rt:1#{b.pk}--><!--rt:1#{c.pk}--><li><!--rt:1#{c.pk}.1-->c"
        f"<!--/rt:1#{c.pk}.1--></li><!--/rt:1#{c.pk}--><!--/rt:1--></ul>"
    )
    assert ("t", "testapp.entry") in page.live.dependencies()
    assert ("i", "testapp.entry", str(b.pk)) in page.live.dependencies()
    page.assert_fresh()


def test_rename_updates_only_the_inner_region(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": entries()})
    b = rows[1]
    b.name = "B2"
    b.save()
    assert page.update(changes(b)) == [region_op(f"1#{b.pk}.1", "B2")]
    page.assert_fresh()
    # and again: the new region is indexed as the old one was
    b.name = "B3"
    b.save()
    assert page.update(changes(b)) == [region_op(f"1#{b.pk}.1", "B3")]
    page.assert_fresh()


def test_add_row_sends_only_the_new_item(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": entries()})
    a, b, c = rows
    new = Entry.objects.create(name="ab", position=1)  # after a (same position, higher pk)
    ops = page.update(changes(new))
    item = f"<li><!--rt:1#{new.pk}.1-->ab<!--/rt:1#{new.pk}.1--></li>"
    assert ops == [list_op("1", [a.pk, new.pk, b.pk, c.pk], {new.pk: item})]
    page.assert_fresh()
    # the new item's region is live
    new.name = "AB"
    new.save()
    assert page.update(changes(new)) == [region_op(f"1#{new.pk}.1", "AB")]
    page.assert_fresh()


def test_delete_row(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": entries()})
    a, b, c = rows
    ops = page.update(changes(deleted=delete(b)))
    assert ops == [list_op("1", [a.pk, c.pk], {})]
    assert f"1#{b.pk}.1" not in page.live.regions
    page.assert_fresh()


def test_a_row_that_left_the_list_concerns_it_no_more(
    rows: list[Entry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The items read their own rows alone: a row that left the list (its filter no
    longer matches) takes its dependency with it, and its later delete renders nothing
    again (the list's query runs, and finds its keys unchanged)."""
    source = '<ul>{% for e in entries %}<li id="e{{ e.pk }}">{{ e.name }}</li>{% endfor %}</ul>'
    page = Page(source, lambda: {"entries": entries().filter(position__lt=3)})
    a, b, _ = rows
    assert ("e", "testapp.entry", str(b.pk)) in page.live.regions["1"].deps  # its id
    b.position = 5
    b.save()
    assert page.update(changes(b)) == [list_op("1", [a.pk], {})]
    assert {("i", "testapp.entry", str(b.pk)), ("e", "testapp.entry", str(b.pk))}.isdisjoint(
        page.live.dependencies()
    )
    renders = []
    monkeypatch.setattr("django_rt.live.page.rerender", lambda *a, **k: renders.append(a))
    assert page.update(changes(deleted=delete(b))) == []
    assert renders == []
    page.assert_fresh()


def test_items_that_read_other_rows_keep_what_they_read(
    rows: list[Entry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item that read another row (its author) could share it with the others: the
    list keeps every row it ever read, and renders again whole for a later change of
    one that left (coarser, never wrong)."""
    ann = Author.objects.create(name="Ann")
    Entry.objects.filter(pk__in=[r.pk for r in rows]).update(author=ann)
    source = (
        '<ul>{% for e in entries %}<li title="{{ e.author.name }}">{{ e.name }}</li>'
        "{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": entries().filter(position__lt=3)})
    a, b, _ = rows
    b.position = 5
    b.save()
    assert page.update(changes(b))[0][OP] == PatchOp.LIST
    assert ("i", "testapp.entry", str(b.pk)) in page.live.regions["1"].deps
    from django_rt.live import page as page_module

    renders = []
    rerender = page_module.rerender

    def counted(*args: Any, **kwargs: Any) -> Any:
        renders.append(args)
        return rerender(*args, **kwargs)

    monkeypatch.setattr("django_rt.live.page.rerender", counted)
    assert page.update(changes(deleted=delete(b))) == []
    assert len(renders) == 1
    page.assert_fresh()


def test_reorder_rows(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": entries()})
    a, b, c = rows
    a.position = 9
    a.save()
    assert page.update(changes(a)) == [list_op("1", [b.pk, c.pk, a.pk], {})]
    page.assert_fresh()
    c.position = 0
    c.save()
    assert page.update(changes(c)) == [list_op("1", [c.pk, b.pk, a.pk], {})]
    page.assert_fresh()


KEYED = (
    '<ul>{% for e in entries %}<li id="e{{ e.pk }}">{{ e.name }} '
    "{% if e.done %}done{% endif %}</li>{% endfor %}</ul>"
)


def test_an_item_that_shows_its_rows_key_alone_keeps_its_text_and_renders_its_regions(
    rows: list[Entry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The item's own text reads its row's key only: a change of the row renders the
    regions in the item that read it, not the item."""
    items = []
    render_new_items = page_module.render_new_items
    monkeypatch.setattr(
        page_module,
        "render_new_items",
        lambda *a, **k: items.append(a) or render_new_items(*a, **k),
    )
    page = Page(KEYED, lambda: {"entries": entries()})
    a = rows[0]
    a.name, a.done = "apricot", True
    a.save()
    assert page.update(changes(a)) == [
        region_op(f"1#{a.pk}.1", "apricot"),
        region_op(f"1#{a.pk}.2", "done"),
    ]
    assert items == []
    page.assert_fresh()
    a.name = "avocado"  # once more: the list knows the row's new content
    a.save()
    assert page.update(changes(a)) == [region_op(f"1#{a.pk}.1", "avocado")]
    page.assert_fresh()


def test_an_item_kept_as_it_is_moves_with_its_regions_rendered_again(rows: list[Entry]) -> None:
    page = Page(KEYED, lambda: {"entries": Entry.objects.order_by("name")})
    a, b, c = rows
    a.name = "zucchini"  # to the end of the list
    a.save()
    ops = page.update(changes(a))
    assert ops == [
        list_op("1", [b.pk, c.pk, a.pk], {}),
        region_op(f"1#{a.pk}.1", "zucchini"),
    ]
    page.assert_fresh()


def test_a_region_in_an_inner_lists_item_updates_what_the_outer_item_holds(
    rows: list[Entry],
) -> None:
    """A tag renamed inside an entry's item: the outer list's copy of that item takes
    the new name (what the item's next patch is computed from), the others stay."""
    a = rows[0]
    tag = Tag.objects.create(name="red")
    tag.entries.add(a)
    source = (
        '<ul>{% for e in entries %}<li title="{{ e.name }}">'
        "<ol>{% for t in e.tags.all %}<li>{{ t.name }}</li>{% endfor %}</ol>"
        "</li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": entries()})
    tag.name = "blue"
    tag.save()
    before = dict(page.live.regions["1"].items)
    assert any("blue" in str(op) for op in page.update(changes(tag)))
    page.assert_fresh()
    items = page.live.regions["1"].items
    assert items[str(a.pk)] == before[str(a.pk)].replace(">red<", ">blue<")
    assert {key: html for key, html in items.items() if key != str(a.pk)} == {
        key: html for key, html in before.items() if key != str(a.pk)
    }
    a.name = "apricot"
    a.save()
    assert page.update(changes(a))
    page.assert_fresh()


def test_reversed_list_order(rows: list[Entry]) -> None:
    source = "<ul>{% for e in entries reversed %}<li>{{ e.name }}</li>{% endfor %}</ul>"
    page = Page(source, lambda: {"entries": entries()})
    a, b, c = rows
    new = Entry.objects.create(name="d", position=4)
    item = f"<li><!--rt:1#{new.pk}.1-->d<!--/rt:1#{new.pk}.1--></li>"
    assert page.update(changes(new)) == [list_op("1", [new.pk, c.pk, b.pk, a.pk], {new.pk: item})]
    page.assert_fresh()


def test_filtered_queryset_drops_and_takes_back_a_row(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": Entry.objects.filter(done=False).order_by("pk")})
    a, b, c = rows
    b.done = True
    b.save()
    assert page.update(changes(b)) == [list_op("1", [a.pk, c.pk], {})]
    page.assert_fresh()
    b.done = False
    b.save()
    item = f"<li><!--rt:1#{b.pk}.1-->b<!--/rt:1#{b.pk}.1--></li>"
    assert page.update(changes(b)) == [list_op("1", [a.pk, b.pk, c.pk], {b.pk: item})]
    page.assert_fresh()


def test_attribute_in_a_list_item_changes_the_item(rows: list[Entry]) -> None:
    source = '<ul>{% for e in entries %}<li title="{{ e.name }}">x</li>{% endfor %}</ul>'
    page = Page(source, lambda: {"entries": entries()})
    a, b, c = rows
    b.name = "bee"
    b.save()
    # Only an attribute changed: its value alone, not the row, nor the list's keys.
    assert page.update(changes(b)) == [
        {OP: PatchOp.ATTRS, "id": f"1#{b.pk}", "set": [[0, "li", "title", "bee"]]}
    ]
    page.assert_fresh()


def test_a_changed_row_in_an_unchanged_order_is_sent_alone(rows: list[Entry]) -> None:
    source = (
        "<ul>{% for e in entries %}<li>{% if e.done %}<b>done</b>{% endif %}x</li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": entries()})
    a, b, c = rows
    b.done = True
    b.save()
    (op,) = page.update(changes(b))
    # The row's {% if %}, alone: not the list's keys.
    assert op[OP] == PatchOp.REGION and op[ID].startswith(f"1#{b.pk}")
    page.assert_fresh()


def test_attributes_of_elements_the_browser_may_move_replace_the_row(rows: list[Entry]) -> None:
    source = (
        '<table>{% for e in entries %}<tr><td title="{{ e.name }}">x</td></tr>{% endfor %}</table>'
    )
    page = Page(source, lambda: {"entries": entries()})
    b = rows[1]
    b.name = "bee"
    b.save()
    (op,) = page.update(changes(b))
    # A table's rows: the browser adds a <tbody>, places are not what is written.
    assert op[OP] in (PatchOp.REGION, PatchOp.MORPH)
    page.assert_fresh()


def test_positional_list_renders_moved_items_again(rows: list[Entry]) -> None:
    source = (
        "<ol>{% for e in entries %}<li>{{ forloop.counter }} {{ e.name }}</li>{% endfor %}</ol>"
    )
    page = Page(source, lambda: {"entries": entries()})
    a, b, c = rows
    new = Entry.objects.create(name="z", position=0)
    (op,) = page.update(changes(new))
    assert op[OP] == PatchOp.LIST
    assert op[KEYS] == [str(new.pk), str(a.pk), str(b.pk), str(c.pk)]
    # every item's counter changed: all are sent
    assert set(op[ITEMS]) == {str(new.pk), str(a.pk), str(b.pk), str(c.pk)}
    assert op[ITEMS][str(c.pk)].startswith("<li>4 ")
    page.assert_fresh()


def test_list_becoming_empty_and_filled_again(rows: list[Entry]) -> None:
    source = (
        "<ul>{% for e in entries %}<li>{{ e.name }}</li>{% empty %}<li>none</li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": Entry.objects.filter(done=False).order_by("pk")})
    for row in rows:
        row.done = True
        row.save()
    ops = page.update(changes(*rows))
    assert ops == [region_op("1", "<li>none</li>")]
    page.assert_fresh()
    a = rows[0]
    a.done = False
    a.save()
    item = (
        f"<!--rt:1#{a.pk}--><li><!--rt:1#{a.pk}.1-->a<!--/rt:1#{a.pk}.1--></li><!--/rt:1#{a.pk}-->"
    )
    assert page.update(changes(a)) == [region_op("1", item)]
    page.assert_fresh()


# what a list's query asks the database ---------------------------------------------------


def list_queries(page: Page, batch: Changes) -> tuple[list[dict[str, Any]], list[str]]:
    with CaptureQueriesContext(connection) as queries:
        ops = page.update(batch)
    return ops, [query["sql"] for query in queries.captured_queries]


def selects_keys_only(sql: str) -> bool:
    columns = sql.split(" FROM ")[0]
    return '"id"' in columns and '"name"' not in columns


def test_a_plain_list_asks_for_its_keys_alone(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": entries()})
    a, b, c = rows
    b.name = "bee"
    b.save()
    batch = changes(b)
    ops, sql = list_queries(page, batch)
    # The row itself was refetched with the batch: the list's query needs its keys.
    assert ops == [region_op(f"1#{b.pk}.1", "bee")]
    assert len(sql) == 1 and selects_keys_only(sql[0])
    page.assert_fresh()


def test_a_count_of_a_plain_list_comes_from_its_keys(rows: list[Entry]) -> None:
    source = LIST + "<p>{{ entries|length }} entries{% if entries %}, some{% endif %}</p>"
    page = Page(source, lambda: {"entries": entries()})
    a, b, c = rows
    b.name = "bee"
    b.save()
    ops, sql = list_queries(page, changes(b))
    # The list and its count share one query of the keys.
    assert len(sql) == 1 and selects_keys_only(sql[0])
    page.assert_fresh()
    added = Entry.objects.create(name="d", position=4)
    ops, sql = list_queries(page, changes(added))
    assert all(selects_keys_only(statement) for statement in sql), sql
    assert region_op("2", "4") in ops or any("4 entries" in str(op) for op in ops)
    page.assert_fresh()


def test_a_region_that_counts_rows_renders_again_only_when_the_number_changes(
    rows: list[Entry], rerendered: list[str]
) -> None:
    source = LIST + "<p>{{ entries|length }} entries{% if entries %}, some{% endif %}</p>"
    page = Page(source, lambda: {"entries": entries()})
    counted = {rid: region.counts for rid, region in page.live.regions.items() if region.counts}
    assert sorted(counted) == ["2", "3"]
    assert [count for _, count in counted["2"]] == [3]
    a, b, c = rows
    b.name = "bee"
    b.save()
    page.update(changes(b))
    assert rerendered == [f"1#{b.pk}.1"]  # the name, not the counts
    rerendered.clear()
    added = Entry.objects.create(name="d", position=4)
    assert region_op("2", "4") in page.update(changes(added))
    assert sorted(rerendered) == ["2", "3"]
    page.assert_fresh()
    for row in (a, b, c, added):
        row.delete()
    page.update(changes(deleted=((Entry, a.pk), (Entry, b.pk), (Entry, c.pk), (Entry, added.pk))))
    page.assert_fresh()


def test_a_region_that_counts_and_reads_more_renders_again_on_any_change(
    rows: list[Entry], rerendered: list[str]
) -> None:
    """Rows of the query as well as their number, a count of a query with an
    annotation, a statement that ran in the region: what they show is more than a
    number of rows."""
    source = (
        "<p>{{ entries|length }}</p>"
        '<p>{% if entries|length == 3 and entries.0.name == "a" %}first{% endif %}</p>'
        "<p>{{ counted|length }}</p>"
        "<p>{{ author.entry_count }}</p>"
    )
    author = Author.objects.create(name="Ann")
    page = Page(
        source,
        lambda: {
            "entries": entries(),
            "counted": entries().annotate(next=F("position") + 1),
            "author": Author.objects.get(pk=author.pk),
        },
    )
    regions = page.live.regions
    assert [rid for rid, region in regions.items() if region.counts] == ["1"]
    b = rows[1]
    b.name = "bee"
    b.save()
    page.update(changes(b))
    assert sorted(rerendered) == sorted(set(regions) - {"1"})
    page.assert_fresh()


def test_a_row_that_enters_without_being_refetched_comes_with_the_whole_query() -> None:
    ada, bob = Author.objects.create(name="Ada"), Author.objects.create(name="Bob")
    Entry.objects.create(name="by ada", author=ada)
    by_bob = Entry.objects.create(name="by bob", author=bob)
    source = LIST
    page = Page(source, lambda: {"entries": Entry.objects.filter(author__name="Ada")})
    bob.name = "Ada"  # by_bob now matches the query: no entry changed
    bob.save()
    ops, sql = list_queries(page, changes(bob))
    assert any(op[OP] == PatchOp.LIST and str(by_bob.pk) in op[KEYS] for op in ops)
    assert not selects_keys_only(sql[-1])  # the new row's content had to be read
    page.assert_fresh()


@pytest.mark.parametrize(
    "queryset",
    [
        pytest.param(
            lambda: Entry.objects.annotate(
                rank=Window(RowNumber(), order_by=F("name").asc())
            ).order_by("pk"),
            id="window",
        ),
        pytest.param(lambda: Entry.objects.select_related("author").order_by("pk"), id="related"),
        pytest.param(lambda: Entry.objects.prefetch_related("tags").order_by("pk"), id="prefetch"),
    ],
)
def test_rows_that_hold_more_than_their_own_columns_are_read_whole(
    rows: list[Entry], queryset: Callable[[], Any]
) -> None:
    source = (
        "<ul>{% for e in entries %}<li>{{ e.name }} {{ e.rank }} {{ e.author.name }}"
        "{% for t in e.tags.all %}{{ t.name }}{% endfor %}</li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": queryset()})
    a, b, c = rows
    a.name = "z"  # every row's rank changes; only a was saved
    a.save()
    ops, sql = list_queries(page, changes(a))
    assert sql and not any(selects_keys_only(statement) for statement in sql)
    page.assert_fresh()


# one row's regions -----------------------------------------------------------------------


def test_filter_upper(rows: list[Entry]) -> None:
    source = "<h1>{{ entry.name|upper }}</h1>"
    a = rows[0]
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    a.name = "shout"
    a.save()
    assert page.update(changes(a)) == [region_op("1", "SHOUT")]
    page.assert_fresh()


def test_if_flips(rows: list[Entry]) -> None:
    source = (
        "<p>{{ entry.name }}: {% if entry.done %}<b>done</b>{% else %}<i>open</i>{% endif %}</p>"
    )
    a = rows[0]
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    assert "<!--rt:2--><i>open</i><!--/rt:2-->" in page.live.html
    a.done = True
    a.save()
    # both regions read the row; only the one whose output changed is sent
    assert page.update(changes(a)) == [region_op("2", "<b>done</b>")]
    page.assert_fresh()


def test_if_flips_inside_a_list(rows: list[Entry]) -> None:
    source = (
        "<ul>{% for e in entries %}<li>{% if e.done %}<s>{{ e.name }}"
        "</s>{% else %}{{ e.name }}{% endif %}</li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": entries()})
    b = rows[1]
    b.done = True
    b.save()
    ops = page.update(changes(b))
    assert ops == [
        region_op(f"1#{b.pk}.1", f"<s><!--rt:1#{b.pk}.1.1-->b<!--/rt:1#{b.pk}.1.1--></s>")
    ]
    page.assert_fresh()


def test_unchanged_save_sends_nothing(rows: list[Entry]) -> None:
    page = Page(
        LIST + "<p>{{ entry.name }}</p>",
        lambda: {"entries": entries(), "entry": Entry.objects.get(pk=rows[0].pk)},
    )
    rows[0].save()
    assert page.update(changes(rows[0])) == []
    page.assert_fresh()


def test_unrelated_changes_send_nothing(rows: list[Entry]) -> None:
    page = Page("<p>{{ entry.name }}</p>", lambda: {"entry": Entry.objects.get(pk=rows[0].pk)})
    other = rows[1]
    other.name = "zzz"
    other.save()
    tag = Tag.objects.create(name="t")
    assert page.update(changes(other, tag)) == []
    assert page.update(changes(deleted=delete(rows[2]))) == []
    page.assert_fresh()


def test_delete_of_a_row_shown_outside_a_list_needs_a_refresh(rows: list[Entry]) -> None:
    a = rows[0]
    page = Page(
        "<h1>{{ entry.name }}</h1>" + LIST,
        lambda: {"entry": Entry.objects.get(pk=a.pk), "entries": entries()},
    )
    with pytest.raises(NeedsRefresh):
        page.update(changes(deleted=delete(a)))


def test_delete_of_a_row_shown_in_a_list_does_not(rows: list[Entry]) -> None:
    a, b, c = rows
    page = Page(
        "<h1>{{ entry.name }}</h1>" + LIST,
        lambda: {"entry": Entry.objects.get(pk=a.pk), "entries": entries()},
    )
    assert page.update(changes(deleted=delete(b))) == [list_op("2", [a.pk, c.pk], {})]
    page.assert_fresh()


def test_autoescape_off_is_kept_on_rerender(rows: list[Entry]) -> None:
    a = rows[0]
    source = "{% autoescape off %}<p>{{ entry.name }}</p>{% endautoescape %}<p>{{ entry.name }}</p>"
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    a.name = "x & y"
    a.save()
    assert sorted(page.update(changes(a)), key=lambda op: op[ID]) == [
        region_op("1.1", "x & y"),
        region_op("2", "x &amp; y"),
    ]
    page.assert_fresh()


def test_with_alias(rows: list[Entry]) -> None:
    a = rows[0]
    page = Page(
        "{% with e=entry %}<p>{{ e.name }}</p>{% endwith %}",
        lambda: {"entry": Entry.objects.get(pk=a.pk)},
    )
    a.name = "w"
    a.save()
    assert page.update(changes(a)) == [region_op("1.1", "w")]
    page.assert_fresh()


# relations -------------------------------------------------------------------------------


def test_renaming_the_author_updates_entry_author_name() -> None:
    ann = Author.objects.create(name="Ann")
    a = Entry.objects.create(name="a", author=ann)
    b = Entry.objects.create(name="b", author=ann)
    source = (
        "<h1>{{ entry.author.name }}</h1>"
        "<ul>{% for e in entries %}<li>{{ e.name }} by {{ e.author.name }}</li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk), "entries": entries()})
    ann.name = "Anne"
    ann.save()
    ops = page.update(changes(ann))
    assert sorted(ops, key=lambda op: op[ID]) == [
        region_op("1", "Anne"),
        region_op(f"2#{a.pk}.2", "Anne"),
        region_op(f"2#{b.pk}.2", "Anne"),
    ]
    page.assert_fresh()


def test_changing_an_entrys_author(rows: list[Entry]) -> None:
    ann = Author.objects.create(name="Ann")
    bob = Author.objects.create(name="Bob")
    a = rows[0]
    a.author = ann
    a.save()
    page = Page("<p>{{ entry.author.name }}</p>", lambda: {"entry": Entry.objects.get(pk=a.pk)})
    a.author = bob
    a.save()
    assert page.update(changes(a)) == [region_op("1", "Bob")]
    page.assert_fresh()
    # now the page follows Bob, not Ann
    bob.name = "Robert"
    bob.save()
    assert page.update(changes(bob)) == [region_op("1", "Robert")]
    ann.name = "Annie"
    ann.save()
    assert page.update(changes(ann)) == []
    page.assert_fresh()


def test_reverse_relation_list() -> None:
    ann = Author.objects.create(name="Ann")
    a = Entry.objects.create(name="a", author=ann)
    source = "<ul>{% for e in author.entry_set.all %}<li>{{ e.name }}</li>{% endfor %}</ul>"
    page = Page(source, lambda: {"author": Author.objects.get(pk=ann.pk)})
    other = Entry.objects.create(name="not ann's")
    assert page.update(changes(other)) == []
    new = Entry.objects.create(name="b", author=ann)
    item = f"<li><!--rt:1#{new.pk}.1-->b<!--/rt:1#{new.pk}.1--></li>"
    assert page.update(changes(new)) == [list_op("1", [a.pk, new.pk], {new.pk: item})]
    page.assert_fresh()


def test_many_to_many_tag_added(rows: list[Entry]) -> None:
    a = rows[0]
    red = Tag.objects.create(name="red")
    blue = Tag.objects.create(name="blue")
    red.entries.add(a)
    source = "<ul>{% for t in entry.tags.all %}<li>{{ t.name }}</li>{% endfor %}</ul>"
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    blue.entries.add(a)  # m2m_changed publishes both sides as saved
    item = f"<li><!--rt:1#{blue.pk}.1-->blue<!--/rt:1#{blue.pk}.1--></li>"
    assert page.update(changes(a, blue)) == [list_op("1", [red.pk, blue.pk], {blue.pk: item})]
    page.assert_fresh()
    red.entries.remove(a)
    assert page.update(changes(a, red)) == [list_op("1", [blue.pk], {})]
    page.assert_fresh()


# several lists, several changes -------------------------------------------------------------


NESTED = (
    "{% for a in authors %}<section><h2>{{ a.name }}</h2><ul>"
    "{% for e in a.entry_set.all %}<li>{{ e.name }}</li>{% endfor %}</ul></section>{% endfor %}"
)


def test_nested_lists_row_added_and_moved() -> None:
    ann = Author.objects.create(name="Ann")
    bob = Author.objects.create(name="Bob")
    a = Entry.objects.create(name="a", author=ann)
    b = Entry.objects.create(name="b", author=bob)
    page = Page(NESTED, lambda: {"authors": Author.objects.order_by("pk")})
    inner_ann, inner_bob = f"1#{ann.pk}.2", f"1#{bob.pk}.2"
    assert page.live.regions[inner_ann].keys == [str(a.pk)]
    new = Entry.objects.create(name="c", author=ann)
    item = f"<li><!--rt:{inner_ann}#{new.pk}.1-->c<!--/rt:{inner_ann}#{new.pk}.1--></li>"
    # entry_set.all is unordered: the database decides where each row stands (on
    # PostgreSQL, where earlier tests left free space), and the page follows it.
    ops = page.update(changes(new))
    assert [(op[OP], op[ID], sorted(op[KEYS]), op[ITEMS]) for op in ops] == [
        (PatchOp.LIST, inner_ann, sorted([str(a.pk), str(new.pk)]), {str(new.pk): item})
    ]
    page.assert_fresh()
    # a row moves from Ann's list to Bob's
    a.author = bob
    a.save()
    ops = page.update(changes(a))
    # entry_set.all is unordered: the database decides where the moved row stands
    # (PostgreSQL puts an updated row last), and the page follows what it says.
    assert sorted((op[OP], op[ID], sorted(op[KEYS])) for op in ops) == [
        (PatchOp.LIST, inner_ann, [str(new.pk)]),
        (PatchOp.LIST, inner_bob, sorted([str(a.pk), str(b.pk)])),
    ]
    page.assert_fresh()
    # the moved row's name region lives on in Bob's list
    a.name = "A"
    a.save()
    assert page.update(changes(a)) == [region_op(f"{inner_bob}#{a.pk}.1", "A")]
    page.assert_fresh()


def test_batch_with_a_rename_an_insert_and_a_delete(rows: list[Entry]) -> None:
    page = Page(LIST, lambda: {"entries": entries()})
    a, b, c = rows
    a.name = "A"
    a.save()
    new = Entry.objects.create(name="d", position=4)
    gone = delete(b)
    ops = page.update(changes(a, new, deleted=gone))
    item = f"<li><!--rt:1#{new.pk}.1-->d<!--/rt:1#{new.pk}.1--></li>"
    assert ops == [
        list_op("1", [a.pk, c.pk, new.pk], {new.pk: item}),
        region_op(f"1#{a.pk}.1", "A"),
    ]
    page.assert_fresh()


def test_list_inside_a_region_of_the_same_table(rows: list[Entry]) -> None:
    source = (
        "{% if entries %}<ul>{% for e in entries %}<li>{{ e.name }}"
        "</li>{% endfor %}</ul>{% else %}<p>none</p>{% endif %}"
    )
    page = Page(source, lambda: {"entries": entries()})
    new = Entry.objects.create(name="d", position=4)
    # The {% if %} renders again; only the list inside it differs, and only by a row.
    (op,) = page.update(changes(new))
    assert op[OP] == PatchOp.LIST and op[ID] == "1.1" and list(op[ITEMS]) == [str(new.pk)]
    page.assert_fresh()
    for row in Entry.objects.all():
        page.update(changes(deleted=delete(row)))
    assert page.live.html == "<!--rt:1--><p>none</p><!--/rt:1-->"


def test_count_region_follows_the_table(rows: list[Entry]) -> None:
    page = Page("<p>{{ entries.count }} / {{ entries|length }}</p>", lambda: {"entries": entries()})
    new = Entry.objects.create(name="d")
    assert sorted(page.update(changes(new)), key=lambda op: op[ID]) == [
        region_op("1", "4"),
        region_op("2", "4"),
    ]
    page.assert_fresh()


def test_include_in_a_list_is_positional(rows: list[Entry]) -> None:
    source = (
        "<ul>{% for e in entries %}"
        '{% include "testapp/live/item.html" with entry=e %}{% endfor %}</ul>'
    )
    page = Page(source, lambda: {"entries": entries()})
    a, b, c = rows
    b.done = True
    b.save()
    assert page.update(changes(b)) == [region_op(f"1#{b.pk}.1.2", " (done)")]
    new = Entry.objects.create(name="z", position=0)
    (op,) = page.update(changes(new))
    assert op[OP] == PatchOp.LIST
    assert op[KEYS] == [str(new.pk), str(a.pk), str(b.pk), str(c.pk)]
    assert str(new.pk) in op[ITEMS]
    page.assert_fresh()


def test_inclusion_tag_region(rows: list[Entry]) -> None:
    ann = Author.objects.create(name="Ann")
    a = rows[0]
    source = "{% load live_tags %}<div>{% entry_card entry %}</div>"
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    a.author = ann
    a.save()
    assert page.update(changes(a)) == [region_op("1.2", "Ann")]
    page.assert_fresh()


def test_item_attribute_reading_a_foreign_key(rows: list[Entry]) -> None:
    ann = Author.objects.create(name="Ann")
    a, b, c = rows
    for row in (a, c):
        row.author = ann
        row.save()
    source = (
        "<ul>{% for e in entries %}"
        '<li title="{{ e.author.name }}">{{ e.name }}</li>{% endfor %}</ul>'
    )
    page = Page(source, lambda: {"entries": entries()})
    ann.name = "Anne"
    ann.save()
    ops = page.update(changes(ann))
    # b has no author: unchanged; a and c get their attribute's new value.
    assert ops == [
        {OP: PatchOp.ATTRS, ID: f"1#{row.pk}", "set": [[0, "li", "title", "Anne"]]}
        for row in sorted((a, c), key=lambda row: str(row.pk))
    ] or ops == [
        {OP: PatchOp.ATTRS, ID: f"1#{row.pk}", "set": [[0, "li", "title", "Anne"]]}
        for row in (a, c)
    ]
    page.assert_fresh()


def test_page_with_a_request(rows: list[Entry]) -> None:
    from django.test import RequestFactory

    request = RequestFactory().get("/here/")
    a = rows[0]
    source = "<p>{% if entry.done %}{{ request.path }} {{ entry.name }}{% endif %}</p>"
    page = LivePage(Template(source), {"entry": Entry.objects.get(pk=a.pk)}, request)
    page.render()
    a.done = True
    a.save()
    assert page.update(changes(a)) == [region_op("1", "/here/ <!--rt:1.2-->a<!--/rt:1.2-->")]


# the view and the page -------------------------------------------------------------------


class FakeView:
    def __init__(self) -> None:
        self.counter = 0
        self.title = "First"


def test_update_view_renders_view_reads_again(rows: list[Entry]) -> None:
    view = FakeView()
    page = Page("<p>{{ view.counter }}</p>" + LIST, lambda: {"view": view, "entries": entries()})
    assert page.live.update_view() == []  # nothing changed yet
    view.counter = 5
    assert page.live.update_view() == [region_op("1", "5")]
    page.assert_fresh()
    assert page.live.update_view() == []


def test_update_view_on_a_page_that_does_not_read_the_view(rows: list[Entry]) -> None:
    view = FakeView()
    page = Page(LIST, lambda: {"view": view, "entries": entries()})
    view.counter = 7
    assert page.live.update_view() == []


DOCUMENT = (
    "<!doctype html><html><head><title>{{ view.title }} ({{ entries|length }})</title></head>"
    "<body><p>{{ view.counter }}</p>" + LIST + "</body></html>"
)


def test_title_read_sets_the_title_alone(rows: list[Entry]) -> None:
    view = FakeView()
    page = Page(DOCUMENT, lambda: {"view": view, "entries": entries()})
    view.title = "Second & more"
    # The page renders again; only the title differs: no morph of the body.
    assert page.live.update_view() == [{OP: PatchOp.HEAD, TITLE: "Second & more (3)"}]
    page.assert_fresh()


def test_table_read_in_title_sets_the_title_and_patches_the_list(rows: list[Entry]) -> None:
    view = FakeView()
    page = Page(DOCUMENT, lambda: {"view": view, "entries": entries()})
    new = Entry.objects.create(name="d", position=4)
    head, body = page.update(changes(new))
    assert head == {OP: PatchOp.HEAD, TITLE: "First (4)"}
    assert body[OP] == PatchOp.LIST and list(body[ITEMS]) == [str(new.pk)]
    page.assert_fresh()


def test_style_read_morphs_the_head_and_a_script_read_reloads(rows: list[Entry]) -> None:
    source = (
        "<html><head><style>p { width: {{ entries|length }}px }</style></head>"
        "<body><p>x</p></body></html>"
    )
    page = Page(source, lambda: {"entries": entries()})
    new = Entry.objects.create(name="d", position=4)
    (op,) = page.update(changes(new))
    assert op == {OP: PatchOp.HEAD, HTML: "<style>p { width: 4px }</style>"}
    page.assert_fresh()
    source = "<body><script>var n = {{ entries|length }};</script><p>x</p></body>"
    page = Page(source, lambda: {"entries": entries()})
    Entry.objects.create(name="e", position=5)
    # A script that already ran cannot take a new value: only a reload shows the truth.
    assert page.update(changes(new)) == [{OP: PatchOp.RELOAD}]


# known bugs ------------------------------------------------------------------------------


def test_instance_read_in_title_sets_the_title(rows: list[Entry]) -> None:
    a = rows[0]
    source = (
        "<html><head><title>{{ entry.name }}</title>"
        "</head><body><p>{{ entry.name }}</p></body></html>"
    )
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    a.name = "renamed"
    a.save()
    assert page.update(changes(a)) == [
        {OP: PatchOp.HEAD, TITLE: "renamed"},
        region_op("1", "renamed"),
    ]
    page.assert_fresh()


def test_removing_a_row_keeps_regions_of_keys_with_the_same_prefix() -> None:
    one = Entry.objects.create(pk=1, name="one", position=1)
    ten = Entry.objects.create(pk=10, name="ten", position=2)
    page = Page(LIST, lambda: {"entries": entries()})
    assert page.update(changes(deleted=delete(one))) == [list_op("1", [10], {})]
    ten.name = "TEN"
    ten.save()
    assert page.update(changes(ten)) == [region_op("1#10.1", "TEN")]


def test_morph_after_update_view_shows_current_rows(rows: list[Entry]) -> None:
    view = FakeView()
    page = Page(
        DOCUMENT.replace(" ({{ entries|length }})", ""),
        lambda: {"view": view, "entries": entries()},
    )
    new = Entry.objects.create(name="d", position=4)
    assert page.update(changes(new))[0][OP] == PatchOp.LIST
    view.title = "Second"
    assert page.live.update_view() == [{OP: PatchOp.HEAD, TITLE: "Second"}]
    page.assert_fresh()


def test_region_holding_a_block_keeps_the_childs_content(rows: list[Entry]) -> None:
    a = rows[0]
    page = LivePage("testapp/live/child_if.html", {"entry": Entry.objects.get(pk=a.pk)}, None)
    page.render()
    a.done = True
    a.save()
    # A node that holds a {% block %} cannot render alone: the page morphs instead.
    (op,) = page.update(changes(a))
    assert op["o"] == "morph" and "<main>child a</main>" in strip_markers(op["html"])
    fresh = get_template("testapp/live/child_if.html").render({"entry": Entry.objects.get(pk=a.pk)})
    assert strip_markers(page.html) == fresh


def test_simple_tag_as_variable_follows_the_row(rows: list[Entry]) -> None:
    a = rows[0]
    source = "{% load live_tags %}{% shout entry.name as loud %}<p>{{ loud }}</p>"
    page = Page(source, lambda: {"entry": Entry.objects.get(pk=a.pk)})
    a.name = "hey"
    a.save()
    assert page.update(changes(a)) != []
    page.assert_fresh()


def test_regroup_follows_the_table(rows: list[Entry]) -> None:
    source = (
        "{% regroup entries by done as groups %}{% for g in groups %}<h3>{{ g.grouper }}</h3>"
        "{% for e in g.list %}<p>{{ e.name }}</p>{% endfor %}{% endfor %}"
    )
    page = Page(source, lambda: {"entries": Entry.objects.order_by("done", "pk")})
    new = Entry.objects.create(name="d", done=True)
    assert page.update(changes(new)) != []
    page.assert_fresh()


def test_takes_context_tag_reading_forloop_is_positional(rows: list[Entry]) -> None:
    source = (
        "{% load live_tags %}<ul>{% for e in entries %}<li>"
        "{% row_number %} {{ e.name }}</li>{% endfor %}</ul>"
    )
    page = Page(source, lambda: {"entries": entries()})
    new = Entry.objects.create(name="z", position=0)
    page.update(changes(new))
    page.assert_fresh()


def test_queryset_filtered_through_a_relation_follows_the_related_table() -> None:
    ann = Author.objects.create(name="Ann")
    a = Entry.objects.create(name="a", author=ann)
    page = Page(LIST, lambda: {"entries": Entry.objects.filter(author__name="Ann").order_by("pk")})
    assert page.live.regions["1"].keys == [str(a.pk)]
    ann.name = "Anne"
    ann.save()
    assert page.update(changes(ann)) == [region_op("1", "")]
    page.assert_fresh()


def test_a_csrf_token_outside_any_region_does_not_make_every_render_differ(
    rows: list[Entry],
) -> None:
    from django.test import RequestFactory

    source = "<body><form method=post>{% csrf_token %}<button>go</button></form>" + LIST + "</body>"
    page = LivePage(Template(source), {"entries": entries()}, RequestFactory().get("/"))
    page.render()
    # Each render masks the token anew; any of them is valid: nothing to send.
    assert page.rerender() == []
    new = Entry.objects.create(name="d", position=4)
    (op,) = page.update(changes(new))
    assert op[OP] == PatchOp.LIST


# the view run again ------------------------------------------------------------------------


def test_a_context_computed_again_in_another_order_renders_in_that_order(
    rows: list[Entry],
) -> None:
    source = "{% for name, position in names.items %}{{ name }}={{ position }} {% endfor %}"
    live = LivePage(Template(source), {"names": {"a": 1, "b": 2}}, None)
    live.render()
    a, b, c = rows
    a.save()
    live.refreshing = changes(a)  # as the hub leaves it for the view's new run
    live.rerun({"names": {"b": 2, "a": 1}}, [("t", "testapp.entry")])
    assert strip_markers(live.html) == "b=2 a=1 "


def test_a_context_computed_again_alike_is_updated_region_by_region(rows: list[Entry]) -> None:
    a, b, c = rows
    live = LivePage(Template("<h1>{{ entry.name }}</h1>{{ n }}"), {"entry": a, "n": 3}, None)
    live.render()
    saved = Entry.objects.get(pk=a.pk)  # saved elsewhere: the page's copy is the old one
    saved.name = "renamed"
    saved.save()
    live.refreshing = changes(saved)
    fresh = Entry.objects.get(pk=a.pk)
    ops = live.rerun({"entry": fresh, "n": 3}, [("t", "testapp.entry")])
    assert ops == [region_op("1", "renamed")]
    assert live.refreshing is None


def test_a_list_the_view_changed_in_place_renders_the_page_again(rows: list[Entry]) -> None:
    names = ["a", "b"]
    live = LivePage(
        Template("{% for name in names %}{{ name }} {% endfor %}"), {"names": names}, None
    )
    live.render()
    a, b, c = rows
    a.save()
    names.append("c")  # the view keeps the list and appends to it: old and new are one
    live.refreshing = changes(a)
    live.rerun({"names": names}, [("t", "testapp.entry")])
    assert strip_markers(live.html) == "a b c "
