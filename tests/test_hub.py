"""The hub: one refetch and one query per batch for any number of pages, one frame per
page per batch, only the pages that depend on a change."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.template import Template
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_rt import hub as hub_module
from django_rt.changes import DELETE, Change
from django_rt.hub import Hub, QueryCache, RowsQuery
from django_rt.live.page import LivePage

from .testapp.models import Author, Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


class FakeClient:
    """The hub's view of a connection."""

    def __init__(self, template: str = "testapp/entries.html", **context: Any) -> None:
        context.setdefault("entries", Entry.objects.order_by("name"))
        self.page = LivePage(template, context, None)
        self.page.render()
        self.frames: list[list[dict[str, Any]]] = []
        self.refreshed = 0

    async def send_patch(self, ops: list[dict[str, Any]]) -> None:
        self.frames.append(ops)

    def refresh(self) -> list[dict[str, Any]]:
        self.refreshed += 1
        return []


async def clients_on(hub: Hub, count: int, **context: Any) -> list[FakeClient]:
    clients = [await sync_to_async(FakeClient)(**context) for _ in range(count)]
    for client in clients:
        hub.reindex(client)
    return clients


def count_queries(function, *args):
    with CaptureQueriesContext(connection) as queries:
        result = function(*args)
    return result, len(queries)


async def test_one_refetch_and_one_list_query_whatever_the_number_of_pages():
    entries = [await sync_to_async(Entry.objects.create)(name=f"e{i}") for i in range(3)]
    hub = Hub.current()
    hub.unsubscribe()  # this test runs the update by hand, in its own thread
    clients = await clients_on(hub, 25)
    entries[0].name = "e0 renamed"  # keeps its place in the order
    await sync_to_async(entries[0].save)()
    changes = [Change("testapp.entry", str(entries[0].pk))]
    # The update runs in one worker thread: count its queries there.
    affected = hub.affected(changes)
    assert affected == set(clients)
    updates, queries = await sync_to_async(count_queries)(hub._update, changes, affected)
    assert queries == 2  # the refetch of the row, the list's query (shared by 25 pages)
    assert len(updates) == 25
    for delivery in updates:
        assert delivery.ops == [{"o": "region", "id": f"1#{entries[0].pk}.1", "html": "e0 renamed"}]


async def test_a_burst_of_changes_is_one_frame_per_page():
    await sync_to_async(Entry.objects.create)(name="a first one")
    hub = Hub.current()
    clients = await clients_on(hub, 3)

    def burst():
        with transaction.atomic():  # five changes, published together on commit
            for index in range(5):
                Entry.objects.create(name=f"burst {index}")

    await sync_to_async(burst)()
    for _ in range(100):
        if all(client.frames for client in clients):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    for client in clients:
        assert len(client.frames) == 1
        (op,) = client.frames[0]
        assert op["o"] == "list" and len(op["keys"]) == 6 and len(op["items"]) == 5
    for client in clients:
        hub.detach(client)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks need Python 3.12")
async def test_a_lone_change_reaches_the_hubs_thread_before_the_loops_other_work(monkeypatch):
    """What the loop had ready before the change came (another request's callbacks)
    runs after the batch is handed to the hub's thread, not before."""
    hub = Hub.current()
    hub.unsubscribe()
    entry = await sync_to_async(Entry.objects.create)(name="solo")
    clients = await clients_on(hub, 1)
    order: list[str] = []
    update = hub._update

    def updating(*args: Any) -> Any:
        order.append("update")
        return update(*args)

    monkeypatch.setattr(hub, "_update", updating)
    handed = hub_module.run_in_hub_thread

    async def handing(*args: Any) -> Any:
        order.append("handed")
        return await handed(*args)

    monkeypatch.setattr(hub_module, "run_in_hub_thread", handing)
    asyncio.get_running_loop().call_soon(order.append, "other work")
    hub._enqueue([Change("testapp.entry", str(entry.pk))])
    assert order[0] == "handed" and "other work" not in order  # the loop did not turn
    while hub.flushing is not None:
        await asyncio.sleep(0.01)
    assert order.index("handed") < order.index("other work") and "update" in order
    hub.detach(clients[0])


async def test_pages_that_do_not_depend_on_a_change_are_not_touched():
    hub = Hub.current()
    listing = await clients_on(hub, 2)
    static = await clients_on(hub, 2, template="testapp/example.html", entries=["a", "b"])
    changes = [Change("testapp.author", "1")]
    assert hub.affected(changes) == set()
    changes = [Change("testapp.entry", "99")]
    assert hub.affected(changes) == set(listing)
    assert not (hub.affected(changes) & set(static))


async def test_detached_pages_leave_the_index():
    hub = Hub.current()
    (client,) = await clients_on(hub, 1)
    assert hub.affected([Change("testapp.entry", "1")]) == {client}
    hub.detach(client)
    assert hub.affected([Change("testapp.entry", "1")]) == set()
    assert hub.index == {}


