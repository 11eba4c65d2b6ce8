"""Render-time recording: which node read what, and where its output goes.

A tracked render runs inside a :class:`Session` (a context variable, so concurrent
renders in other threads or tasks never mix). Django calls ``Node.render_annotated``
for every node; :func:`install` routes that call through :func:`render_node` when a
session is active and costs one context-variable lookup otherwise.

Each node that the analysis allowed to be a region opens a :class:`Frame`; the proxies
record their reads into the innermost frame. When the node is done, a frame that read
something and rendered balanced HTML becomes a :class:`Region`: its output is wrapped in
comment markers and the region keeps what it needs to render again alone (the node, a
snapshot of its context, its dependencies). Reads of a frame that does not become a
region belong to the enclosing frame, up to the page itself.

Region ids are paths (``3``, ``3.2``, ``4#17.1`` for the first region inside the item of
key 17 of list region 4), so that rendering the same template over the same data gives
the same ids, and a region rendered again numbers its children as before.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Model, QuerySet
from django.template import Context, Node
from django.template.base import Template
from django.template.defaulttags import ForNode

from ..protocol import Marker
from .analysis import MARKABLE, OPAQUE, REGION
from .html import is_balanced

if TYPE_CHECKING:
    from .proxies import Dependency, ProxyRegistry, RTModelProxy

LIST = "list"
NODE = "node"

_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "django_rt_session", default=None
)


def start_marker(region_id: str) -> str:
    return f"<!--{Marker.START}{region_id}-->"


def end_marker(region_id: str) -> str:
    return f"<!--{Marker.END}{region_id}-->"


MARKERS = re.compile(rf"<!--(?:{re.escape(Marker.START)}|{re.escape(Marker.END)})[^>]*?-->")


def strip_markers(html: str) -> str:
    """``html`` without django-rt's region markers: what Django alone renders."""
    return MARKERS.sub("", html)


_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def item_key(pk: Any) -> str:
    """A primary key as it stands in an item marker and in region ids.

    The UTF-8 bytes of everything outside ``[A-Za-z0-9_]`` (``%`` included) are
    percent-encoded: distinct keys stay distinct, and a key holds no ``.`` or ``#`` (the
    separators of region ids: ``4#17.1`` is region 1 in item 17 of list 4) and nothing
    that could end a comment (``-``, ``>``).
    """
    return _KEY_UNSAFE.sub(_percent_encoded, str(pk))


