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
import copy
import datetime
import decimal
import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Model, QuerySet
from django.template import Context, Node
from django.template.base import Template, Variable
from django.template.defaulttags import ForNode

from ..protocol import Marker
from .analysis import IN_FOREIGN, IN_TABLE_SECTION, MARKABLE, OPAQUE, REGION
from .html import Reading, neutralise, neutralise_at
from .html import read as read_html

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
    if type(pk) is int and pk >= 0:
        return str(pk)  # digits alone: nothing to encode (most keys)
    return _KEY_UNSAFE.sub(_percent_encoded, str(pk))


def _percent_encoded(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


@dataclass
class Frame:
    id: str
    deps: set[Dependency] = field(default_factory=set)
    #: Rows (their ``("i", model, pk)``) whose content the frame read through plain
    #: fields: the value of each field it read, by attribute name ...
    values: dict[Dependency, dict[str, Any]] = field(default_factory=dict)
    #: The querysets it counted (``|length``, ``{% if entries %}``) and the number of
    #: rows each had ...
    counts: list[tuple[QuerySet[Any], int]] = field(default_factory=list)
    #: ... and the rows and tables it read otherwise too (``str()``, a method, a
    #: property, a related row, a field read twice with two values; rows of a table, a
    #: query's own statement): everything in them counts.
    whole: set[Dependency] = field(default_factory=set)
    children: int = 0
    #: A list's frame: one of its items read more than its own row (another row, a
    #: query), so the deps of an item that leaves cannot be told from the others'.
    items_read_more: bool = False

    def child_id(self) -> str:
        self.children += 1
        return f"{self.id}.{self.children}" if self.id else str(self.children)

    def absorb(
        self,
        deps: Iterable[Dependency],
        values: Mapping[Dependency, Mapping[str, Any]],
        whole: Iterable[Dependency],
        counts: Iterable[tuple[QuerySet[Any], int]] = (),
    ) -> None:
        """Take in the reads of a frame (or a region) nested in this one."""
        self.deps.update(deps)
        self.whole.update(whole)
        self.counts.extend(counts)
        for dependency, seen in values.items():
            mine = self.values.setdefault(dependency, {})
            for name, value in seen.items():
                if name in mine and not same_value(mine[name], value):
                    self.whole.add(dependency)
                else:
                    mine[name] = value

    def absorb_frame(self, other: Frame) -> None:
        self.absorb(other.deps, other.values, other.whole, other.counts)

    def absorb_region(self, region: Region) -> None:
        values: dict[Dependency, dict[str, Any]] = {}
        for dependency, name, value in region.values:
            values.setdefault(dependency, {})[name] = value
        whole = [
            dep
            for dep in region.deps
            if (dep[0] == "i" and dep not in values) or (dep[0] == "t" and not region.counts)
        ]
        self.absorb(region.deps, values, whole, region.counts)

    def counted_alone(self) -> list[tuple[QuerySet[Any], int]]:
        """The counts, when every table the frame read was read to count a queryset's
        rows and nothing else: what it shows of those tables is the counts."""
        if any(dep[0] == "t" for dep in self.whole):
            return []
        return self.counts


#: The types of field values a region may keep as it showed them: no one can change
#: such a value in place after the render (a list or a dict from a JSON field could be,
#: and would then seem to hold what the page never showed).
KEPT_VALUE_TYPES = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        decimal.Decimal,
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
    }
)


def same_value(one: Any, other: Any) -> bool:
    """Whether two values of a field render alike: of one type, and equal."""
    if type(one) is not type(other):
        return False
    try:
        return bool(one == other)
    except Exception:  # a value that cannot be compared: it may differ
        return False


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
    hashes: dict[str, int] = field(default_factory=dict)  # list regions: key -> row hash
    #: List regions: an item read more than its own row (see ``Frame.items_read_more``);
    #: while none did, a row that leaves the list takes its dependency with it.
    items_read_more: bool = True
    #: Other regions: for each row whose content they read through plain fields alone,
    #: each field's value as they showed it, ``(row, name, value)`` (see
    #: ``Frame.values``; flat, since a page keeps many). A change that leaves those
    #: values as they were leaves the region's output as it is.
    values: Sequence[tuple[Dependency, str, Any]] = ()
    #: Other regions, whose every read of a table counted a queryset's rows: each of
    #: those querysets and the number of rows it had. A change that leaves the numbers
    #: as they were leaves the region's output as it is.
    counts: Sequence[tuple[QuerySet[Any], int]] = ()

    def contains(self, other_id: str) -> bool:
        return within(self.id, other_id)