async def test_a_deleted_row_outside_a_list_refreshes_the_page():
    author = await sync_to_async(Author.objects.create)(name="Ada")
    entry = await sync_to_async(Entry.objects.create)(name="x", author=author)
    hub = Hub.current()
    hub.unsubscribe()  # only the change below: the author's delete, alone
    client = await sync_to_async(FakeClient)(template="testapp/pages/entries.html", entries=[entry])
    hub.reindex(client)
    pk = author.pk
    await sync_to_async(author.delete)()
    changes = [Change("testapp.author", str(pk), DELETE)]
    await hub.process(changes)
    assert client.refreshed == 1


async def test_a_page_that_shows_a_rows_key_alone_changes_with_its_existence_alone():
    """A row's key stays while the row exists: a save of it changes nothing on a page
    that shows nothing else of it (the row is fetched, to know that it still exists: an
    update may have changed its key); its delete runs the view again, and so does a
    change to its whole table that deleted it."""
    entry = await sync_to_async(Entry.objects.create)(name="x")
    hub = Hub.current()
    hub.unsubscribe()  # only the changes below
    template = Template('<a href="/e/{{ entry.pk }}/">{{ entry.id }}</a>')
    client = await sync_to_async(FakeClient)(template=template, entry=entry)
    hub.reindex(client)
    key = str(entry.pk)
    assert hub.rows == {"testapp.entry": {key}}
    assert hub.affected([Change("testapp.entry", "")]) == {client}
    entry.name = "y"
    await sync_to_async(entry.save)()
    await hub.process([Change("testapp.entry", key)])
    await asyncio.sleep(0)
    assert client.frames == [] and client.refreshed == 0
    await sync_to_async(entry.delete)()
    await hub.process([Change("testapp.entry", key, DELETE)])
    assert client.refreshed == 1


async def test_a_row_stays_in_the_rows_index_while_its_content_or_its_key_is_read():
    hub = Hub.current()
    (client,) = await clients_on(hub, 1, template="testapp/example.html", entries=[])
    content, key = ("i", "testapp.entry", "7"), ("e", "testapp.entry", "7")
    hub._index(client.page, frozenset({content, key}))
    hub._index(client.page, frozenset({content}))
    assert hub.rows == {"testapp.entry": {"7"}}
    hub._index(client.page, frozenset({key}))
    assert hub.rows == {"testapp.entry": {"7"}}
    hub._index(client.page, frozenset())
    assert hub.rows == {}


def _fields(row):
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


@pytest.mark.parametrize("kind", ["entry", "user", "label", "shop"])
def test_rows_refetched_through_a_compiled_query_are_the_orms(kind, monkeypatch):
    """Keys of every kind (integers, text, a parent's key), columns with converters (a
    user's dates): the same rows as ``filter(pk__in=...)`` gives, compiled once."""
    from django.contrib.auth.models import User

    from .testapp.models import Label, Shop

    monkeypatch.setattr(RowsQuery, "_compiled", {})
    make = {
        "entry": lambda n: Entry.objects.create(name=f"e{n}", position=n),
        "user": lambda n: User.objects.create_user(f"u{n}", last_login=timezone.now()),
        "label": lambda n: Label.objects.create(code=f"a.b-{n} %", name=f"label {n}"),
        "shop": lambda n: Shop.objects.create(name=f"shop {n}", kind="books"),
    }[kind]
    rows = [make(n) for n in range(3)]
    model = type(rows[0])
    pks = [str(row.pk) for row in rows[:2]]
    with CaptureQueriesContext(connection) as orm:
        expected = list(model._base_manager.filter(pk__in=pks))
    for _ in range(2):
        with CaptureQueriesContext(connection) as compiled:
            found = RowsQuery.rows(model, pks)
        assert [q["sql"] for q in compiled] == [q["sql"] for q in orm]
        assert sorted(map(_fields, found), key=str) == sorted(map(_fields, expected), key=str)
        assert all(not row._state.adding and row._state.db == "default" for row in found)
    assert isinstance(RowsQuery._compiled[(model, 2, "default")], RowsQuery)


def test_rows_whose_base_manager_filters_are_refetched_through_the_orm(monkeypatch):
    """A base manager of its own may add conditions (here: soft-deleted rows left out)
    or make another query at each call: its rows take the ORM's query each time."""
    from .testapp.models import Item

    monkeypatch.setattr(RowsQuery, "_compiled", {})
    monkeypatch.setattr(Item._meta, "base_manager", Item.objects)
    kept, gone = Item.everything.create(name="kept"), Item.everything.create(name="gone")
    gone.deleted = True
    gone.save()
    assert [row.pk for row in RowsQuery.rows(Item, [str(kept.pk)])] == [kept.pk]
    assert RowsQuery.rows(Item, [str(gone.pk)]) == []
    assert RowsQuery._compiled[(Item, 1, "default")] is None


