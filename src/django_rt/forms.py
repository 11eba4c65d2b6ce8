"""Live forms: a ``FormView``, ``CreateView`` or ``UpdateView`` that validates as the
user types and submits over the page's socket, with no code beyond the form.

:class:`RTFormMixin` goes in front of one of Django's form views
(``class EntryCreate(RTFormMixin, CreateView)``; :class:`RTFormView`,
:class:`RTCreateView` and :class:`RTUpdateView` are those three, ready made). On the
page's form (``form_selector``: by default the form that posts to the page itself):

- ``input`` (debounced) and ``focusout`` on a field validate the form with the values of
  the page, and the form renders again with the errors of the fields the user has been
  in. The form shown keeps the values its markup had when the page loaded, so the
  client keeps what the user typed (its rule for a field whose markup did not change),
  and a keystroke made while a validation travels is never overwritten;
- ``submit`` runs the view's own ``dispatch()`` and ``post()`` (its access checks,
  ``form_valid()``, ``form_invalid()``, the object's save) with the form's values: a
  redirect navigates the browser, an invalid form shows every error. A model the view
  saves updates every page that shows it.

Without JavaScript the same view answers the POST and redirects, as Django does. A page
rendered in answer to a POST is not live (its socket would replay a GET, which shows
another form).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ImproperlyConfigured, PermissionDenied
from django.forms import BaseForm, FileField
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.template.response import TemplateResponse
from django.utils.datastructures import MultiValueDict
from django.views.generic import CreateView, FormView, TemplateView, UpdateView
from django.views.generic.edit import FormMixin

from . import events
from .events import EventTarget
from .live import reads
from .live.proxies import Dependency
from .responses import RTResponse
from .views import RTView

#: The form that posts to its own page (no ``action``, or an empty one).
FORM_SELECTOR = 'form[method="post" i]:not([action]), form[method="post" i][action=""]'
#: The fields of a form that validate as the user types; file inputs never travel over
#: the socket.
FIELDS = "input:not([type=file i]), select, textarea"
#: The context key whose form the page shows: a region of its own in every render, so
#: that errors are a region patch.
FORM_KEY = "form"
FORM_STATE: Dependency = ("c", FORM_KEY)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MESSAGES = "django.contrib.messages.middleware.MessageMiddleware"

FormData = dict[str, str | list[str]]


def _handlers(
    form_selector: str | None, debounce: int | None
) -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    """The two handlers of a live form, bound to the fields and the submit of the forms
    ``form_selector`` matches (``None``: no live form)."""
    if form_selector is None:
        return None, None
    fields = f":is({form_selector}) :is({FIELDS})"
    # A form with file inputs posts as Django posts it: files cannot travel in a frame.
    submittable = f":is({form_selector}):not([enctype='multipart/form-data' i])"

    @events.event("input", fields, debounce=debounce)
    @events.event("focusout", fields)
    def rt_form_input(
        self: RTFormMixin,
        request: HttpRequest,
        data: FormData = form_selector,  # type: ignore[assignment]
        target: EventTarget | None = None,
    ) -> None:
        self.rt_validate(data, {target.name} if target and target.name else set())

    @events.event("submit", submittable)
    def rt_form_submit(
        self: RTFormMixin,
        request: HttpRequest,
        data: FormData = form_selector,  # type: ignore[assignment]
    ) -> RTResponse | None:
        return self.rt_submit(data)

    return rt_form_input, rt_form_submit


def post_request(request: HttpRequest, data: FormData) -> HttpRequest:
    """A POST of ``data`` to the page, for the view's own ``post()``: the page's request
    (its user, session, headers) with the form's values as ``request.POST``."""
    post = copy.copy(request)
    post.method = "POST"
    post.META = {**request.META, "REQUEST_METHOD": "POST"}
    values = QueryDict(mutable=True)
    for name, value in data.items():
        values.setlist(name, [str(v) for v in value] if isinstance(value, list) else [str(value)])
    values._mutable = False
    post.POST = values  # type: ignore[assignment]
    post._files = MultiValueDict()  # type: ignore[attr-defined]
    return post


