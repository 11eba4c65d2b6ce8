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

from django_rt.consumer import Verdict, shared_verdict
from django_rt.testing import RTClient

from .testapp.audience import ListView
from .testapp.models import Entry

pytestmark = [pytest.mark.django_db(transaction=True)]


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
            await asyncio.sleep(0.05)
            assert len(runs) - before == 1
            assert all(socket.access_until > time.monotonic() + 0.5 for socket in sockets)


async def test_a_connection_whose_verdict_ran_out_takes_a_fresh_shared_one():
    await sync_to_async(Entry.objects.create)(name="alpha")
    with override_settings(DJANGO_RT={"ACCESS_CHECK_SECONDS": 5.0}):
        async with RTClient() as rt:
            for _ in range(2):
                await rt.open("/aud/list/")
            first, second = list(rt.hub.clients)
            assert await first._check_access()  # a fresh verdict for their key
            second.access_until = 0.0  # this one's ran out
            tasks = len(asyncio.all_tasks())
            assert second._access_known()  # taken from the other's check, no task
            assert len(asyncio.all_tasks()) == tasks
            assert second.access_until > time.monotonic() + 4