def within(root_id: str, other_id: str) -> bool:
    """Whether region (or item) ``other_id`` is nested in ``root_id``."""
    return other_id.startswith((root_id + ".", root_id + Marker.ITEM))


def enclosing(region_id: str) -> Iterator[str]:
    """Every id that region (or item) ``region_id`` is nested in, if a region (or item)
    has it, innermost first: its beginnings cut before a ``.`` or an item marker. A
    page's regions that hold a region are found from its id, not by looking at them
    all."""
    at = len(region_id)
    while (at := max(region_id.rfind(".", 0, at), region_id.rfind(Marker.ITEM, 0, at))) > 0:
        yield region_id[:at]


_SERIALS = itertools.count(1)


class Session:
    """One tracked render: a page, or one region rendered again."""

    def __init__(
        self,
        root_id: str = "",
        registry: ProxyRegistry | None = None,
        evaluate: Callable[[QuerySet[Any]], list[Any]] | None = None,
    ) -> None:
        #: Names this render without holding it: what caches a result for one
        #: render (a queryset proxy's rows) keeps the number, not the session, whose
        #: regions hold that proxy in their context.
        self.serial = next(_SERIALS)
        self.frames = [Frame(root_id)]
        self.regions: dict[str, Region] = {}
        self.registry = registry if registry is not None else {}
        self.evaluate = evaluate or _evaluate_once
        self.suppressed = 0
        #: The rows that came out of a query in this render (not through a related
        #: object's cache): a change to one is seen by re-running that query.
        self.query_rows: set[Dependency] = set()
        #: The names of the view's context: a node that reads one of them depends on
        #: it (``("c", name)``), so that a value the view computed is a region of its
        #: own, which a run of the view again updates without touching the rest.
        self.context_keys: frozenset[str] = frozenset()
        #: Ids of the regions made so far, in order: whose markers went into the output.
        self.written: list[str] = []
        #: Those whose output holds text of its own outside any element.
        self.loose_text: set[str] = set()
        # Set once the page's (or the region's) own render began: a template rendered
        # with a fresh context after that is a separate render (see install()).
        self.started = False

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


def current_serial() -> int:
    """The :attr:`Session.serial` of the render under way; 0 outside any."""
    session = _session.get()
    return 0 if session is None else session.serial


def read(dependency: Dependency | None) -> None:
    session = _session.get()
    if session is not None and dependency is not None:
        frame = session.frames[-1]
        frame.deps.add(dependency)
        if dependency[0] == "i" or dependency[0] == "t":
            frame.whole.add(dependency)


@contextmanager
def apart() -> Iterator[Frame]:
    """A frame of its own for what is read meanwhile, which the current frame does not
    take in: the caller records it as it sees fit."""
    session = _session.get()
    frame = Frame("")
    if session is None:
        yield frame
        return
    session.frames.append(frame)
    try:
        yield frame
    finally:
        session.frames.pop()


def read_count(queryset: QuerySet[Any], count: int, dependencies: Iterable[Dependency]) -> None:
    """A count of ``queryset``'s rows (a query whose rows hold their own table's
    columns alone: one row per key), reading the tables of ``dependencies``."""
    session = _session.get()
    if session is not None:
        frame = session.frames[-1]
        frame.deps.update(dependencies)
        frame.counts.append((queryset, count))


def read_value(dependency: Dependency | None, name: str, value: Any) -> None:
    """A read of a row's plain field ``name``, which showed ``value`` (a value of a
    type not in :data:`KEPT_VALUE_TYPES` counts as a read of the whole row)."""
    session = _session.get()
    if session is not None and dependency is not None:
        frame = session.frames[-1]
        frame.deps.add(dependency)
        seen = frame.values.setdefault(dependency, {})
        changeable = type(value) not in KEPT_VALUE_TYPES
        if changeable or (name in seen and not same_value(seen[name], value)):
            frame.whole.add(dependency)
        else:
            seen[name] = value


