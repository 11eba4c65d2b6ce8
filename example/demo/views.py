from __future__ import annotations

from django.views.generic import TemplateView

from django_rt import EventTarget, RTResponse, RTView

from .models import Entry


class IndexView(TemplateView):
    template_name = "demo/index.html"


class ExampleView(RTView):
    """The first example of the original README."""

    template_name = "demo/example.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = ["a", "b", "c"]
        return context

    @RTView.event("click", "#mybutton")
    def mybutton_click(self, request, gathered="#myinput"):
        return RTResponse("#result", "Result: " + gathered)


class ModelExampleView(RTView):
    """The second example: entries from the database, live in every open browser.

    The handlers only change the database; every page that shows an entry (this one,
    in any number of browsers) follows by itself, as it does for changes made in the
    admin or anywhere else.
    """

    template_name = "demo/entries.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("name")
        return context

    @RTView.event("submit", "#add-entry")
    def add(self, request, form: dict[str, str] = "#add-entry"):
        name = form.get("name", "").strip()[:20]
        if not name:
            return RTResponse("#add-error", "A name, please.", action="text")
        Entry.objects.create(name=name)
        return [
            RTResponse("#add-error", "", action="text"),
            RTResponse("#add-entry input[name=name]", "", action="value"),
        ]

    @RTView.event("click", "#entries button.delete")
    def delete(self, request, target: EventTarget = None):
        Entry.objects.filter(pk=target.data.get("pk")).delete()

    @RTView.event("change", "#entries input.rename")
    def rename(self, request, target: EventTarget = None):
        entry = Entry.objects.filter(pk=target.data.get("pk")).first()
        name = str(target.value or "").strip()[:20]
        if entry is not None and name:
            entry.name = name
            entry.save()


class EventsView(RTView):
    """What events can do: state on the view, typed values, key filters, debounce."""

    template_name = "demo/events.html"
    clicks = 0

    @RTView.event("click", "#increment")
    def increment(self, request, step: int = "#step"):
        self.clicks += step
        return RTResponse("#clicks", str(self.clicks), action="text")

    @RTView.event("input", "#search", debounce=250)
    def search(self, request, query: str = "#search"):
        matches = Entry.objects.filter(name__icontains=query).order_by("name")[:10] if query else []
        return RTResponse.render(
            "#matches", "demo/_matches.html", {"matches": matches, "query": query}
        )

    @RTView.event("keydown.enter", "#shout")
    def shout(self, request, text: str = "#shout"):
        return [
            RTResponse("#shouted", text.upper() + "!", action="text"),
            RTResponse("#shout", "", action="value"),
        ]

    @RTView.event("change", "#agree")
    def agree(self, request, agreed: bool = "#agree"):
        action = "add_class" if agreed else "remove_class"
        return [
            RTResponse("#agreement", "agreed", action=action),
            RTResponse("#agreement", "Thank you." if agreed else "Not yet.", action="text"),
        ]

    @RTView.event("click", ".colour")
    def colour(self, request, target: EventTarget = None):
        colour = target.data.get("colour", "")
        return RTResponse(
            "#swatch", {"style": f"background: {colour}", "title": colour}, action="attr"
        )

    @RTView.event("click", "#celebrate")
    def celebrate(self, request):
        return RTResponse.dispatch("demo:celebrate", {"clicks": self.clicks})