def visible_errors(form: BaseForm, touched: frozenset[str] | None) -> ErrorDict:
    """The errors of a bound form that the page shows: those of the fields whose HTML
    names are in ``touched`` (every field's, and the form's own, when ``None``), never
    a file field's (files are not sent over the socket)."""
    errors = copy.copy(form.errors)
    for name in list(errors):
        if name == NON_FIELD_ERRORS:
            shown = touched is None
        elif isinstance(form.fields.get(name), FileField):
            shown = False
        else:
            shown = touched is None or _touched(form[name].html_name, touched)
        if not shown:
            del errors[name]
    return errors


def _touched(html_name: str, touched: frozenset[str]) -> bool:
    # A MultiWidget's inputs are named name_0, name_1, ...
    return html_name in touched or any(t.startswith(html_name + "_") for t in touched)


class RTFormMixin(RTView):
    """Makes a Django form view live: put it first, ``class V(RTFormMixin, CreateView)``.

    ``form_selector`` picks the page's form (default: the form that posts to the page
    itself; ``None`` turns the live form off); ``validate_debounce`` is how long
    typing pauses, in milliseconds, before the form is validated.
    """

    form_selector: ClassVar[str | None] = FORM_SELECTOR
    validate_debounce: ClassVar[int | None] = 300

    #: The form the live page shows (``None``: the one ``get_form()`` gives).
    rt_form: BaseForm | None = None
    #: The HTML names of the fields the user has been in: their errors are shown.
    rt_touched: frozenset[str] = frozenset()
    #: A submit was refused: from then on every error shows, the form's own too.
    rt_submitted: bool = False
    #: The page's GET fetched the view's object (an ``UpdateView``'s row).
    rt_refetch: bool = False

    rt_form_input, rt_form_submit = _handlers(FORM_SELECTOR, 300)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        own = vars(cls)
        if "form_selector" in own or "validate_debounce" in own:
            validate, submit = _handlers(cls.form_selector, cls.validate_debounce)
            if "rt_form_input" not in own:
                cls.rt_form_input = validate
            if "rt_form_submit" not in own:
                cls.rt_form_submit = submit
        super().__init_subclass__(**kwargs)

    # the page ------------------------------------------------------------------------

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.rt_lock = threading.RLock()

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not isinstance(self, FormMixin):
            raise ImproperlyConfigured(
                f"{type(self).__name__} uses RTFormMixin without a form view: put it before "
                "FormView, CreateView or UpdateView (class MyView(RTFormMixin, CreateView))."
            )
        # The form view's own GET (CreateView clears self.object, UpdateView fetches it),
        # not TemplateView's; what it read is what the page's context depends on.
        with reads.collect() as tables:
            response = super(TemplateView, self).get(request, *args, **kwargs)  # type: ignore[misc]
        self.rt_context_tables = frozenset(tables)
        # An UpdateView's row, which the context shows: fetched again with the context.
        self.rt_refetch = getattr(self, "object", None) is not None and hasattr(self, "get_object")
        return response  # type: ignore[no-any-return]

    def rt_get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # As the form view's GET: no URL keyword arguments in the context.
        with self.rt_lock, reads.collect() as tables:
            if self.rt_refetch:
                # As a reload would: the row as it is now, not as the join found it.
                self.object = self.get_object()  # type: ignore[attr-defined]
            context = super().rt_get_context_data()
        self.rt_context_tables = frozenset(tables)
        self.rt_context_reads = tables
        return context

    def rt_context_dependencies(self) -> frozenset[Dependency]:
        return super().rt_context_dependencies() | {FORM_STATE}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        if self.rt_form is not None:
            kwargs.setdefault(FORM_KEY, self.rt_form)
        return super().get_context_data(**kwargs)

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        if self.rt_connected or self.request.method in ("GET", "HEAD"):
            return super().render_to_response(context, **response_kwargs)
        # In answer to a POST (without JavaScript): a page of its own, not live.
        return super(RTView, self).render_to_response(context, **response_kwargs)

    # live validation and submit ------------------------------------------------------

    def rt_validate(self, data: FormData, touched: set[str]) -> None:
        """Validate ``data`` (the form's values in the page) and show the errors of the
        fields the user has been in (``touched``, with those of earlier events)."""
        self.rt_touched = self.rt_touched | touched
        with self._posting(data, keep_object=False):
            form = self.get_form()  # type: ignore[attr-defined]
            form.is_valid()
        shown = None if self.rt_submitted else self.rt_touched
        self.rt_form = self.rt_shown_form(visible_errors(form, shown))
        self.rt_rerun()

    def rt_submit(self, data: FormData) -> RTResponse | None:
        """Post ``data`` to the view, as the browser would have: through its own
        ``dispatch()`` (its access checks, its allowed methods) and ``post()``."""
        with self._posting(data, keep_object=True) as request:
            response = self.dispatch(request, *self.args, **self.kwargs)
        _keep_messages(request, response)
        if response.status_code in _REDIRECTS:
            return RTResponse.redirect(response["Location"])
        if isinstance(response, TemplateResponse) and not response.is_rendered:
            form = (response.context_data or {}).get(FORM_KEY)
            if isinstance(form, BaseForm) and form.is_bound and form.errors:
                self.rt_submitted = True
                self.rt_form = self.rt_shown_form(visible_errors(form, None))
                self.rt_rerun()
                return None
            # Valid, and the view shows its page again, with the form it chose (an empty
            # one, say): the fields go back to what that form renders.
            self.rt_form = form if isinstance(form, BaseForm) else None
            self.rt_touched, self.rt_submitted = frozenset(), False
            self.rt_rerun()
            return RTResponse(self.form_selector, action="reset")
        if response.status_code >= 400:  # 403, 405: the view refuses the POST
            raise PermissionDenied(f"the view answered {response.status_code} to the form")
        # Something a page cannot show in place (a file, JSON): the browser loads the page.
        return RTResponse.redirect(self.request.get_full_path())

    def rt_shown_form(self, errors: ErrorDict) -> BaseForm:
        """The form the page shows with ``errors``: unbound, so that its fields keep the
        values the page was rendered with and the browser keeps what the user typed."""
        form: BaseForm = self.get_form()  # type: ignore[attr-defined]
        form._errors = errors  # type: ignore[attr-defined]
        return form

    @contextmanager
    def _posting(self, data: FormData, keep_object: bool) -> Iterator[HttpRequest]:
        """The view as it is during a POST of ``data``. Validation works on a copy of the
        object (a model form writes the values into its instance); a submit leaves the
        object as ``post()`` made it."""
        # Another thread may compute the page's context meanwhile (the hub, after a
        # change): it waits, and never sees the view as it is during the POST.
        with self.rt_lock:
            request, missing = self.request, object()
            obj = getattr(self, "object", missing)
            self.request = post_request(request, data)
            if _keeps_messages() and hasattr(request, "session"):
                from django.contrib.messages.storage.session import SessionStorage

                self.request._messages = SessionStorage(self.request)  # type: ignore[attr-defined]
            if obj is not missing and obj is not None:
                self.object = copy.copy(obj)
            try:
                yield self.request
            finally:
                self.request = request
                if not keep_object and obj is not missing:
                    self.object = obj


def _keeps_messages() -> bool:
    return _MESSAGES in settings.MIDDLEWARE


def _keep_messages(request: HttpRequest, response: HttpResponseBase) -> None:
    """Store the messages the view added (``SuccessMessageMixin``) in the session, for
    the page the browser goes to next, as ``MessageMiddleware`` would have."""
    storage = getattr(request, "_messages", None)
    session = getattr(request, "session", None)
    if storage is None or session is None or not session.session_key:
        return
    storage.update(response)
    if session.modified:
        session.save()


class RTFormView(RTFormMixin, FormView):  # type: ignore[type-arg]
    """A live ``FormView``."""


class RTCreateView(RTFormMixin, CreateView):  # type: ignore[type-arg]
    """A live ``CreateView``."""


class RTUpdateView(RTFormMixin, UpdateView):  # type: ignore[type-arg]
    """A live ``UpdateView``."""