def register(proxy: RTModelProxy) -> None:
    session = _session.get()
    if session is None:
        return
    dependency = proxy.rt_dependency
    if dependency is not None:
        session.registry.setdefault(dependency, proxy)


def evaluate(queryset: QuerySet[Any]) -> list[Any]:
    """The rows of ``queryset`` for the current render. Rows fresh from a query replace
    the copies that the page's proxies hold of the same rows."""
    session = _session.get()
    if session is None:
        return list(queryset)
    rows = session.evaluate(queryset)
    for row in rows:
        if isinstance(row, Model) and row.pk is not None:
            dependency = ("i", row._meta.concrete_model._meta.label_lower, str(row.pk))  # type: ignore[union-attr]
            session.query_rows.add(dependency)
            proxy = session.registry.get(dependency)
            if proxy is not None:
                proxy.rt_swap(row)
    return rows


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

    resolve = Variable.resolve

    def resolve_variable(self: Variable, context: Any) -> Any:
        session = _session.get()
        if session is not None and self.lookups and self.lookups[0] in session.context_keys:
            session.frames[-1].deps.add(("c", self.lookups[0]))
        return resolve(self, context)

    Variable.resolve = resolve_variable  # type: ignore[method-assign]

    for template_class in _template_classes():
        template_class.render = _separate_renders_unmarked(template_class.render)


def _template_classes() -> list[Any]:
    from django.template import base

    # PartialTemplate ("page.html#card", {% partial %}): Django 6 and later.
    return [cls for cls in (base.Template, getattr(base, "PartialTemplate", None)) if cls]


def _separate_renders_unmarked(original: Callable[[Any, Context], Any]) -> Any:
    """A template rendered with a context of its own within a tracked render (a tag
    or a method that calls ``render_to_string()``) gives a string that its caller may
    filter, measure or escape: no markers in it. Its reads count for the node that
    asked for it. Includes and inclusion tags share the page's context and keep theirs."""

    def render(self: Any, context: Context) -> Any:
        session = _session.get()
        if session is None:
            return original(self, context)
        if context.template is None and session.started:
            session.suppressed += 1
            try:
                return original(self, context)
            finally:
                session.suppressed -= 1
        session.started = True
        return original(self, context)

    return render


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
        # Not element content (or not analysed): nothing inside may carry markers. None of
        # it is ours either: marker-like comments are neutralised (once, outermost).
        output = _render_unmarked(session, node, context)
        return output if session.suppressed else neutralise(output)
    if not getattr(node, REGION, False):
        # {% ifchanged %} compares what its children render: markers would differ.
        if getattr(node, OPAQUE, False):
            return neutralise(_render_unmarked(session, node, context))
        return _render_own(session, node, context)
    parent = session.frames[-1]
    frame = Frame(parent.child_id())
    session.frames.append(frame)
    try:
        region = render_region(session, node, context, frame)
    finally:
        session.frames.pop()
    if region is None:
        parent.absorb_frame(frame)
        return frame_output(frame)
    session.regions[region.id] = region
    session.written.append(region.id)
    return start_marker(region.id) + region.html + end_marker(region.id)


def frame_output(frame: Frame) -> str:
    return frame.__dict__.pop("output")  # type: ignore[no-any-return]


def _render_own(session: Session, node: Node, context: Context) -> str:
    """Render ``node`` as Django does. If no marker of ours went into its output, none of
    it is ours: marker-like comments are neutralised (otherwise each part already was,
    node by node, as it was rendered)."""
    written = len(session.written)
    output = _render_plain(node, context)
    return neutralise(output) if len(session.written) == written else output


# markers as the browser reads them ------------------------------------------------------


