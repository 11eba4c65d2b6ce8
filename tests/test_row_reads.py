"""A view that picks one row by its primary key depends on that row, not on its table.

``get_object_or_404(Entry, pk=...)`` reads one row: a save of another row of the table
cannot change what the view computes, so the page's view does not run again for it;
a save, a delete or a table-wide write of its own row still does. Any other statement
(another condition, a join, a list of keys, a count) keeps depending on the table.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from django_rt.live import reads
from django_rt.testing import RTClient

from .testapp import views
from .testapp.models import Entry, Item, Label, Shop

pytestmark = [pytest.mark.django_db(transaction=True)]


def statement(queryset: Any) -> tuple[str, Any]:
    return queryset.query.get_compiler(connection=connection).as_sql()


def read_of(queryset: Any) -> tuple[str, str] | None:
    return reads.row_read(*statement(queryset))


def test_statements_that_read_one_row_by_primary_key():
    entries = Entry.objects
    assert read_of(entries.filter(pk=7)[:21]) == ("testapp.entry", "7")  # get(pk=7)
    assert read_of(entries.filter(pk=7).order_by("pk")[:1]) == ("testapp.entry", "7")
    assert read_of(entries.filter(id__exact="7")) == ("testapp.entry", "7")
    assert read_of(entries.filter(pk=7).values("name")) == ("testapp.entry", "7")
    assert read_of(entries.filter(pk=7).only("name")) == ("testapp.entry", "7")


def test_statements_that_read_more_than_one_row_keep_their_tables():
    entries = Entry.objects
    assert read_of(entries.filter(pk=7, done=True)) is None
    assert read_of(entries.filter(pk__in=[7])) is None
    assert read_of(entries.filter(pk__gt=7)) is None
    assert read_of(entries.filter(name="x")) is None
    assert read_of(entries.filter(pk=7).select_related("author")) is None
    assert read_of(entries.filter(author__pk=7)) is None  # another table's key
    assert read_of(entries.filter(pk=7).order_by("author__name")) is None  # a join
    assert read_of(Item.objects.filter(pk=7)) is None  # its manager filters soft deletes
    assert read_of(Shop.objects.filter(pk=7)) is None  # its parent's table is joined
    # A text key: a case-insensitive collation would find a row the feed names otherwise.
    assert read_of(Label.objects.filter(pk="abc")) is None
    sql, params = statement(entries.filter(pk=7))
    assert reads.row_read(sql, ()) is None and reads.row_read(sql, (7, 8)) is None
    assert reads.row_read(sql, ("not a key",)) is None
    count_sql = f"SELECT COUNT(*) FROM {connection.ops.quote_name('testapp_entry')}"
    assert reads.row_read(count_sql + " WHERE x = %s", (7,)) is None


def test_what_a_view_reads_by_primary_key_is_the_row():
    with reads.collect() as read:
        Entry.objects.filter(pk=3).first()
        list(Entry.objects.filter(done=True))
    assert read == {("testapp.entry", "3"), "testapp.entry"}
    with reads.collect() as read:
        Entry.objects.filter(pk=3).exists()  # its constant is a parameter too
    assert read == {"testapp.entry"}


@pytest.fixture
def counted(monkeypatch):
    runs: list[Any] = []
    original = views.EntryDetailView.get_context_data

    def get_context_data(self, **kwargs):
        runs.append(kwargs["pk"])
        return original(self, **kwargs)

    monkeypatch.setattr(views.EntryDetailView, "get_context_data", get_context_data)
    return runs


async def test_a_page_of_one_row_runs_its_view_again_for_that_row_only(counted):
    alpha = await sync_to_async(Entry.objects.create)(name="alpha")
    beta = await sync_to_async(Entry.objects.create)(name="beta")
    async with RTClient() as rt:
        detail = await rt.open(f"/live/entry/{alpha.pk}/")
        headline = await rt.open(f"/live/headline/{alpha.pk}/")
        runs = len(counted)
        beta.name = "beta renamed"
        await sync_to_async(beta.save)()
        await rt.settle()
        # Another row: the list of the others follows it, the view does not run again.
        assert "beta renamed" in detail.text("ul") and "beta renamed" in headline.text("ul")
        assert len(counted) == runs
        assert detail.shown == await detail.fresh()
        assert headline.shown == await headline.fresh()
        alpha.name = "alpha renamed"
        await sync_to_async(alpha.save)()
        await rt.settle()
        assert len(counted) > runs  # its own row: the views run again
        assert detail.text("h1") == "alpha renamed"
        assert headline.text("h1") == "ALPHA RENAMED"  # computed by the view from the row
        await sync_to_async(Entry.objects.filter(pk=alpha.pk).update)(name="by update")
        await rt.settle()
        assert headline.text("h1") == "BY UPDATE"  # a table-wide write reaches it too
        assert headline.shown == await headline.fresh()
        await sync_to_async(Entry.objects.filter(pk=alpha.pk).delete)()
        await rt.settle()
        assert detail.reloads == 1 and headline.reloads == 1  # the view now answers 404