def test_query_cache_runs_each_query_once():
    Entry.objects.create(name="a")
    cache = QueryCache()
    first = cache(Entry.objects.order_by("name"))
    second = cache(Entry.objects.order_by("name"))
    assert first is second and cache.queries == 1
    cache(Entry.objects.filter(name="a"))
    assert cache.queries == 2
    assert cache(Entry.objects.none()) == []


async def test_a_broken_connection_does_not_cost_the_others():
    first = await sync_to_async(Entry.objects.create)(name="first")
    hub = Hub.current()
    broken, healthy = await clients_on(hub, 2)

    async def fail(ops):
        raise ConnectionError("gone")

    broken.send_patch = fail
    first.name = "first, renamed"
    await sync_to_async(first.save)()
    await hub.process([Change("testapp.entry", str(first.pk))])
    assert healthy.frames and healthy.frames[-1][0]["html"] == "first, renamed"


async def test_a_page_detached_during_its_update_is_not_indexed_again():
    first = await sync_to_async(Entry.objects.create)(name="first")
    hub = Hub.current()
    (client,) = await clients_on(hub, 1)
    original = hub._update

    def update_then_disconnect(changes, clients, ready=None):
        result = original(changes, clients, ready)
        hub.loop.call_soon_threadsafe(hub.detach, client)
        return result

    hub._update = update_then_disconnect
    await hub.process([Change("testapp.entry", str(first.pk))])
    assert client not in hub.clients and hub.index == {}
    assert client.frames == []


async def test_a_page_that_many_connections_show_is_indexed_once():
    entry = await sync_to_async(Entry.objects.create)(name="shown")
    hub = Hub.current()
    first, *others = await clients_on(hub, 4)
    for client in others:  # they show the first one's page, as an audience does
        client.page = first.page
        hub.reindex(client)
    row = ("i", "testapp.entry", str(entry.pk))
    assert hub.index[row] == {first.page} and list(hub.indexed) == [first.page]
    change = Change("testapp.entry", str(entry.pk))
    assert hub.affected_pages([change]) == {first.page}
    assert hub.affected([change]) == {first, *others}
    for client in (first, *others[:-1]):
        hub.detach(client)
    assert hub.index[row] == {first.page}  # still shown by one
    hub.detach(others[-1])
    assert hub.index == {} and hub.indexed == {}


async def test_a_new_row_in_a_watched_table_is_refetched_with_the_batch():
    await sync_to_async(Entry.objects.create)(name="a")
    hub = Hub.current()
    hub.unsubscribe()  # this test runs the update by hand
    (client,) = await clients_on(hub, 1)
    added = await sync_to_async(Entry.objects.create)(name="b")
    changes = [Change("testapp.entry", str(added.pk))]
    updates, queries = await sync_to_async(count_queries)(
        hub._update, changes, hub.affected(changes)
    )
    # The new row itself, then the list's keys: its content is known already.
    assert queries == 2
    ((op,),) = [delivery.ops for delivery in updates]
    assert op["o"] == "list" and list(op["items"]) == [str(added.pk)]


async def test_many_changed_rows_are_refetched_in_chunks(monkeypatch):
    monkeypatch.setattr(hub_module, "REFETCH_CHUNK", 2)
    entries = [await sync_to_async(Entry.objects.create)(name=f"e{i}") for i in range(5)]
    hub = Hub.current()
    hub.unsubscribe()  # this test runs the refetch by hand
    await clients_on(hub, 1)
    changes = [Change("testapp.entry", str(entry.pk)) for entry in entries]
    wanted, _ = hub._wanted(changes)
    rows, queries = await sync_to_async(count_queries)(hub._fetch, wanted)
    assert queries == 3  # 2 + 2 + 1 rows
    assert {pk for _, pk in rows} == {str(entry.pk) for entry in entries}
    assert all(row is not None for row in rows.values())


def test_a_querysets_keys_query_is_compiled_once_and_run_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``primary_keys``: the keys in the queryset's order, as the database has them at
    each call, through the connection's cursor (its execute wrappers see the query),
    the SQL compiled at the first call only; a query that can match nothing runs none."""
    from django.db.models.sql.compiler import SQLCompiler

    from django_rt.hub import primary_keys

    a = Entry.objects.create(name="a", position=2)
    b = Entry.objects.create(name="b", position=1)
    queryset = Entry.objects.filter(position__lt=5).order_by("position")
    assert primary_keys(queryset) == [b.pk, a.pk]
    compiled = []
    as_sql = SQLCompiler.as_sql
    monkeypatch.setattr(
        SQLCompiler, "as_sql", lambda self, *a, **k: compiled.append(self) or as_sql(self, *a, **k)
    )
    c = Entry.objects.create(name="c", position=0)
    Entry.objects.filter(pk=a.pk).update(position=9)  # leaves the filter
    compiled.clear()
    with CaptureQueriesContext(connection) as queries:
        assert primary_keys(queryset) == [c.pk, b.pk]
    assert compiled == [] and len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert primary_keys(Entry.objects.filter(pk__in=[])) == []
    assert len(queries) == 0
