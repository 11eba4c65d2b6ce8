"""The pages of the live-truth corpus (tests/test_live_truth.py): values that a view
picks or computes with queries, annotations, relations that move, values in places
where no marker can go, per-user prefetches and a soft-delete manager."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count, Max, Prefetch, Q, Sum

from django_rt import RTView

from .models import Author, Entry, Item, Note


class PickedView(RTView):
    """Rows chosen by a query and numbers computed from the table."""

    template_name = "testapp/truth/picked.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        entries = Entry.objects.all()
        context.update(
            newest=entries.latest("pk") if entries.exists() else None,
            first=entries.order_by("position", "pk").first(),
            featured=entries.filter(done=True).order_by("pk").first(),
            total=entries.count(),
            stats=entries.aggregate(top=Max("position"), sum=Sum("position")),
            any_done=entries.filter(done=True).exists(),
            names={name: position for name, position in entries.values_list("name", "position")},
        )
        return context


class AnnotatedView(RTView):
    """Counts over another table, an order by them, and values derived from them."""

    template_name = "testapp/truth/annotated.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["authors"] = Author.objects.annotate(
            n=Count("entry"), finished=Count("entry", filter=Q(entry__done=True))
        ).order_by("-n", "name")
        context["most"] = 10
        return context


class RelationsView(RTView):
    """Foreign keys that are re-pointed, many-to-many rows added and removed, and a
    model method that queries."""

    template_name = "testapp/truth/relations.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("name", "pk")
        context["authors"] = Author.objects.order_by("name")
        return context


class RawTextView(RTView):
    """Values only in places where no comment marker can go."""

    template_name = "testapp/truth/rawtext.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("pk")
        return context


class NotesView(LoginRequiredMixin, RTView):
    """Each user sees only their own notes, through a per-user ``Prefetch``."""

    template_name = "testapp/truth/notes.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        mine = Note.objects.filter(user=self.request.user).order_by("pk")
        context["entries"] = Entry.objects.order_by("pk").prefetch_related(
            Prefetch("notes", queryset=mine, to_attr="my_notes")
        )
        return context


class ItemsView(RTView):
    """A default manager that hides soft-deleted rows."""

    template_name = "testapp/truth/items.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["items"] = Item.objects.order_by("name")
        return context


class FragileView(RTView):
    """A page whose template raises for some data."""

    template_name = "testapp/truth/fragile.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("pk")
        return context


class BroadcastView(RTView):
    """A page that joins its user's broadcast group."""

    template_name = "testapp/example.html"

    def get_rt_groups(self) -> list[str]:
        user = self.request.user
        return [f"user-{user.pk}"] if user.is_authenticated else []


class BroadcastChildView(BroadcastView):
    pass


class MisnamedGroupsView(BroadcastView):
    """A page whose groups are one string, not a list of names."""

    def get_rt_groups(self) -> list[str]:
        return "everyone"  # type: ignore[return-value]
