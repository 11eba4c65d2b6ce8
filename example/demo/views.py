from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, login
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views import View

from django_rt import EventTarget, RTResponse, RTView

from .models import Activity, Entry, Task
from .templatetags.demo_extras import percent

User = get_user_model()

MAX_POINTS = 13
COLOURS = {"tomato", "teal", "gold"}


def members() -> QuerySet[Any]:
    """The team: the seeded demo users (not the admin)."""
    return User.objects.filter(is_active=True, is_staff=False).order_by("first_name", "username")


def task_totals() -> dict[str, int]:
    """Counts and points over every task, computed by one query."""
    return Task.objects.aggregate(
        total=Count("pk"),
        open_count=Count("pk", filter=Q(done=False)),
        done_count=Count("pk", filter=Q(done=True)),
        points_left=Coalesce(Sum("points", filter=Q(done=False)), 0),
    )


def latest_activity() -> Activity | None:
    try:
        return Activity.objects.select_related("actor").latest()
    except Activity.DoesNotExist:
        return None


class IndexView(RTView):
    """The tour: what each page shows, with the board's numbers, live."""

    template_name = "demo/index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        totals = task_totals()
        context.update(
            totals=totals,
            progress=percent(totals["done_count"], totals["total"]),
            latest=latest_activity(),
            entry_count=Entry.objects.count(),
        )
        return context


class BoardView(RTView):
    """The team to-do board.

    Every number on it comes from a query in ``get_context_data`` (counts per person,
    totals, the progress, the activity feed), and every handler only writes to the
    database: each open board, in every browser, follows by itself.
    """

    template_name = "demo/board.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        tasks = Task.objects.select_related("assignee")
        totals = task_totals()
        context.update(
            open_tasks=tasks.filter(done=False),
            done_tasks=tasks.filter(done=True).order_by("-done_at", "-pk"),
            my_tasks=tasks.filter(assignee=user.pk, done=False) if user.is_authenticated else None,
            totals=totals,
            progress=percent(totals["done_count"], totals["total"]),
            people=members().annotate(
                task_count=Count("tasks"),
                open_count=Count("tasks", filter=Q(tasks__done=False)),
                done_count=Count("tasks", filter=Q(tasks__done=True)),
            ),
            members=members(),
            activity=Activity.objects.select_related("actor")[:6],
        )
        return context

    @RTView.event("submit", "#new-task")
    def add(
        self,
        request: HttpRequest,
        title: str = "#new-title",
        assignee: str = "#new-assignee",
        points: str = "#new-points",
    ) -> list[RTResponse]:
        title = " ".join(title.split())
        if not title:
            return form_error("Give the task a title.")
        if len(title) > 80:
            return form_error("Keep the title to 80 characters.")
        size = parse_points(points)
        if size is None:
            return form_error(f"Points are a whole number from 1 to {MAX_POINTS}, not “{points}”.")
        owner = members().filter(pk=assignee).first() if assignee.isdecimal() else None
        task = Task.objects.create(title=title, assignee=owner, points=size)
        record(request, "added", task)
        return [
            RTResponse("#add-error", "", action="text"),
            RTResponse("#new-title", "", action="value"),
            RTResponse("#new-points", "1", action="value"),
            RTResponse("#new-title", "", action="focus"),
        ]

    @RTView.event("change", ".task input.check")
    def toggle(self, request: HttpRequest, target: EventTarget = None) -> None:
        done = target.data.get("mark") == "done"
        task = task_of(target)
        if task is None or task.done == done:
            return
        task.done = done
        task.done_at = timezone.now() if done else None
        task.save(update_fields=["done", "done_at"])
        record(request, "completed" if done else "reopened", task)

    @RTView.event("change", ".task input.title")
    def rename(self, request: HttpRequest, target: EventTarget = None) -> RTResponse | None:
        task = task_of(target)
        if task is None:
            return None
        title = " ".join(str(target.value or "").split())[:80]
        if not title:
            # Put the title back: a task keeps one.
            return RTResponse(f"#task-{task.pk} input.title", task.title, action="value")
        if title != task.title:
            task.title = title
            task.save(update_fields=["title"])
            record(request, "renamed", task)
        return None

    @RTView.event("change", ".task select.assignee")
    def assign(self, request: HttpRequest, target: EventTarget = None) -> None:
        task = task_of(target)
        value = str(target.value or "")
        if task is None:
            return
        owner = members().filter(pk=value).first() if value.isdecimal() else None
        if owner != task.assignee:
            task.assignee = owner
            task.save(update_fields=["assignee"])
            record(request, f"gave {owner.get_short_name()}" if owner else "unassigned", task)

    @RTView.event("click", ".task button.delete")
    def delete(self, request: HttpRequest, target: EventTarget = None) -> None:
        task = task_of(target)
        if task is not None:
            task.delete()
            record(request, "deleted", task)


def parse_points(text: str) -> int | None:
    text = text.strip() or "1"
    if not text.isdecimal() or not 1 <= int(text) <= MAX_POINTS:
        return None
    return int(text)


def form_error(message: str) -> list[RTResponse]:
    # #add-error is no live region: a handler may set its text.
    return [RTResponse("#add-error", message, action="text")]


def task_of(target: EventTarget) -> Task | None:
    pk = target.data.get("pk", "")
    return Task.objects.filter(pk=pk).first() if pk.isdecimal() else None


def record(request: HttpRequest, verb: str, task: Task) -> None:
    """A line of the activity feed."""
    user = request.user
    Activity.objects.create(
        actor_id=user.pk if user.is_authenticated else None, verb=verb, subject=task.title
    )


class PickUserView(View):
    """The demo's stand-in for a login form: become one of the seeded team members.

    Only members (non-staff users) can be picked, and they have no password; the admin
    logs in through ``/admin/`` with its password as usual.
    """

    def post(self, request: HttpRequest) -> HttpResponse:
        user = get_object_or_404(members(), username=request.POST.get("username", ""))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return HttpResponseRedirect(reverse("board"))


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
        # {{ view.clicks }} renders again after every handler: nothing to return.
        self.clicks += step

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
        if colour not in COLOURS:
            return None
        return RTResponse(
            "#swatch", {"style": f"background: {colour}", "title": colour}, action="attr"
        )

    @RTView.event("click", "#celebrate")
    def celebrate(self, request):
        return RTResponse.dispatch("demo:celebrate", {"clicks": self.clicks})
