"""Views of the audience tests (mounted under ``/aud/``): pages that may, or must not,
share one live state."""

from __future__ import annotations

from django.urls import path

from django_rt import RTView

from .models import Entry, Note


class ListView(RTView):
    """The same for everyone: a list of every entry."""

    template_name = "testapp/audience/list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("name")
        return context


class LateUserView(ListView):
    """Reads the user only for an entry named "mine", which does not exist at first."""

    template_name = "testapp/audience/late_user.html"


class GreetingView(ListView):
    template_name = "testapp/audience/greeting.html"


class CountView(RTView):
    """A value computed from the user's own rows (equal for two users at first)."""

    template_name = "testapp/audience/count.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["notes"] = Note.objects.filter(user=self.request.user).count()
        context["entries"] = Entry.objects.order_by("name")
        return context


class FormView(ListView):
    template_name = "testapp/audience/form.html"


class SearchView(RTView):
    template_name = "testapp/audience/list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.filter(
            name__startswith=self.request.GET.get("q", "")
        ).order_by("name")
        return context


class SessionView(ListView):
    template_name = "testapp/audience/theme.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["theme"] = self.request.session.get("theme", "light")
        return context


class HeaderView(ListView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["agent"] = self.request.headers.get("User-Agent", "")
        return context


class FlavourView(ListView):
    """Shows what a middleware set on the request (``request.flavour``)."""

    template_name = "testapp/audience/flavour.html"


class CycleView(ListView):
    template_name = "testapp/audience/cycle.html"


class UnsharedView(ListView):
    rt_shared = False


class CounterView(ListView):
    template_name = "testapp/audience/counter.html"
    counter = 0

    @RTView.event("click", "#bump")
    def bump(self, request):
        self.counter += 1


urlpatterns = [
    path("list/", ListView.as_view()),
    path("late/", LateUserView.as_view()),
    path("greeting/", GreetingView.as_view()),
    path("count/", CountView.as_view()),
    path("form/", FormView.as_view()),
    path("search/", SearchView.as_view()),
    path("session/", SessionView.as_view()),
    path("header/", HeaderView.as_view()),
    path("flavour/", FlavourView.as_view()),
    path("cycle/", CycleView.as_view()),
    path("unshared/", UnsharedView.as_view()),
    path("counter/", CounterView.as_view()),
]


class RowFormsView(ListView):
    """A form with ``{% csrf_token %}`` in every row; its POST answers 200."""

    template_name = "testapp/audience/row_forms.html"

    def post(self, request, *args, **kwargs):
        return self.get(request, *args, **kwargs)


urlpatterns.append(path("rowforms/", RowFormsView.as_view()))
