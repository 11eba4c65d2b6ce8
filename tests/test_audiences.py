"""Audiences: open pages that show the same thing share one live state, updated once
and encoded once; a page whose inputs differ never gets another page's HTML.

Each test opens pages over HTTP and a real socket (``django_rt.testing``), changes the
database, and checks both how many live pages the hub keeps and that every open page
equals a fresh load by its own user.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client, RequestFactory

from django_rt import hub as hub_module
from django_rt.live import audience
from django_rt.testing import RTClient

from .testapp.models import Entry, Note

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def users(db):
    return {name: User.objects.create_user(name, password="pw") for name in ("ann", "bob")}


def live_pages(rt: RTClient) -> int:
    """How many live pages the hub keeps for the open sockets."""
    return len(rt.hub.members)


async def equal_to_a_reload(*pages) -> None:
    for page in pages:
        await page.settle()
        assert page.shown == await page.fresh(), page.url


async def create(name: str) -> Entry:
    return await sync_to_async(Entry.objects.create)(name=name)


async def test_pages_that_show_the_same_share_one_live_page(users):
    await create("alpha")
    async with RTClient() as rt:
        pages = [
            await rt.open("/aud/list/", user=users["ann"]),
            await rt.open("/aud/list/", user=users["bob"]),
            await rt.open("/aud/list/"),
            await rt.open("/aud/list/"),
        ]
        # Nothing of the page reads who asked for it: one live page for all four.
        assert live_pages(rt) == 1
        await create("beta")
        await equal_to_a_reload(*pages)
        assert all("beta" in page.text("#list") for page in pages)
        assert live_pages(rt) == 1


async def test_one_render_and_one_encoding_per_audience(users, monkeypatch):
    await create("alpha")
    encoded = []
    original = hub_module.encode_patch

    def counting(ops):
        encoded.append(ops)
        return original(ops)

    monkeypatch.setattr(hub_module, "encode_patch", counting)
    async with RTClient() as rt:
        pages = [await rt.open("/aud/list/") for _ in range(5)]
        frames_before = [len(page.frames) for page in pages]
        await create("beta")
        await equal_to_a_reload(*pages)
        assert len(encoded) == 1  # one page updated, one frame encoded, five sockets
        patches = [
            [frame for frame in page.frames[count:] if frame.get("t") == "patch"]
            for page, count in zip(pages, frames_before, strict=True)
        ]
        assert all(len(received) == 1 for received in patches)
        assert len({json.dumps(received) for received in patches}) == 1


async def test_a_page_that_shows_its_user_is_shared_by_that_user_only(users):
    async with RTClient() as rt:
        ann1 = await rt.open("/aud/greeting/", user=users["ann"])
        ann2 = await rt.open("/aud/greeting/", user=users["ann"])
        bob = await rt.open("/aud/greeting/", user=users["bob"])
        anonymous = await rt.open("/aud/greeting/")
        assert live_pages(rt) == 3  # ann's two tabs share; bob and a stranger do not
        await create("gamma")
        await equal_to_a_reload(ann1, ann2, bob, anonymous)
        assert ann1.text("#hello") == "Hello ann" and bob.text("#hello") == "Hello bob"
        assert anonymous.text("#hello") == "Hello stranger"
        assert not any("ann" in json.dumps(frame) for frame in bob.frames)


async def test_an_update_that_reads_the_user_splits_the_audience(users):
    await create("alpha")
    async with RTClient() as rt:
        ann = await rt.open("/aud/late/", user=users["ann"])
        bob = await rt.open("/aud/late/", user=users["bob"])
        anonymous = await rt.open("/aud/late/")
        assert live_pages(rt) == 1  # no row reads the user yet
        await create("mine")  # its row renders {{ user.username }}
        await equal_to_a_reload(ann, bob, anonymous)
        assert "mine of ann" in ann.text("#list")
        assert "mine of bob" in bob.text("#list")
        assert "of ann" not in json.dumps(bob.frames) and "of bob" not in json.dumps(ann.frames)
        assert live_pages(rt) == 3
        await create("omega")  # each page goes on by itself
        await equal_to_a_reload(ann, bob, anonymous)


async def test_values_computed_from_the_users_rows_are_never_shared(users):
    entry = await create("alpha")
    async with RTClient() as rt:
        ann = await rt.open("/aud/count/", user=users["ann"])
        bob = await rt.open("/aud/count/", user=users["bob"])
        # Both show "0 notes", but the view read its user to count them.
        assert ann.text("#notes") == bob.text("#notes") == "0 notes"
        assert live_pages(rt) == 2
        await sync_to_async(Note.objects.create)(entry=entry, user=users["ann"], text="x")
        await equal_to_a_reload(ann, bob)
        assert (ann.text("#notes"), bob.text("#notes")) == ("1 notes", "0 notes")


async def test_a_page_with_a_form_is_shared_and_each_browser_gets_its_own_token():
    async with RTClient() as rt:
        first = await rt.open("/aud/form/")
        second = await rt.open("/aud/form/")
        same_browser = await rt.open("/aud/form/", client=first.client)
        # The live page renders a placeholder for the token: one page for all three.
        assert live_pages(rt) == 1
        await create("delta")
        await sync_to_async(Entry.objects.filter(name="delta").update)(name="delta 2")
        for page in (first, second, same_browser):
            await page.settle()
            assert page.text("#list") == "delta 2"
            token = page.select("input[name=csrfmiddlewaretoken]")[0].attrs["value"]
            cookie = page.client.cookies["csrftoken"].value
            assert _unmask(token) == cookie  # its own browser's secret
        frames = json.dumps([page.frames for page in (first, second, same_browser)])
        assert audience.CSRF_PLACEHOLDER not in frames
        assert first.client.cookies["csrftoken"].value != second.client.cookies["csrftoken"].value


async def test_a_form_in_a_region_gets_each_browsers_own_token():
    await create("alpha")
    async with RTClient() as rt:
        first = await rt.open("/aud/rowforms/")
        second = await rt.open("/aud/rowforms/")
        assert live_pages(rt) == 1
        await create("beta")  # its row renders a form with {% csrf_token %}
        for page in (first, second):
            await page.settle()
            tokens = [el.attrs["value"] for el in page.select("input[name=csrfmiddlewaretoken]")]
            assert len(tokens) == 2
            cookie = page.client.cookies["csrftoken"].value
            assert {_unmask(token) for token in tokens} == {cookie}
        # And a POST with it passes Django's CSRF check.
        token = second.select("input[name=csrfmiddlewaretoken]")[-1].attrs["value"]
        checked = Client(enforce_csrf_checks=True)
        checked.cookies["csrftoken"] = second.client.cookies["csrftoken"].value
        response = await sync_to_async(checked.post)(
            "/aud/rowforms/", {"csrfmiddlewaretoken": token}
        )
        assert response.status_code == 200


def _unmask(token: str) -> str:
    from django.middleware.csrf import _unmask_cipher_token

    return _unmask_cipher_token(token)


async def test_the_query_string_and_the_session_make_audiences():
    await create("apple")
    await create("berry")
    async with RTClient() as rt:
        a1 = await rt.open("/aud/search/?q=a")
        a2 = await rt.open("/aud/search/?q=a")
        b = await rt.open("/aud/search/?q=b")
        assert live_pages(rt) == 2
        dark = await sync_to_async(_client_with_session)(theme="dark")
        themed = await rt.open("/aud/session/", client=dark)
        plain = await rt.open("/aud/session/")
        assert live_pages(rt) == 4  # the session was read: one audience per session
        await create("avocado")
        await create("banana")
        await equal_to_a_reload(a1, a2, b, themed, plain)
        assert "avocado" in a1.text("#list") and "avocado" not in b.text("#list")


async def test_pages_that_cannot_be_shared_keep_their_own():
    async with RTClient() as rt:
        for url in ("/aud/header/", "/aud/unshared/", "/aud/counter/"):
            await rt.open(url)
            await rt.open(url)
        # request.headers as a whole, a view that says so, the view's own state.
        assert live_pages(rt) == 6


async def test_view_state_stays_per_connection():
    async with RTClient() as rt:
        one = await rt.open("/aud/counter/")
        two = await rt.open("/aud/counter/")
        await one.click("#bump")
        await one.click("#bump")
        assert (one.text("#bump"), two.text("#bump")) == ("2", "0")


async def test_loop_counters_and_cycles_stay_right_for_every_page(users):
    await create("b")
    await create("d")
    async with RTClient() as rt:
        pages = [await rt.open("/aud/cycle/", user=user) for user in users.values()]
        pages.append(await rt.open("/aud/cycle/"))
        assert live_pages(rt) == 1
        await create("a")  # every row moves down: its number and class change
        await create("c")
        await equal_to_a_reload(*pages)
        assert pages[0].texts("#list li") == ["1. a", "2. b", "3. c", "4. d"]
        classes = [li.attrs["class"] for li in pages[2].select("#list li")]
        assert classes == ["odd", "even", "odd", "even"]


async def test_a_resync_leaves_the_audience_and_the_others_go_on():
    await create("alpha")
    async with RTClient() as rt:
        one = await rt.open("/aud/list/")
        two = await rt.open("/aud/list/")
        assert live_pages(rt) == 1
        consumer = next(c for c in rt.hub.clients if c.page is not None)
        await rt.call(_resync(consumer))
        await one.settle()
        assert live_pages(rt) == 2
        await create("beta")
        await equal_to_a_reload(one, two)


def _client_with_session(**data) -> Client:
    client = Client()
    session = client.session
    session.update(data)
    session.save()
    client.cookies["sessionid"] = session.session_key
    return client


async def _resync(consumer) -> None:
    consumer.want_resync(None)
    while consumer.resyncing is not None:
        await consumer.resyncing


def _request(headers=None, **attributes):
    request = RequestFactory().get("/aud/list/", headers=headers or {})
    for name, value in attributes.items():
        setattr(request, name, value)
    audience.watch(request)
    return request


def test_what_a_middleware_set_on_the_request_makes_an_audience():
    def key(flavour):
        request = _request(flavour=flavour)
        with audience.recording(request):
            assert request.flavour == flavour  # a template shows {{ request.flavour }}
        return audience.audience_key(request, "view")

    assert key("mint") == key("mint")
    assert key("mint") != key("lemon")


def test_what_is_read_outside_a_render_does_not_count():
    request = _request(headers={"x-theme": "dark"}, flavour="mint")
    assert request.flavour == "mint"  # an event handler reads it
    assert request.META["HTTP_X_THEME"] == "dark"
    assert audience.reads(request) == frozenset()
    with audience.recording(request):
        assert request.META["HTTP_X_THEME"] == "dark"
        assert request.headers["x-theme"] == "dark"
    assert audience.reads(request) == {"meta:HTTP_X_THEME", audience.ALL_META}
    assert audience.audience_key(request, "view") is None  # all headers: never shared


async def test_a_page_joins_its_audience_without_rendering(users, monkeypatch):
    from django_rt.live.page import LivePage

    await create("alpha")
    renders = []
    original = LivePage.render

    def counted(self, *args, **kwargs):
        renders.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LivePage, "render", counted)
    async with RTClient() as rt:
        first = await rt.open("/aud/greeting/", user=users["ann"])
        assert len(renders) == 1
        # Same user: the view read nothing the open page did not; it is adopted as is.
        more = [await rt.open("/aud/greeting/", user=users["ann"]) for _ in range(3)]
        assert len(renders) == 1 and live_pages(rt) == 1
        bob = await rt.open("/aud/greeting/", user=users["bob"])  # another user: renders
        assert len(renders) == 2 and live_pages(rt) == 2
        await create("beta")
        await equal_to_a_reload(first, *more, bob)
        assert bob.text("#hello") == "Hello bob"
        assert all(page.text("#hello") == "Hello ann" for page in more)


async def test_a_page_whose_update_is_under_way_is_not_adopted(monkeypatch):
    await create("alpha")
    async with RTClient() as rt:
        first = await rt.open("/aud/list/")
        hub = rt.hub
        (page,) = hub.members
        hub._hold([page])  # as while the hub computes its update
        try:
            second = await rt.open("/aud/list/")
        finally:
            hub._unhold([page])
        assert live_pages(rt) == 2  # it rendered and kept its own
        await create("beta")
        await equal_to_a_reload(first, second)


async def test_a_page_that_joins_its_audience_late_gets_what_changed_since_its_load():
    from django.test import Client

    from django_rt.testing.client import RTPage

    await create("alpha")
    async with RTClient() as rt:
        first = await rt.open("/aud/list/")
        second = await rt.open("/aud/list/")  # adopts the audience's page as it is
        assert live_pages(rt) == 1 and second.ops["morph"] == 0
        # Loaded now, joined after a change: the audience's page is newer than its HTML.
        late = RTPage(rt, Client(), "/aud/list/")
        late._loaded(await late._get())
        await create("beta")
        await equal_to_a_reload(first, second)
        await rt.call(late._join())
        assert late.ops["morph"] == 1 and "beta" in late.text("#list")
        assert late.shown == await late.fresh()
        # Loaded after the change: its HTML is the audience's, nothing to send.
        last = await rt.open("/aud/list/")
        assert last.ops["morph"] == 0 and "beta" in last.text("#list")
        assert live_pages(rt) == 1
