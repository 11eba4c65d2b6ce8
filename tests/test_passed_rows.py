"""A row that a view picks by primary key and passes on unread depends on its existence.

``context["entry"] = get_object_or_404(Entry, pk=pk)`` computes nothing from the row:
what the page shows of it, the template reads through the proxies, region by region.
A save of the row then updates those regions without running the view again; its
deletion still runs the view (which now answers 404). The view runs again as before
when it read anything of the row but its key (a column, ``str()``, a relation), when
the row went somewhere the template reads it unseen (an object of the view's own, in
the context or on the view), or when the read made no instance (``values()``).
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db.models.signals import pre_save
from django.shortcuts import get_object_or_404

from django_rt.changes import Change, get_feed
from django_rt.live import reads
from django_rt.testing import RTClient

from .helpers import rename
from .testapp import views
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]

ROW = "testapp.entry"


def passed(use: Any) -> tuple[frozenset[tuple[str, str]], Any]:
    """What a collection around ``use(entry)`` finds passed on, and the entry."""
    entry = Entry.objects.create(name="alpha")
    with reads.collect() as read:
        picked = get_object_or_404(Entry, pk=entry.pk)
        use(picked)
    return read.passed(), picked


def test_a_row_passed_on_unread_depends_on_its_existence():
    found, entry = passed(lambda entry: (entry.pk, entry.id, entry._meta, entry._state.db))
    assert found == {(ROW, str(entry.pk))}
    assert type(entry) is Entry  # an ordinary instance again once the collection ends
    # Equality and hashing read the key alone.
    found, entry = passed(lambda entry: ({entry}, entry == Entry(pk=entry.pk)))
    assert found == {(ROW, str(entry.pk))}


@pytest.mark.parametrize(
    "use",
    [
        lambda entry: entry.name,
        lambda entry: str(entry),
        lambda entry: repr(entry),
        lambda entry: entry.__dict__,
        lambda entry: vars(entry),
        lambda entry: entry.__class__,
        lambda entry: entry.author,
        lambda entry: entry.get_deferred_fields(),
        lambda entry: setattr(entry, "extra", 1),
        lambda entry: delattr(entry, "name"),
        lambda entry: getattr(entry, "missing", None),
    ],
)
def test_a_row_read_beyond_its_key_counts_whole(use):
    found, entry = passed(use)
    assert found == frozenset()
    assert type(entry) is Entry


def test_reads_that_make_no_instance_count_whole():
    entry = Entry.objects.create(name="alpha")
    with reads.collect() as read:
        Entry.objects.filter(pk=entry.pk).values("name").first()
        get_object_or_404(Entry, pk=entry.pk)  # passed on, but the row was read above
    assert read.passed() == frozenset()
    with reads.collect() as read:
        assert Entry.objects.filter(pk=entry.pk + 1).first() is None  # no row: none made
        Entry(pk=entry.pk + 1, name="made here")  # not the database's
    assert read.passed() == frozenset()


def test_a_row_stays_watched_until_the_outer_collection_ends():
    entry = Entry.objects.create(name="alpha")
    with reads.collect() as outer:
        with reads.collect() as inner:
            picked = get_object_or_404(Entry, pk=entry.pk)
        assert inner.passed() == {(ROW, str(entry.pk))}
        picked.name  # noqa: B018  (read after the inner collection, inside the outer)
        assert inner.passed() == frozenset() and outer.passed() == frozenset()
    picked.name  # noqa: B018  (outside any collection: nothing watches it)
    assert type(picked) is Entry


def test_a_watched_row_saved_sends_its_model_s_signals():
    entry = Entry.objects.create(name="alpha")
    senders: list[Any] = []

    def heard(sender: Any, **kwargs: Any) -> None:
        senders.append(sender)

    pre_save.connect(heard, sender=Entry)
    try:
        with reads.collect() as read:
            picked = get_object_or_404(Entry, pk=entry.pk)
            picked.name = "beta"
            picked.save()
    finally:
        pre_save.disconnect(heard, sender=Entry)
    assert senders == [Entry] and read.passed() == frozenset()
    assert Entry.objects.get(pk=entry.pk).name == "beta"


@pytest.fixture
def runs(monkeypatch) -> list[str]:
    """The views of ``/live/name/`` and its variants, each time one runs."""
    ran: list[str] = []
    original = views.EntryNameView.get_context_data

    def get_context_data(self, **kwargs):
        ran.append(type(self).__name__)
        return original(self, **kwargs)

    monkeypatch.setattr(views.EntryNameView, "get_context_data", get_context_data)
    return ran


async def test_a_page_of_a_row_passed_on_follows_it_without_its_view(runs):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(f"/live/name/{entry.pk}/")
        joined = len(runs)
        await rename(entry, "beta")
        await rt.settle()
        assert page.text("h1") == "beta" and page.ops["region"] == 1
        assert len(runs) == joined  # the view did not run again
        await sync_to_async(Entry.objects.filter(pk=entry.pk).update)(name="gamma")
        await rt.settle()
        assert page.text("h1") == "gamma" and len(runs) == joined
        assert page.shown == await page.fresh()
        await sync_to_async(Entry.objects.filter(pk=entry.pk).delete)()
        await rt.settle()
        assert page.reloads == 1  # only the view knows: it now answers 404


@pytest.mark.parametrize("path", ["/live/boxed/{pk}/", "/live/kept/{pk}/"])
async def test_a_row_the_template_reads_unseen_runs_the_view_again(runs, path):
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(path.format(pk=entry.pk))
        assert page.text("h1") == "alpha"
        joined = len(runs)
        await rename(entry, "beta")
        await rt.settle()
        assert len(runs) > joined
        assert page.text("h1") == "beta"
        assert page.shown == await page.fresh()


async def test_a_row_whose_key_alone_shows_learns_that_it_is_gone():
    entry = await sync_to_async(Entry.objects.create)(name="alpha")
    async with RTClient() as rt:
        page = await rt.open(f"/live/key/{entry.pk}/")
        assert page.text("h1") == f"Entry {entry.pk}"

        def move() -> None:
            # Its key changes, announced as a save of the old key (as PostgreSQL's
            # triggers announce an update): the row of the page's key is gone.
            with reads.covered(frozenset({ROW})):
                Entry.objects.filter(pk=entry.pk).update(id=entry.pk + 100)
            get_feed().publish([Change(ROW, str(entry.pk))])

        await sync_to_async(move)()
        await rt.settle()
        assert page.reloads == 1
