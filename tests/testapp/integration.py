"""Views, middleware and URLs of the integration tests (mounted under ``/int/``): the
socket's request through the project's middleware, and function views."""

from __future__ import annotations

import asyncio
import datetime
import zoneinfo

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache

from django_rt import RTResponse, RTView, live_view

from .models import Entry

MOMENT = datetime.datetime(2024, 1, 5, 12, 0, tzinfo=datetime.UTC)

#: What the response-only middleware saw, in order (its responses are discarded).
RESPONSES: list[int] = []


# middleware ---------------------------------------------------------------------------


def flavour_middleware(get_response):
    """Sets an attribute that the template and the handlers read (``request.htmx``-style)."""

    def middleware(request):
        request.flavour = request.headers.get("X-Flavour", "vanilla")
        return get_response(request)

    return middleware


class ToppingMiddleware:
    """An async-only middleware."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        await asyncio.sleep(0)
        request.topping = request.headers.get("X-Topping", "none")
        return await self.get_response(request)


def timezone_middleware(get_response):
    """Activates the time zone that the ``tz`` cookie names (Django's documented way)."""

    def middleware(request):
        name = request.COOKIES.get("tz")
        if name:
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        return get_response(request)

    return middleware


def urlconf_middleware(get_response):
    """Serves the URLs of this module at the root for requests that ask (a tenant's)."""

    def middleware(request):
        if request.headers.get("X-Urlconf") == "integration":
            request.urlconf = "tests.testapp.integration"
        return get_response(request)

    return middleware


def refusing_middleware(get_response):
    """Answers instead of the view when ``X-Refuse`` says so."""

    def middleware(request):
        refuse = request.headers.get("X-Refuse")
        if refuse == "forbidden":
            return HttpResponseForbidden("no")
        if refuse == "redirect":
            return HttpResponseRedirect("/elsewhere/")
        return get_response(request)

    return middleware


def recording_middleware(get_response):
    """Response-only: records the status of every response it sees."""

    def middleware(request):
        response = get_response(request)
        RESPONSES.append(response.status_code)
        response["X-Recorded"] = "yes"
        return response

    return middleware


# views --------------------------------------------------------------------------------


class Page(RTView):
    template_name = "testapp/integration/page.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["moment"] = MOMENT
        context["entries"] = Entry.objects.order_by("pk")
        context["notes"] = [str(message) for message in messages.get_messages(self.request)]
        return context

    @RTView.event("click", "#describe")
    def describe(self, request):
        return RTResponse(
            "#out",
            " ".join(
                [
                    translation.get_language(),
                    timezone.get_current_timezone_name(),
                    getattr(request, "flavour", "-"),
                    getattr(request, "topping", "-"),
                    translation.gettext("yes,no,maybe"),
                ]
            ),
            action="text",
        )

    @RTView.event("click", "#describe-async")
    async def describe_async(self, request):
        await asyncio.sleep(0)
        return RTResponse(
            "#out",
            f"{translation.get_language()} {timezone.get_current_timezone_name()}",
            action="text",
        )

    @RTView.event("click", "#whoami")
    def whoami(self, request):
        same = request.session is self.request.session
        return RTResponse(
            "#out",
            f"{request.user.get_username() or 'anonymous'} {same} {request.session.session_key}",
            action="text",
        )


class UncachedPage(Page):
    @classmethod
    def as_view(cls, **initkwargs):
        return never_cache(super().as_view(**initkwargs))


class FormsPage(RTView):
    template_name = "testapp/integration/forms.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entries"] = Entry.objects.order_by("pk")
        return context


def post(request):
    return HttpResponse("posted")


def flash(request):
    messages.info(request, request.GET.get("text", "hello"))
    return HttpResponse("stored")


@live_view
def function_page(request):
    entries = Entry.objects.order_by("pk")
    return TemplateResponse(
        request,
        "testapp/integration/function.html",
        {"title": "Function", "entries": entries, "total": entries.count()},
    )


@live_view
async def async_function_page(request):
    entries = Entry.objects.order_by("pk")
    total = await sync_to_async(entries.count)()
    return TemplateResponse(
        request,
        "testapp/integration/function.html",
        {"title": "Async", "entries": entries, "total": total},
    )


@login_required
@live_view
def private_function_page(request):
    entries = Entry.objects.filter(owner=request.user).order_by("pk")
    return TemplateResponse(
        request,
        "testapp/integration/function.html",
        {"title": "Mine", "entries": entries, "total": len(entries)},
    )


@live_view
def redirecting_function_page(request):
    if not Entry.objects.filter(name="keep").exists():
        return HttpResponseRedirect("/elsewhere/")
    return TemplateResponse(
        request,
        "testapp/integration/function.html",
        {"title": "Kept", "entries": Entry.objects.order_by("pk"), "total": 1},
    )


@live_view
def plain_function_page(request):
    return HttpResponse("<html><body>not a template</body></html>")


urlpatterns = [
    path("page/", Page.as_view(), name="int-page"),
    path("uncached/", UncachedPage.as_view()),
    path("forms/", FormsPage.as_view()),
    path("post/", post, name="int-post"),
    path("flash/", flash),
    path("function/", function_page, name="int-function"),
    path("function/async/", async_function_page),
    path("function/private/", private_function_page),
    path("function/redirecting/", redirecting_function_page),
    path("function/plain/", plain_function_page),
]
