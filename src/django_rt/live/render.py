"""Tracked rendering of Django templates: the HTML with region markers, and the regions."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

from django.db.models import Manager, Model, QuerySet
from django.http import HttpRequest
from django.template import Context, RequestContext
from django.template import Template as BaseTemplate
from django.template.backends.django import Template as BackendTemplate
from django.template.loader import get_template

from ..protocol import Marker
from .analysis import analyse_template
from .diff import comparable
from .proxies import VIEW, Dependency, ProxyRegistry, RTObjectProxy, wrap, wrap_deep
from .recorder import (
    Region,
    Session,
    end_marker,
    evaluate_fresh,
    finish,
    reads_of,
    render_items,
    render_region,
    start_marker,
)

try:  # Django 6: "page.html#card" loads a template partial
    from django.template.base import PartialTemplate
except ImportError:  # pragma: no cover  (Django 5.2)
    PartialTemplate = None  # type: ignore[assignment,misc]

VIEW_KEY = "view"


def wrap_context(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The context with model instances and querysets (also inside lists, tuples and
    dicts) behind tracking proxies, and the view behind a proxy that records its reads."""
    wrapped = {}
    for key, value in (values or {}).items():
        if key == VIEW_KEY and value is not None and not isinstance(value, RTObjectProxy):
            wrapped[key] = RTObjectProxy(value, VIEW)
        else:
            wrapped[key] = wrap_deep(value)
    return wrapped