def settle(
    session: Session, frame: Frame, output: str, keys: list[str], since: int
) -> tuple[str, Reading, bool]:
    """Check the markers in ``frame``'s output as a browser will read it.

    The analysis placed markers by the template's text; what nodes rendered may still
    swallow one into a tag (``a <b`` from a ``|safe`` value), put one right after a
    ``<pre>`` whose first newline it would keep, or split a character reference. Every
    marker of a region made in this frame (since ``session.written[since]``), and of
    the frame's own list items (``keys``), must be read as a comment that changes
    nothing around it, exactly once: a region whose markers are not is dropped (its
    reads go to ``frame``: coarser, never wrong), with the regions around it in the
    frame. Marker-like comments the engine did not write here are neutralised, copies of
    real markers included. What a region holds was checked when it was made: the
    reading goes past it.

    Returns the output, what :func:`~django_rt.live.html.read` found in it, and whether
    the frame's own items keep their markers.
    """
    made = [rid for rid in session.written[since:] if rid in session.regions]
    regions = session.regions
    reading = read_html(output, {rid: regions[rid].html for rid in made}, session.loose_text)
    if not made and not keys and not reading.markers:
        return output, reading, True
    own = frame.id + Marker.ITEM  # the owner of the frame's own items: never a region id
    listed = True
    while True:
        skipped = reading.skipped
        owners: dict[str, str] = {}  # marker text -> the region that stands or falls with it
        for rid in made:
            if skipped and _within_any(rid, skipped):
                continue  # read past, with the region around it
            region = session.regions[rid]
            for name in (rid, *(f"{rid}{Marker.ITEM}{key}" for key in region.keys)):
                owners[Marker.START + name] = owners[Marker.END + name] = rid
        for key in keys:
            owners[Marker.START + own + key] = owners[Marker.END + own + key] = own
        seen: set[str] = set()
        wrong: set[str] = set()
        forged: list[int] = []
        for comment in reading.markers:
            owner = owners.get(comment.data) if comment.exact else None
            if owner is None or (owner in skipped and not comment.read_past):
                forged.append(comment.start)  # not ours, or a copy of one read past
            elif not comment.placed or comment.data in seen:
                wrong.add(owner)
            seen.add(comment.data)
        for data, owner in owners.items():
            if data not in seen and owner not in skipped:  # (a list read past: its items)
                wrong.add(owner)
        for rid in list(wrong):  # and the regions (and items) around them in this frame
            for at, char in enumerate(rid):
                if char in ".#" and (owner := owners.get(Marker.START + rid[:at])) is not None:
                    wrong.add(owner)
        if not wrong and not forged:
            return output, reading, listed
        # A keyed list's output is its items: the HTML kept for each would still hold them.
        listed = listed and not (forged and keys) and own not in wrong
        output = neutralise_at(output, forged)
        for data, owner in owners.items():
            if owner in wrong:
                output = output.replace(f"<!--{data}-->", "")
        for rid in wrong - {own}:
            frame.absorb_region(session.regions.pop(rid))
        made = [rid for rid in made if rid not in wrong]
        keys = [] if own in wrong else keys
        # Taking out a marker that a tag or a comment swallowed moves where that one ends.
        reading = read_html(output, {rid: regions[rid].html for rid in made}, session.loose_text)


def _within_any(region_id: str, regions: frozenset[str]) -> bool:
    """Whether ``region_id`` is nested in one of ``regions``."""
    return any(outer in regions for outer in enclosing(region_id))


def _without_items(output: str, list_id: str, keys: list[str]) -> str:
    for key in keys:
        item = f"{list_id}{Marker.ITEM}{key}"
        output = output.replace(start_marker(item), "").replace(end_marker(item), "")
    return output


def finish(session: Session, html: str) -> str:
    """A page's HTML once rendered, its markers checked as the browser reads the whole
    page (see :func:`settle`); the reads of regions dropped go to the page."""
    return settle(session, session.root, html, [], 0)[0]


def items_fit(node: Node, items: Iterable[str], nested: Mapping[str, Region]) -> bool:
    """Whether list items rendered alone (new rows) can go into the page as they are:
    each balanced, with its own markers read as placed, no text of its own where a table
    would move it out, no markup in SVG. ``nested``: the regions made inside them (checked
    then)."""
    checked = {rid: region.html for rid, region in nested.items()}
    for html in items:
        reading = read_html(html, checked)
        if not reading.balanced:
            return False
        seen: set[str] = set()
        for comment in reading.markers:
            # Only the markers of the regions made in it, read past once each.
            if not (comment.read_past and comment.placed) or comment.data in seen:
                return False
            seen.add(comment.data)
        if reading.loose_text and getattr(node, IN_TABLE_SECTION, False):
            return False
        if getattr(node, IN_FOREIGN, False) and "<" in html:
            return False
    return True


