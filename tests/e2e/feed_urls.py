"""The test project's pages, plus one that writes through the server that serves it
(tests/e2e/test_processes.py)."""

from __future__ import annotations

from typing import Any

from django.urls import include, path

from django_rt import EventTarget, RTResponse, RTView
from tests.testapp.models import Entry
from tests.testapp.views import LiveEntriesView


class WritingEntriesView(LiveEntriesView):
    """The live entries page, whose handlers write: Enter in the text field adds an
    entry of that name, a click on an entry renames it to what the field holds. Its
    pages join the group ``writers``."""

    def get_rt_groups(self) -> list[str]:
        return ["writers"]

    @RTView.event("keydown.enter", "#typing")
    def add(self, request: Any, name: str = "#typing") -> RTResponse:
        Entry.objects.create(name=name)
        return RTResponse("#typing", "", action="value")

    @RTView.event("click", "#list li")
    def rename(
        self, request: Any, name: str = "#typing", target: EventTarget | None = None
    ) -> RTResponse:
        assert target is not None and target.id
        entry = Entry.objects.get(pk=target.id.removeprefix("e"))
        entry.name = name
        entry.save()
        return RTResponse("#typing", "", action="value")


urlpatterns = [
    path("procs/entries/", WritingEntriesView.as_view()),
    path("", include("tests.testapp.urls")),
]
