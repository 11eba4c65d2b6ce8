"""Access checks are shared by the connections whose verdict is the same: one session's
tabs of one page (or visitors without a session) run one check per
``ACCESS_CHECK_SECONDS`` between them, and a refusal still reaches each of them."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import override_settings

from django_rt import consumer as consumer_module
from django_rt.consumer import Verdict, shared_verdict
from django_rt.testing import RTClient

from .testapp.audience import ListView
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


async def known_by_all(sockets) -> bool:
    """On the application's loop: whether each socket may show its page without waiting
    (what its next patch asks)."""
    return all(socket._access_known() for socket in sockets)


async def test_one_check_for_the_connections_that_share_a_verdict():
    runs = []

    async def check():
        runs.append(1)
        await asyncio.sleep(0.01)
        return Verdict(time.monotonic() + 5)

    verdicts = await asyncio.gather(*(shared_verdict(("k", 1), check) for _ in range(20)))
    assert len(runs) == 1 and len({id(v) for v in verdicts}) == 1
    await shared_verdict(("k", 2), check)  # another session, another page: its own
    assert len(runs) == 2


async def test_a_check_that_failed_is_not_shared():
    runs = []

    async def check():
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("database down")
        return Verdict(time.monotonic() + 5)

    with pytest.raises(RuntimeError):
        await shared_verdict(("failing",), check)
    assert isinstance(await shared_verdict(("failing",), check), Verdict)
    assert len(runs) == 2


async def test_tabs_of_one_session_run_one_view_for_their_access_check(monkeypatch):
    await sync_to_async(Entry.objects.create)(name="alpha")
    user = await sync_to_async(User.objects.create_user)("ann", password="pw")
    runs = []
    original = ListView.get_context_data

    def counted(self, **kwargs):
        runs.append(self.request.user.pk)
        return original(self, **kwargs)

    monkeypatch.setattr(ListView, "get_context_data", counted)
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 0.2}):
        async with RTClient(user=user) as rt:
            first = await rt.open("/aud/list/")
            pages = [first] + [await rt.open("/aud/list/", client=first.client) for _ in range(4)]
            await asyncio.sleep(0.3)  # every verdict ran out
            before = len(runs)
            await sync_to_async(Entry.objects.create)(name="beta")
            for page in pages:
                await page.settle()
                assert "beta" in page.text("#list")
            # Five tabs, one check: the view ran once for all of them.
            assert len(runs) - before == 1


async def test_a_verdict_about_to_run_out_is_checked_again_before_a_patch_waits(monkeypatch):
    await sync_to_async(Entry.objects.create)(name="alpha")
    runs = []
    original = ListView.get_context_data

    def counted(self, **kwargs):
        runs.append(1)
        return original(self, **kwargs)

    monkeypatch.setattr(ListView, "get_context_data", counted)
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 1.0}):
        async with RTClient() as rt:
            pages = [await rt.open("/aud/list/") for _ in range(3)]
            sockets = list(rt.hub.clients)
            assert len(sockets) == 3
            assert all(socket.access_until > time.monotonic() for socket in sockets)
            before = len(runs)
            # Late in the verdict: the patch leaves at once, and one check starts for all.
            for socket in sockets:
                socket.access_until = time.monotonic() + 0.1
            await sync_to_async(Entry.objects.create)(name="beta")
            for page in pages:
                await page.settle()
                assert "beta" in page.text("#list")
            await rt.call(shared_verdict(sockets[0]._access_key(), sockets[0]._verdict))
            assert len(runs) - before == 1
            # The next patch of each takes the fresh verdict, with no check of its own.
            assert await rt.call(known_by_all(sockets))
            assert all(socket.access_until > time.monotonic() + 0.5 for socket in sockets)
            assert len(runs) - before == 1


async def two_sockets(rt):
    """Two pages of one browser on one shared page: their connections."""
    for _ in range(2):
        await rt.open("/aud/list/")
    first, second = list(rt.hub.clients)
    return first, second


async def test_a_connection_whose_verdict_ran_out_takes_a_fresh_shared_one():
    await sync_to_async(Entry.objects.create)(name="alpha")
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 5.0}):
        async with RTClient() as rt:
            first, second = await two_sockets(rt)
            assert await rt.call(first._check_access())  # a fresh verdict for their key
            second.access_until = 0.0  # this one's ran out
            assert await rt.call(known_by_all([second]))  # taken from the other's check
            assert not second.tasks
            assert second.access_until > time.monotonic() + 4


async def test_while_one_check_runs_the_other_connections_wait_for_none():
    await sync_to_async(Entry.objects.create)(name="alpha")
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 5.0}):
        async with RTClient() as rt:
            first, second = await two_sockets(rt)
            for socket in (first, second):
                socket.access_until = time.monotonic() + 0.5  # late in its verdict

            async def late_patches() -> int:
                started = []
                original = consumer_module.start_verdict

                def counted(*args, **kwargs):
                    future = original(*args, **kwargs)
                    if not future.done():
                        started.append(future)
                    return future

                consumer_module.start_verdict = counted
                try:
                    assert first._access_known() and second._access_known()
                finally:
                    consumer_module.start_verdict = original
                await asyncio.gather(*started)
                return len(set(started))

            # One check for both, and no task of either connection.
            assert await rt.call(late_patches()) == 1
            assert not first.tasks and not second.tasks
            assert await rt.call(known_by_all([first, second]))
            assert all(s.access_until > time.monotonic() + 4 for s in (first, second))


async def test_a_verdict_checked_ahead_is_granted_as_it_comes():
    await sync_to_async(Entry.objects.create)(name="alpha")
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 1.0}):
        async with RTClient() as rt:
            pages = [await rt.open("/aud/list/") for _ in range(3)]
            sockets = list(rt.hub.clients)
            for socket in sockets:
                socket.access_until = time.monotonic() + 0.2  # late in its verdict
            # Late in the verdict a patch no longer goes the short way...
            assert not any(socket.writable_until > time.monotonic() for socket in sockets)
            await sync_to_async(Entry.objects.create)(name="beta")
            for page in pages:
                await page.settle()
                assert "beta" in page.text("#list")
            renewals = {socket.renewal for socket in sockets} - {None}
            assert len(renewals) <= 1  # one check for the three

            async def answered() -> None:
                await asyncio.gather(*renewals)
                await asyncio.sleep(0)

            await rt.call(answered())
            # ...and once the check ahead answered, it does again, with no patch between.
            now = time.monotonic()
            assert all(socket.access_until > now + 0.5 for socket in sockets)
            assert all(socket.writable_until > now for socket in sockets)
            assert all(socket.renewal is None for socket in sockets)


async def test_a_refusal_checked_ahead_is_not_granted():
    await sync_to_async(Entry.objects.create)(name="alpha")
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 5.0}):
        async with RTClient() as rt:
            await rt.open("/aud/list/")
            (socket,) = rt.hub.clients
            until = socket.access_until = time.monotonic() + 0.5

            async def refused() -> Verdict:
                return Verdict(time.monotonic() + 5, refused="the page's user changed")

            async def late_patch() -> None:
                original = socket._verdict
                socket._verdict = refused
                try:
                    assert socket._access_known()  # the current verdict still holds
                finally:
                    socket._verdict = original
                await asyncio.gather(socket.renewal)
                await asyncio.sleep(0)

            await rt.call(late_patch())
            # Not granted: it takes effect when the current verdict runs out.
            assert socket.access_until == until
            assert socket.renewal is None


async def test_a_connection_that_leaves_drops_its_check_ahead():
    await sync_to_async(Entry.objects.create)(name="alpha")
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 5.0}):
        async with RTClient() as rt:
            first, second = await two_sockets(rt)
            for socket in (first, second):
                socket.access_until = time.monotonic() + 0.5

            async def leave() -> asyncio.Future[Verdict]:
                assert first._access_known() and second._access_known()
                renewal = first.renewal
                assert renewal is not None and renewal is second.renewal
                first.release()
                assert first.renewal is None
                await asyncio.gather(renewal)
                await asyncio.sleep(0)
                return renewal

            await rt.call(leave())
            assert first.access_until < time.monotonic() + 1  # not granted after it left
            assert second.access_until > time.monotonic() + 4
