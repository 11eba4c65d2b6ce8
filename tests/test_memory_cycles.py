"""What a page load and a write leave behind is freed as soon as nothing refers to it,
by reference counting, not left in reference cycles for the garbage collector: a
hundred page loads would otherwise pile up for a full collection, which holds every
open page of the process while it runs (hundreds of milliseconds with a thousand open
pages)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.test import RequestFactory

from django_rt.changes import _Published
from django_rt.live.proxies import RTModelProxy, RTQuerySetProxy
from django_rt.live.recorder import Region, Session
from django_rt.live.render import render_template

from .testapp.models import Entry
from .testapp.views import LiveEntriesView

pytestmark = [pytest.mark.django_db]

TEMPLATE = "testapp/pages/entries.html"


@contextmanager
def left_to_the_collector() -> Iterator[list[str]]:
    """The names of the types of the objects that what runs inside leaves in reference
    cycles (found by a collection afterwards; none runs meanwhile)."""
    gc.collect()
    gc.disable()
    names: list[str] = []
    try:
        yield names
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            names.extend(type(thing).__qualname__ for thing in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()


OURS = {
    kind.__qualname__
    for kind in (Region, Session, RTQuerySetProxy, RTModelProxy, Entry, LiveEntriesView)
}


@pytest.fixture
def entries() -> None:
    Entry.objects.bulk_create(Entry(name=f"entry {i}", position=i) for i in range(5))


def request():
    made = RequestFactory().get("/live/entries/")
    made.user = AnonymousUser()
    made.session = SessionStore()
    return made


def test_a_tracked_render_is_freed_without_the_collector(entries: None) -> None:
    with left_to_the_collector() as left:
        live = render_template(TEMPLATE, {"entries": Entry.objects.order_by("name")}, request())
        assert len(live.regions) > 5  # the lists, their items, the count
        del live
    assert OURS.isdisjoint(left), sorted(set(left))


def test_a_page_load_is_freed_without_the_collector(entries: None) -> None:
    with left_to_the_collector() as left:
        response = LiveEntriesView.as_view()(request())
        response.render()
        assert b"entry 4" in response.content
        del response
    assert OURS.isdisjoint(left), sorted(set(left))


def test_a_head_request_answers_as_get(entries: None) -> None:
    made = RequestFactory().head("/live/entries/")
    made.user = AnonymousUser()
    made.session = SessionStore()
    response = LiveEntriesView.as_view()(made)
    response.render()
    assert response.status_code == 200
    assert b"entry 4" in response.content  # Django's handler drops the body of a HEAD


@pytest.mark.django_db(transaction=True)
def test_committed_writes_leave_no_callback_to_the_collector() -> None:
    with left_to_the_collector() as left:
        Entry.objects.create(name="alone")  # autocommit: published at once
        with transaction.atomic():  # two statements, one batch
            Entry.objects.create(name="first")
            Entry.objects.create(name="second")
    assert _Published.__qualname__ not in left, sorted(set(left))
