"""Every open page equals a reload.

Each page of the corpus is opened (over HTTP, then joined over a real socket) by one or
more users; then a sequence of changes runs against the database (inserts, updates,
deletes, a foreign key re-pointed and its new target renamed, many-to-many rows added
and removed, a change that moves a row in an annotated order, per-user notes, a soft
delete). After each change, every open page, patched as the client patches it, must
show exactly what a fresh load of its URL by its user shows.

Adding a page is one entry in ``CORPUS``; adding a change is one entry in ``STEPS``.
The pages are opened with ``django_rt.testing.RTClient``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from django_rt.consumer import RTConsumer
from django_rt.protocol import Key
from django_rt.testing import RTClient, RTPage

from .testapp.models import Author, Entry, Item, Note, Tag

pytestmark = [pytest.mark.django_db(transaction=True)]

#: url -> the users who open it (None: anonymous).
CORPUS: dict[str, tuple[str | None, ...]] = {
    "/truth/picked/": (None,),
    "/truth/annotated/": (None,),
    "/truth/relations/": (None,),
    "/truth/rawtext/": (None,),
    "/truth/notes/": ("ann", "bob"),
    "/truth/items/": (None,),
    "/live/entries/": (None,),
}


def seed() -> dict[str, Any]:
    ann_user = User.objects.create_user("ann", password="pw")
    bob_user = User.objects.create_user("bob", password="pw")
    ann, bob = Author.objects.create(name="Ann"), Author.objects.create(name="Bob")
    red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")
    alpha = Entry.objects.create(name="alpha", position=3, author=ann)
    beta = Entry.objects.create(name="beta", position=1, author=ann)
    gamma = Entry.objects.create(name="gamma", position=2, author=bob)
    red.entries.add(alpha)
    Note.objects.create(entry=alpha, user=ann_user, text="ann-secret-1")
    Note.objects.create(entry=alpha, user=bob_user, text="bob-secret-1")
    Item.objects.create(name="hammer")
    Item.objects.create(name="saw")
    return locals()


def rename(data: dict[str, Any]) -> None:
    data["beta"].name = "beta renamed"
    data["beta"].save()


def insert(data: dict[str, Any]) -> None:
    data["delta"] = Entry.objects.create(name="delta", position=0, author=data["bob"])


def finish(data: dict[str, Any]) -> None:
    data["gamma"].done = True
    data["gamma"].save()


def repoint(data: dict[str, Any]) -> None:
    data["alpha"].author = data["bob"]
    data["alpha"].save()


def rename_new_target(data: dict[str, Any]) -> None:
    data["bob"].name = "Robert"
    data["bob"].save()


def tag(data: dict[str, Any]) -> None:
    data["blue"].entries.add(data["beta"], data["gamma"])


def untag(data: dict[str, Any]) -> None:
    data["red"].entries.remove(data["alpha"])


def overtake(data: dict[str, Any]) -> None:
    # Ann gets two more entries and moves before Robert in the annotated order.
    Entry.objects.create(name="epsilon", position=7, author=data["ann"])
    Entry.objects.create(name="zeta", position=8, author=data["ann"], done=True)


def notes(data: dict[str, Any]) -> None:
    Note.objects.create(entry=data["beta"], user=data["ann_user"], text="ann-secret-2")
    Note.objects.create(entry=data["beta"], user=data["bob_user"], text="bob-secret-2")


def rename_with_notes(data: dict[str, Any]) -> None:
    data["alpha"].name = "alpha renamed"
    data["alpha"].save()


def soft_delete(data: dict[str, Any]) -> None:
    hammer = Item.everything.get(name="hammer")
    hammer.deleted = True
    hammer.save()


def rename_hidden(data: dict[str, Any]) -> None:
    hammer = Item.everything.get(name="hammer")
    hammer.name = "hammer (hidden)"
    hammer.save()


def restore(data: dict[str, Any]) -> None:
    hammer = Item.everything.get(name="hammer (hidden)")
    hammer.deleted = False
    hammer.save()


def delete(data: dict[str, Any]) -> None:
    data["gamma"].delete()


def delete_first(data: dict[str, Any]) -> None:
    Entry.objects.order_by("pk").first().delete()


STEPS: list[Callable[[dict[str, Any]], None]] = [
    rename,
    insert,
    finish,
    repoint,
    rename_new_target,
    tag,
    untag,
    overtake,
    notes,
    rename_with_notes,
    soft_delete,
    rename_hidden,
    restore,
    delete,
    delete_first,
]


def login(username: str | None) -> Client:
    client = Client()
    if username is not None:
        client.login(username=username, password="pw")
    return client


async def open_corpus(rt: RTClient) -> list[RTPage]:
    pages = []
    for url, users in CORPUS.items():
        for username in users:
            client = await sync_to_async(login)(username)
            page = await rt.open(url, client=client)
            page.user = username  # type: ignore[attr-defined]
            pages.append(page)
    return pages


#: With DJANGO_RT_TRUTH_MEASURE=1 the test counts differences instead of failing on the
#: first one, and prints how the pages were updated (docs/live.md quotes it).
MEASURE = os.environ.get("DJANGO_RT_TRUTH_MEASURE") == "1"


async def assert_every_page_fresh(pages: list[RTPage], after: str, stale: Counter[str]) -> None:
    for page in pages:
        await page.settle()
        # Every patch found its regions, and the server refused nothing.
        assert not page.misses and not page.errors, f"{page.url} after {after}"
        fresh = await page.fresh()
        if MEASURE and page.shown != fresh:
            stale[page.url] += 1
            await page.reload()  # go on from the truth
            continue
        assert page.shown == fresh, f"{page.url} differs from a reload after {after}"


async def test_every_open_page_equals_a_reload_after_every_change(
    application: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reruns = Counter[str]()
    refresh = RTConsumer.refresh

    def counted_refresh(self: RTConsumer) -> Any:
        reruns["view re-runs"] += 1
        return refresh(self)

    monkeypatch.setattr(RTConsumer, "refresh", counted_refresh)
    data = await sync_to_async(seed)()
    stale = Counter[str]()
    async with RTClient(application=application) as rt:
        pages = await open_corpus(rt)
        await assert_every_page_fresh(pages, "the join", stale)
        for step in STEPS:
            await sync_to_async(step)(data)
            await assert_every_page_fresh(pages, step.__name__, stale)
    kinds = update_kinds(pages) + reruns
    print(
        f"\nupdates of {len(pages)} pages over {len(STEPS)} changes: {dict(sorted(kinds.items()))}"
    )
    if MEASURE:
        for page in pages:
            print(f"  {page.url} {page.user or ''}: {dict(sorted(page.ops.items()))}")  # type: ignore[attr-defined]
        print(f"pages that differed from a reload: {sum(stale.values())} {dict(stale)}")
    # Each user's frames carry that user's notes, never the other's.
    secrets = {"ann": "ann-secret", "bob": "bob-secret"}
    for page in pages:
        user = page.user  # type: ignore[attr-defined]
        if user in secrets:
            frames = repr([frame for frame in page.frames if frame.get(Key.TYPE) == "patch"])
            assert secrets[user] in frames
            for other, secret in secrets.items():
                if other != user:
                    assert secret not in frames


def update_kinds(pages: list[RTPage]) -> Counter[str]:
    total: Counter[str] = Counter()
    for page in pages:
        total.update(page.ops)
    return total
