from __future__ import annotations

import asyncio
from typing import Literal

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from django_rt import EventTarget, RTResponse, RTView

from .models import Entry, Label


class ExampleView(RTView):
    template_name = "testapp/example.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = ["a", "b", "c"]
        return context

    @RTView.event("click", "#mybutton")
    def mybutton_click(self, request, gathered="#myinput"):
        return RTResponse("#result", "Result: " + gathered)

    @RTView.event("click", "#counter")
    def count(self, request):
        self.clicks = getattr(self, "clicks", 0) + 1
        return RTResponse("#count", str(self.clicks))

    @RTView.event("keydown.enter", "#myinput")
    async def enter(self, request, text: str = "#myinput"):
        await asyncio.sleep(0)
        return RTResponse("#entered", f"Entered: {text}", action="text")

    @RTView.event("click", "#slow")
    async def slow(self, request):
        await asyncio.sleep(0.6)
        return RTResponse("#slowed", "done", action="text")

    @RTView.event("input", "#debounced", debounce=200)
    def typed(self, request, text: str = "#debounced"):
        self.typed_calls = getattr(self, "typed_calls", 0) + 1
        return RTResponse("#typed", f"{self.typed_calls}:{text}", action="text")

    @RTView.event("click", "#fail")
    def fail(self, request):
        raise RuntimeError("boom")

    @RTView.event("click", "#deny")
    def deny(self, request):
        raise PermissionDenied("not you")

    @RTView.event("click", "#bad-return")
    def bad_return(self, request):
        return 42

    @RTView.event("click", "#whoami")
    def whoami(self, request):
        return RTResponse("#who", request.user.get_username() or "anonymous", action="text")


class TypedView(RTView):
    template_name = "testapp/typed.html"

    @RTView.event("click", "#go")
    def go(
        self,
        request,
        count: int = "#count",
        ratio: float = "#ratio",
        agree: bool = "#agree",
        tags: list[str] = "#tags",
        form: dict = "#form",
        note: str | None = "#missing",
        size: Literal["s", "m", "l"] = "#size",
        target=None,
    ):
        self.received = dict(
            count=count, ratio=ratio, agree=agree, tags=tags, form=form, note=note, size=size
        )
        return RTResponse("#out", repr(sorted(self.received.items())), action="text")

    @RTView.event("click", ".row button")
    def pick(self, request, target: EventTarget = None):
        return RTResponse("#picked", f"{target.data.get('row')}:{target.id}", action="text")

    @RTView.event("submit", "#form")
    def submit(self, request, form: dict[str, str | list[str]] = "#form"):
        return RTResponse("#out", format_html("<b>{}</b>", form.get("title", "")))


class ActionsView(RTView):
    template_name = "testapp/example.html"

    @RTView.event("click", "#all")
    def all_actions(self, request):
        return [
            RTResponse("#a", "<i>x</i>"),
            RTResponse("#b", "t", action="text"),
            RTResponse("#c", {"title": "t", "hidden": None, "open": True}, action="attr"),
            RTResponse.redirect("/elsewhere/"),
            RTResponse.dispatch("done", {"n": 1}),
        ]


class InheritedView(ExampleView):
    # Overridden without a decorator: keeps the parent's binding.
    def count(self, request):
        return RTResponse("#count", "child")

    fail = None  # unbinds the parent's handler


class PrivateView(LoginRequiredMixin, ExampleView):
    pass


class StaffView(PermissionRequiredMixin, ExampleView):
    permission_required = "testapp.change_entry"


class ItemView(ExampleView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if kwargs["pk"] == 404:
            from django.http import Http404

            raise Http404("no such item")
        context["pk"] = kwargs["pk"]
        return context


class TagView(ExampleView):
    template_name = "testapp/tag.html"


class EntriesView(RTView):
    template_name = "testapp/entries.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.all()
        return context


class LiveEntriesView(RTView):
    template_name = "testapp/pages/entries.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("position", "name")
        return context


class MyEntriesView(LoginRequiredMixin, RTView):
    template_name = "testapp/pages/entries.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.filter(owner=self.request.user).order_by("name")
        return context


class CounterView(RTView):
    template_name = "testapp/pages/counter.html"
    counter = 0

    @RTView.event("click", "#bump")
    def bump(self, request):
        self.counter += 1

    @RTView.event("click", "#noop")
    def noop(self, request):
        self.unseen = True


class EntryDetailView(RTView):
    template_name = "testapp/pages/detail.html"

    def get_context_data(self, **kwargs):
        from django.shortcuts import get_object_or_404

        context = super().get_context_data(**kwargs)
        context["entry"] = get_object_or_404(Entry, pk=kwargs["pk"])
        context["others"] = Entry.objects.exclude(pk=kwargs["pk"]).order_by("name")
        return context


class EntryHeadlineView(EntryDetailView):
    """A value the view computes from the row it picked: its page cannot follow the row
    without running the view again."""

    template_name = "testapp/pages/headline.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["headline"] = context["entry"].name.upper()
        return context


class EntryTallyView(EntryDetailView):
    """A number ``get_context_data()`` counts and keeps on the view itself, which the
    template reads from the view (``{{ view.tally }}``), not from the context."""

    template_name = "testapp/pages/tally.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        self.tally = Entry.objects.count()
        return context


class LiveLabelsView(RTView):
    """Rows keyed by text, and one row's name shown as trusted HTML (``|safe``)."""

    template_name = "testapp/pages/labels.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["labels"] = Label.objects.exclude(code="note").order_by("code")
        context["note"] = Label.objects.filter(code="note").first()
        return context


class EntryNameView(RTView):
    """One row's name and nothing else: the page's view picks the row by primary key."""

    template_name = "testapp/pages/name.html"

    def get_context_data(self, **kwargs):
        from django.shortcuts import get_object_or_404

        context = super().get_context_data(**kwargs)
        context["entry"] = get_object_or_404(Entry, pk=kwargs["pk"])
        return context


class EntryShoutView(EntryNameView):
    """A view that changes the row it picked, in Python only, before the page shows it."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entry"].name = context["entry"].name.upper() + "!"
        return context


class EntryCheckedView(EntryNameView):
    """A view that reads the row it picked before it passes it on: an access check on a
    column. The row's saves run it again."""

    def get_context_data(self, **kwargs):
        from django.core.exceptions import PermissionDenied

        context = super().get_context_data(**kwargs)
        if context["entry"].name == "forbidden":
            raise PermissionDenied
        return context


class EntryKeyView(EntryNameView):
    """A row picked by primary key, of which the page shows the key alone."""

    template_name = "testapp/pages/key.html"


class Box:
    """An object of the view's own around a row: a template reads the row unseen."""

    def __init__(self, entry):
        self.entry = entry


class EntryBoxedView(EntryNameView):
    """The row it picked inside an object of its own, in the context."""

    template_name = "testapp/pages/boxed.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["box"] = Box(context.pop("entry"))
        return context


class EntryKeptView(EntryNameView):
    """The row it picked inside an object of its own, kept on the view."""

    template_name = "testapp/pages/kept.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        self.box = Box(context.pop("entry"))
        return context


class EntryCaptionView(RTView):
    """A value the view read from a row, without the row: its context does not hold it."""

    template_name = "testapp/pages/caption.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["caption"] = Entry.objects.filter(pk=kwargs["pk"]).values("name")[0]["name"]
        return context


class EntryAmongView(EntryNameView):
    """A row picked by primary key, and the list of every row, itself among them."""

    template_name = "testapp/pages/among.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("pk")
        return context