def render_region(session: Session, node: Any, context: Context, frame: Frame) -> Region | None:
    """Render ``node`` into ``frame``; the region it makes, or ``None`` if it makes none
    (then the output waits in the frame for :func:`frame_output`)."""
    since = len(session.written)
    session.started = True
    sequence = _loop_sequence(node, context)
    keyed = _keyed_sequence(sequence)
    if keyed is not None:
        output, keys, items = _render_keyed_for(session, node, context, frame, *keyed)
    elif getattr(node, OPAQUE, False):
        # {% filter upper %}, {% spaceless %}, a custom block tag: what its children render
        # is rewritten before it is shown, markers included. No markers inside.
        output, keys, items = neutralise(_render_unmarked(session, node, context)), [], {}
    else:
        output, keys, items = _render_own(session, _with_sequence(node, sequence), context), [], {}
    output, reading, listed = settle(session, frame, output, keys, since)
    if keys and not listed:
        # A row's markers would not survive as the browser reads them: a plain region.
        output, keyed, keys, items = _without_items(output, frame.id, keys), None, [], {}
    # Text of its own directly in a <tr>, <tbody>...: the browser moves it out of the table.
    # Markup in SVG: a patch, parsed as HTML, would not be SVG.
    moved = reading.loose_text and getattr(node, IN_TABLE_SECTION, False)
    moved = moved or (getattr(node, IN_FOREIGN, False) and "<" in output)
    if not frame.deps or not reading.balanced or moved:
        frame.__dict__["output"] = _without_items(output, frame.id, keys)
        return None
    if reading.loose_text:
        session.loose_text.add(frame.id)
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
        deps=reads_of(frame.deps),
        html=output,
        kind=LIST if keyed is not None else NODE,
        keys=keys,
        items=items,
        queryset=keyed[0] if keyed is not None else None,
        items_read_more=frame.items_read_more if keyed is not None else True,
        values=(
            ()
            if keyed is not None
            else tuple(
                (dep, name, value)
                for dep, seen in frame.values.items()
                if dep not in frame.whole
                for name, value in seen.items()
            )
        ),
        counts=() if keyed is not None else tuple(frame.counted_alone()),
    )


def reads_of(deps: set[Dependency] | frozenset[Dependency]) -> frozenset[Dependency]:
    """``deps`` without a row's existence (``"e"``) where the row's content (``"i"``)
    was read too: a delete reaches what reads the content as well."""
    if not any(dep[0] == "e" for dep in deps):
        return frozenset(deps)
    return frozenset(dep for dep in deps if dep[0] != "e" or ("i", *dep[1:]) not in deps)


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


_NOT_A_LOOP = object()


def _loop_sequence(node: Any, context: Context) -> Any:
    """The sequence of a ``{% for %}`` with one loop variable, resolved as
    ``ForNode.render`` resolves it (once per render, as Django does)."""
    if not isinstance(node, ForNode) or len(node.loopvars) != 1:
        return _NOT_A_LOOP
    with context.push():
        return node.sequence.resolve(context, ignore_failures=True)  # type: ignore[union-attr]


class _Resolved:
    """A ``{% for %}``'s sequence that this render has already resolved."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def resolve(self, context: Context, ignore_failures: bool = False) -> Any:
        return self.value


def _with_sequence(node: Any, sequence: Any) -> Any:
    """``node``, or for a loop a copy of it that renders over the resolved ``sequence``
    (the compiled node is shared by every render: it is not changed)."""
    if sequence is _NOT_A_LOOP:
        return node
    loop = copy.copy(node)
    loop.sequence = _Resolved(sequence)
    return loop


def _keyed_sequence(sequence: Any) -> tuple[Any, list[Any]] | None:
    """For ``{% for %}`` over a tracked queryset: the queryset and its rows, if every
    row is a model instance with a distinct primary key."""
    from .proxies import RTQuerySetProxy, unwrap

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
    from .proxies import exists_dependency, instance_dependency, unwrap

    session.started = True
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
        row = unwrap(item)
        key = item_key(row.pk)
        item_frame = Frame(f"{frame.id}{Marker.ITEM}{key}")
        session.frames.append(item_frame)
        try:
            items[key] = "".join(child.render_annotated(context) for child in node.nodelist_loop)
        finally:
            session.frames.pop()
        if not item_frame.deps <= {instance_dependency(row), exists_dependency(row)}:
            frame.items_read_more = True
        frame.absorb_frame(item_frame)
    return items
