"""Views and URLs of the live-form and bound-value tests (mounted under ``/forms/``)."""

from __future__ import annotations

from django import forms
from django.contrib.messages.views import SuccessMessageMixin
from django.urls import path, reverse_lazy

from django_rt import RTCreateView, RTFormView, RTUpdateView, RTView

from .models import Entry

app_name = "forms"


class EntryForm(forms.ModelForm):
    class Meta:
        model = Entry
        fields = ["name", "position", "done"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        taken = Entry.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("An entry named %(name)s exists.", params={"name": name})
        return name

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("done") and not cleaned.get("position"):
            raise forms.ValidationError("A finished entry needs a position.")
        return cleaned


class EntryCreateView(RTCreateView):
    model = Entry
    form_class = EntryForm
    template_name = "testapp/forms/entry_form.html"
    success_url = reverse_lazy("forms:entries")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["total"] = Entry.objects.count()
        return context


class EveryKeyEntryCreateView(EntryCreateView):
    """Validates on every keystroke: validations travel while the user types on."""

    validate_debounce = None


class ClosedEntryCreateView(EntryCreateView):
    """Shows its form, and takes no POST."""

    http_method_names = ["get", "head", "options"]


class EntryUpdateView(RTUpdateView):
    model = Entry
    form_class = EntryForm
    template_name = "testapp/forms/entry_form.html"
    success_url = reverse_lazy("forms:entries")


class AddAnotherView(EntryCreateView):
    """Shows its page again after a save, with an empty form."""

    def form_valid(self, form):
        self.object = form.save()
        return self.render_to_response(self.get_context_data(form=self.get_form_class()()))


class ContactForm(forms.Form):
    email = forms.EmailField()
    message = forms.CharField(widget=forms.Textarea, min_length=5)
    topic = forms.ChoiceField(choices=[("help", "Help"), ("praise", "Praise")])
    copy = forms.BooleanField(required=False)


class ContactView(SuccessMessageMixin, RTFormView):
    form_class = ContactForm
    template_name = "testapp/forms/contact.html"
    success_url = "/forms/thanks/"
    success_message = "Thanks, %(email)s"
    form_selector = "#contact"
    validate_debounce = 100


class UploadForm(forms.Form):
    title = forms.CharField(min_length=3)
    attachment = forms.FileField()


class UploadView(RTFormView):
    """A form with a file: validated live, posted as Django posts it."""

    form_class = UploadForm
    template_name = "testapp/forms/upload.html"
    success_url = "/forms/entries/"


class EntryListView(RTView):
    template_name = "testapp/forms/entries.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("name")
        return context


class SearchView(RTView):
    """A search box that filters a queryset: no handler at all."""

    template_name = "testapp/forms/search.html"
    query = RTView.bind("#search", debounce=150)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.filter(name__icontains=self.query).order_by("name")
        return context


class LiveSearchView(SearchView):
    """The same, with the box outside any region (its value attribute is not rendered)."""

    template_name = "testapp/forms/search_live.html"


class PagedView(RTView):
    """A bound number, from a select, that picks a slice of the rows."""

    template_name = "testapp/forms/paged.html"
    page: int = RTView.bind("#page", event="change", default=1)
    per_page = 2

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        start = (self.page - 1) * self.per_page
        context["entries"] = Entry.objects.order_by("name")[start : start + self.per_page]
        context["pages"] = [1, 2, 3]
        return context


urlpatterns = [
    path("entries/", EntryListView.as_view(), name="entries"),
    path("entries/new/", EntryCreateView.as_view(), name="new"),
    path("entries/new/every-key/", EveryKeyEntryCreateView.as_view()),
    path("entries/new/again/", AddAnotherView.as_view()),
    path("entries/new/closed/", ClosedEntryCreateView.as_view()),
    path("entries/<int:pk>/edit/", EntryUpdateView.as_view(), name="edit"),
    path("contact/", ContactView.as_view()),
    path("upload/", UploadView.as_view()),
    path("search/", SearchView.as_view()),
    path("search/live/", LiveSearchView.as_view()),
    path("paged/", PagedView.as_view()),
]
