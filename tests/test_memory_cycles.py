"""What a page load and a write leave behind is freed as soon as nothing refers to it,
by reference counting, not left in reference cycles for the garbage collector: a
hundred page loads would otherwise pile up for a full collection, which holds every
open page of the process while it runs (hundreds of milliseconds with a thousand open
pages)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.http import HttpRequest
from django.test import RequestFactory

from django_rt.changes import _Published
from django_rt.live.proxies import unwrap
from django_rt.live.render import render_template

from .testapp.models import Entry
from .testapp.views import LiveEntriesView

pytestmark = [pytest.mark.django_db]

TEMPLATE = "testapp/pages/entries.html"


@contextmanager
def no_collection() -> Iterator[None]:
    """No garbage collection meanwhile: what is freed is freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def all_freed(refs: list[weakref.ref[Any]]) -> bool:
    return all(ref() is None for ref in refs)


@pytest.fixture
def entries() -> None:
    Entry.objects.bulk_create(Entry(name=f"entry {i}", position=i) for i in range(5))


def request() -> HttpRequest:
    made = RequestFactory().get("/live/entries/")
    made.user = AnonymousUser()
    made.session = SessionStore()
    return made


def test_a_tracked_render_is_freed_without_the_collector(entries: None) -> None:
    with no_collection():
        live = render_template(TEMPLATE, {"entries": Entry.objects.order_by("name")}, request())
        assert len(live.regions) > 5  # the lists, their items, the count
        refs: list[weakref.ref[Any]] = [weakref.ref(region) for region in live.regions.values()]
        refs += [weakref.ref(proxy) for proxy in live.registry.values()]
        refs += [weakref.ref(unwrap(proxy)) for proxy in live.registry.values()]  # the rows
        del live
        assert all_freed(refs)


def test_a_page_load_is_freed_without_the_collector(entries: None) -> None:
    with no_collection():
        response = LiveEntriesView.as_view()(request())
        response.render()
        assert b"entry 4" in response.content
        view = weakref.ref(response.context_data["view"])
        assert isinstance(view(), LiveEntriesView)
        del response
        assert view() is None


def test_a_head_request_answers_as_get(entries: None) -> None:
    made = RequestFactory().head("/live/entries/")
    made.user = AnonymousUser()
    made.session = SessionStore()
    response = LiveEntriesView.as_view()(made)
    response.render()
    assert response.status_code == 200
    assert b"entry 4" in response.content  # Django's handler drops the body of a HEAD


@pytest.mark.django_db(transaction=True)
def test_committed_callbacks_let_their_group_go() -> None:
    """A statement's callback refers to a group (and the group to it) only while its
    transaction is open; a statement alone refers to none."""
    connection = transaction.get_connection()
    with transaction.atomic():  # two statements, one batch
        Entry.objects.create(name="first")
        Entry.objects.create(name="second")
        grouped = [hook[1] for hook in connection.run_on_commit if type(hook[1]) is _Published]
        assert len(grouped) == 2 and grouped[0].group is grouped[1].group
    assert [callback.group for callback in grouped] == [None, None]
    assert all(callback.done for callback in grouped)
    with transaction.atomic():
        Entry.objects.create(name="alone")
        [alone] = [hook[1] for hook in connection.run_on_commit if type(hook[1]) is _Published]
        assert alone.group is None