def _percent_encoded(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


@dataclass
class Frame:
    id: str
    deps: set[Dependency] = field(default_factory=set)
    children: int = 0

    def child_id(self) -> str:
        self.children += 1
        return f"{self.id}.{self.children}" if self.id else str(self.children)


@dataclass
class Region:
    """A part of a page that can be rendered again on its own."""

    id: str
    node: Node
    context: dict[str, Any]
    template: Template | None
    options: dict[str, Any]
    deps: frozenset[Dependency]
    html: str
    kind: str = NODE
    keys: list[str] = field(default_factory=list)  # list regions: item keys in order
    items: dict[str, str] = field(default_factory=dict)  # list regions: key -> item html
    queryset: Any = None  # list regions: the RTQuerySetProxy looped over

    def contains(self, other_id: str) -> bool:
        return within(self.id, other_id)


def within(root_id: str, other_id: str) -> bool:
    """Whether region (or item) ``other_id`` is nested in ``root_id``."""
    return other_id.startswith(root_id + ".") or other_id.startswith(root_id + Marker.ITEM)


class Session:
    """One tracked render: a page, or one region rendered again."""

    def __init__(
        self,
        root_id: str = "",
        registry: ProxyRegistry | None = None,
        evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None,
    ) -> None:
        self.frames = [Frame(root_id)]
        self.regions: dict[str, Region] = {}
        self.registry = registry if registry is not None else {}
        self.evaluate = evaluate or _evaluate_once
        self.suppressed = 0

    @property
    def root(self) -> Frame:
        return self.frames[0]

    @contextmanager
    def active(self) -> Iterator[Session]:
        token = _session.set(self)
        try:
            yield self
        finally:
            _session.reset(token)


def _evaluate_once(queryset: QuerySet[Any]) -> list[Any]:
    # The page's first render uses what the view may already have evaluated.
    return list(queryset)


def evaluate_fresh(queryset: QuerySet[Any]) -> list[Any]:
    """Run the query again, whatever the queryset has cached."""
    return list(queryset.all())


def current() -> Session | None:
    return _session.get()


def read(dependency: Dependency | None) -> None:
    session = _session.get()
    if session is not None and dependency is not None:
        session.frames[-1].deps.add(dependency)


def register(proxy: RTModelProxy) -> None:
    session = _session.get()
    if session is None:
        return
    dependency = proxy.rt_dependency
    if dependency is not None:
        session.registry.setdefault(dependency, proxy)


def evaluate(queryset: QuerySet[Any]) -> list[Any]:
    session = _session.get()
    return session.evaluate(queryset) if session is not None else list(queryset)


# rendering ---------------------------------------------------------------------------

_original_render_annotated: Callable[[Node, Context], Any] | None = None


def install() -> None:
    """Route ``Node.render_annotated`` through the recorder (once per process)."""
    global _original_render_annotated
    if _original_render_annotated is not None:
        return
    original = Node.render_annotated
    _original_render_annotated = original

    def render_annotated(self: Node, context: Context) -> Any:
        session = _session.get()
        if session is None:
            return original(self, context)
        return render_node(session, self, context)

    Node.render_annotated = render_annotated  # type: ignore[method-assign]


def _render_plain(node: Node, context: Context) -> str:
    assert _original_render_annotated is not None
    return str(_original_render_annotated(node, context))


def _render_unmarked(session: Session, node: Node, context: Context) -> str:
    """Render ``node`` with no markers anywhere inside it (its reads still count)."""
    session.suppressed += 1
    try:
        return _render_plain(node, context)
    finally:
        session.suppressed -= 1


def render_node(session: Session, node: Node, context: Context) -> str:
    if session.suppressed or not getattr(node, MARKABLE, None):
        # Not element content (or not analysed): nothing inside may carry markers.
        return _render_unmarked(session, node, context)
    if not getattr(node, REGION, False):
        # {% ifchanged %} compares what its children render: markers would differ.
        if getattr(node, OPAQUE, False):
            return _render_unmarked(session, node, context)
        return _render_plain(node, context)
    parent = session.frames[-1]
    frame = Frame(parent.child_id())
    session.frames.append(frame)
    try:
        region = render_region(session, node, context, frame)
    finally:
        session.frames.pop()
    if region is None:
        parent.deps |= frame.deps
        return frame_output(frame)
    session.regions[region.id] = region
    return start_marker(region.id) + region.html + end_marker(region.id)


def frame_output(frame: Frame) -> str:
    return frame.__dict__.pop("output")  # type: ignore[no-any-return]


def render_region(session: Session, node: Any, context: Context, frame: Frame) -> Region | None:
    """Render ``node`` into ``frame``; the region it makes, or ``None`` if it makes none
    (then the output waits in the frame for :func:`frame_output`)."""
    keyed = _keyed_sequence(node, context)
    if keyed is not None:
        output, keys, items = _render_keyed_for(session, node, context, frame, *keyed)
    elif getattr(node, OPAQUE, False):
        # {% filter upper %}, {% spaceless %}, a custom block tag: what its children render
        # is rewritten before it is shown, markers included. No markers inside.
        output, keys, items = _render_unmarked(session, node, context), [], {}
    else:
        output, keys, items = _render_plain(node, context), [], {}
    if not frame.deps or not is_balanced(output):
        frame.__dict__["output"] = output
        return None
    return Region(
        id=frame.id,
        node=node,
        context=snapshot(context),
        template=context.template,
        options={
            "autoescape": context.autoescape,
            "use_l10n": context.use_l10n,
            "use_tz": context.use_tz,
        },
        deps=frozenset(frame.deps),
        html=output,
        kind=LIST if keyed is not None else NODE,
        keys=keys,
        items=items,
        queryset=keyed[0] if keyed is not None else None,
    )


def snapshot(context: Context) -> dict[str, Any]:
    """What a node saw, to render it again later: the flattened context, with the
    ``forloop`` dicts (which the loop updates in place) copied."""
    values: dict[str, Any] = context.flatten()  # type: ignore[assignment]
    loop = values.get("forloop")
    if isinstance(loop, dict):
        values["forloop"] = _copy_loop(loop)
    return values


def _copy_loop(loop: dict[str, Any]) -> dict[str, Any]:
    copy = dict(loop)
    if isinstance(copy.get("parentloop"), dict) and copy["parentloop"]:
        copy["parentloop"] = _copy_loop(copy["parentloop"])
    return copy


# keyed lists --------------------------------------------------------------------------


def _keyed_sequence(node: Any, context: Context) -> tuple[Any, list[Any]] | None:
    """For ``{% for %}`` over a tracked queryset: the queryset and its rows, if every
    row is a model instance with a distinct primary key."""
    from .proxies import RTQuerySetProxy, unwrap

    if not isinstance(node, ForNode) or len(node.loopvars) != 1:
        return None
    with context.push():
        sequence = node.sequence.resolve(context, ignore_failures=True)  # type: ignore[union-attr]
    if not isinstance(sequence, RTQuerySetProxy):
        return None
    rows = sequence.rt_results()
    if not all(isinstance(row, Model) for row in rows):
        return None
    # Keys are read past the proxies: the list does not depend on each row's contents.
    if len({item_key(unwrap(row).pk) for row in rows}) != len(rows):
        return None
    return sequence, rows


def _render_keyed_for(
    session: Session, node: Any, context: Context, frame: Frame, sequence: Any, rows: list[Any]
) -> tuple[str, list[str], dict[str, str]]:
    """``ForNode.render``, with each iteration wrapped in item markers.

    Follows Django's own loop (the ``forloop`` variables, ``reversed``, ``{% empty %}``)
    so that, markers removed, the output is Django's byte for byte.
    """
    with context.push():
        if not rows:
            return node.nodelist_empty.render(context), [], {}
        values = list(reversed(rows)) if node.is_reversed else rows
        items = render_items(session, node, context, frame, values, range(len(values)), len(values))
    keys = list(items)
    output = "".join(
        start_marker(f"{frame.id}{Marker.ITEM}{key}")
        + items[key]
        + end_marker(f"{frame.id}{Marker.ITEM}{key}")
        for key in keys
    )
    return output, keys, items


def render_items(
    session: Session,
    node: Any,
    context: Context,
    frame: Frame,
    rows: list[Any],
    positions: Iterable[int],
    length: int,
) -> dict[str, str]:
    """Render the loop body for ``rows`` (at ``positions`` of a loop of ``length``),
    each in its item frame; their reads go to ``frame``. Key -> item HTML, in order."""
    from .proxies import unwrap

    parentloop = context.get("forloop", {})
    loop = context["forloop"] = {"parentloop": parentloop, "length": length}
    items: dict[str, str] = {}
    for index, item in zip(positions, rows, strict=True):
        loop["counter0"] = index
        loop["counter"] = index + 1
        loop["revcounter"] = length - index
        loop["revcounter0"] = length - index - 1
        loop["first"] = index == 0
        loop["last"] = index == length - 1
        context[node.loopvars[0]] = item
        key = item_key(unwrap(item).pk)
        item_frame = Frame(f"{frame.id}{Marker.ITEM}{key}")
        session.frames.append(item_frame)
        try:
            items[key] = "".join(child.render_annotated(context) for child in node.nodelist_loop)
        finally:
            session.frames.pop()
        frame.deps |= item_frame.deps
    return items