class RTContext(RequestContext):
    """A ``RequestContext`` whose model instances, querysets and view are tracked.

    Values given to the constructor, :meth:`push` and :meth:`update` are wrapped in
    :class:`~django_rt.RTModelProxy` and queryset proxies, which pass for what they wrap.
    What context processors add is left as it is.
    """

    def __init__(
        self,
        request: HttpRequest,
        dict_: Mapping[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(request, wrap_context(dict_), *args, **kwargs)

    def push(self, *args: Any, **kwargs: Any) -> Any:
        return super().push(
            *(wrap_context(a) if isinstance(a, Mapping) else a for a in args),
            **wrap_context(kwargs),
        )

    def update(self, other_dict: Any) -> Any:
        return super().update(wrap_context(other_dict))


@dataclass
class LiveRender:
    """The result of :func:`render_template`."""

    #: The page, with ``<!--rt:ID-->…<!--/rt:ID-->`` around its live regions.
    html: str
    #: The live regions by id (nested regions included).
    regions: dict[str, Region]
    #: What the page read outside any region: a change to these re-renders the page.
    page_dependencies: frozenset[Dependency]
    #: The instance proxies created, by dependency (to swap in fresher rows).
    registry: ProxyRegistry = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return stable_hash(self.html)


def stable_hash(html: str) -> str:
    """A hash of a render that two renders of the same data share."""
    return hashlib.blake2b(comparable(html).encode(), digest_size=12).hexdigest()


def live_context_keys(
    context: Mapping[str, Any] | None, dependencies: Iterable[Dependency]
) -> frozenset[str]:
    """The names of the context whose reads make regions of their own: when the view
    read the database to compute its context, every value it put there that no proxy
    tracks (a count, a dict built from rows) may change when the view runs again."""
    if not context or not any(dependencies):
        return frozenset()
    return frozenset(
        key
        for key, value in context.items()
        if key != VIEW_KEY and not isinstance(value, Model | QuerySet | Manager)
    )


def base_template(template: Any) -> BaseTemplate:
    if isinstance(template, str):
        template = get_template(template)
    if isinstance(template, BackendTemplate):
        template = template.template
    if PartialTemplate is not None and isinstance(template, PartialTemplate):
        # What Django renders for "page.html#card": a Template lookalike (its nodelist,
        # engine and render()), analysed as part of the template that defines it.
        return cast(BaseTemplate, template)
    if not isinstance(template, BaseTemplate):
        raise TypeError(
            f"django-rt tracks Django templates only, not {type(template).__name__}; "
            "render other engines' templates as usual (they stay static)."
        )
    return template


def render_template(
    template: Any,
    context: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
    *,
    evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None,
    registry: ProxyRegistry | None = None,
    context_keys: frozenset[str] = frozenset(),
    csrf_token: str | None = None,
) -> LiveRender:
    """Render a Django template with tracking.

    ``template`` is a template name, a template from ``get_template()`` or a
    ``django.template.Template``. Returns the HTML with comment markers around the live
    regions and the regions themselves. With the markers removed, the HTML is exactly
    what Django renders for the same template and context (with ``csrf_token`` for the
    request's CSRF token, when given).
    """
    base = base_template(template)
    analyse_template(base.nodelist)
    session = Session(registry=registry)
    session.context_keys = context_keys
    if evaluate is not None:
        session.evaluate = evaluate
    options = {"autoescape": base.engine.autoescape}
    with session.active():
        pushed: AbstractContextManager[Any] = nullcontext()
        if request is None:
            tracked: Context = Context(wrap_context(context), **options)
        else:
            tracked = RTContext(request, autoescape=base.engine.autoescape)
            values = dict(context or {})
            if csrf_token is not None:
                values["csrf_token"] = csrf_token
            # Pushed for the render alone: a pushed dict refers back to its context, a
            # cycle that would leave the render's objects to the garbage collector.
            pushed = tracked.push(values)
        with pushed:
            html = finish(session, base.render(tracked))
    return LiveRender(
        html=html,
        regions=session.regions,
        page_dependencies=reads_of(session.root.deps),
        registry=session.registry,
    )


def rerender(
    region: Region,
    request: HttpRequest | None,
    registry: ProxyRegistry,
    evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None,
    context_keys: frozenset[str] = frozenset(),
) -> tuple[Region | None, dict[str, Region]]:
    """Render one region again, alone, with the context it had.

    Returns the new region (``None`` if its output no longer makes a region: it read
    nothing tracked, or stopped being balanced HTML) and the regions nested in it.
    """
    session = Session(root_id=region.id, registry=registry, evaluate=evaluate or evaluate_fresh)
    session.context_keys = context_keys
    context = _context_of(region, request)
    with session.active(), context.render_context.push_state(region.template):  # type: ignore[arg-type]
        new = render_region(session, region.node, context, session.root)
    return new, session.regions


def render_new_items(
    region: Region,
    keys: list[str],
    rows: Mapping[str, Any],
    request: HttpRequest | None,
    registry: ProxyRegistry,
    evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None,
    again: set[str] | frozenset[str] = frozenset(),
    context_keys: frozenset[str] = frozenset(),
) -> tuple[Region, dict[str, Region]]:
    """A keyed list region with the rows keyed ``keys`` (their item keys, in page
    order): the items it already has are kept as they are, only the new ones and those
    keyed in ``again`` are rendered, from ``rows`` (by key; it has at least those). For
    lists whose items do not depend on their position (see ``analysis.POSITIONAL``)."""
    session = Session(root_id=region.id, registry=registry, evaluate=evaluate or evaluate_fresh)
    session.context_keys = context_keys
    context = _context_of(region, request)
    fresh = [
        (index, rows[key])
        for index, key in enumerate(keys)
        if key not in region.items or key in again
    ]
    with session.active(), context.render_context.push_state(region.template), context.push():  # type: ignore[arg-type]
        wrapped = [wrap(row) for _, row in fresh]
        positions = [index for index, _ in fresh]
        new_items = render_items(
            session, region.node, context, session.root, wrapped, positions, len(keys)
        )
    items = {key: new_items[key] if key in new_items else region.items[key] for key in keys}
    html = "".join(
        start_marker(f"{region.id}{Marker.ITEM}{key}")
        + items[key]
        + end_marker(f"{region.id}{Marker.ITEM}{key}")
        for key in keys
    )
    new = dataclasses.replace(
        region,
        keys=keys,
        items=items,
        html=html,
        deps=reads_of(region.deps | session.root.deps),
        items_read_more=region.items_read_more or session.root.items_read_more,
    )
    return new, session.regions


def _context_of(region: Region, request: HttpRequest | None) -> Context:
    context = Context(region.context, **region.options)
    context.template = region.template
    if request is not None:
        context.request = request  # type: ignore[attr-defined]
    return context
