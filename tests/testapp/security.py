"""Views and URLs of the connection-security tests (mounted under ``/sec/``)."""

from __future__ import annotations

import time

from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from django_rt import RTResponse, RTView

from .models import Entry

LOGIN_URL = "/sec/login/"


class EntriesPage(RTView):
    """A live page: every entry, and a few handlers."""

    template_name = "testapp/security/entries.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("name")
        delay = float(self.request.GET.get("delay", 0))
        if delay:
            time.sleep(delay)  # a slow view: the join is still running when the socket closes
        return context

    @RTView.event("click", "#ping")
    def ping(self, request):
        return RTResponse("#out", "pong", action="text")

    @RTView.event("click", "#sleep")
    def sleep(self, request, seconds: float = "#seconds"):
        time.sleep(seconds)
        return RTResponse("#out", "slept", action="text")

    @RTView.event("click", "#whoami")
    def whoami(self, request):
        self.calls = getattr(self, "calls", 0) + 1
        return RTResponse("#out", request.user.get_username() or "anonymous", action="text")


class PrivatePage(LoginRequiredMixin, EntriesPage):
    login_url = LOGIN_URL


class StaffPage(PermissionRequiredMixin, EntriesPage):
    permission_required = "testapp.change_entry"
    login_url = LOGIN_URL


class TwoRegionsPage(RTView):
    """Two top-level regions: a heading and a list."""

    template_name = "testapp/security/two.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["first"] = Entry.objects.order_by("pk").first()
        context["entries"] = Entry.objects.order_by("name")
        return context


def login_page(request):
    return HttpResponse("<!doctype html><title>Log in</title><h1 id='login'>Log in</h1>")


@csrf_exempt
def logout_view(request):
    logout(request)
    return HttpResponse("logged out")


@csrf_exempt
def change_password(request):
    request.user.set_password(request.POST.get("password", "new-password"))
    request.user.save()
    update_session_auth_hash(request, request.user)
    return HttpResponse("changed")


urlpatterns = [
    path("entries/", EntriesPage.as_view()),
    path("private/", PrivatePage.as_view()),
    path("staff/", StaffPage.as_view()),
    path("two/", TwoRegionsPage.as_view()),
    path("login/", login_page),
    path("logout/", logout_view),
    path("password/", change_password),
]
