"""Compile-time analysis: which nodes of a template may become live regions.

Run once per compiled template (Django caches compiled templates), right after
``Template.compile_nodelist()``. Each node gets two attributes:

- ``_rt_markable``: it stands in element content, so a comment marker around its output
  is valid HTML. Nodes inside a tag, an attribute value, a comment or a raw-text
  element are not, and neither is anything they render (an include in ``<title>``).
- ``_rt_region``: it may be re-rendered on its own later: markable, not a structural
  node (``{% block %}``, ``{% extends %}``), and free of nodes whose output depends on
  what was rendered before them in the same pass (``{% cycle %}``, ``{% ifchanged %}``,
  ``{{ block.super }}``).

Nodes right after a ``<pre>`` or ``<listing>`` start tag, an ``&`` or a carriage return
are not markable: a comment there would change how the browser reads the page (see
``html.State.edge``). Neither are the nodes after them, up to the next literal text: an
output may be empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from django.template import Node, NodeList
from django.template.base import TextNode, VariableNode
from django.template.defaulttags import (
    AutoEscapeControlNode,
    CommentNode,
    CycleNode,
    ForNode,
    IfChangedNode,
    IfNode,
    LoadNode,
    ResetCycleNode,
    WithNode,
)
from django.template.library import InclusionNode
from django.template.loader_tags import BlockNode, ExtendsNode, IncludeNode
from django.templatetags.i18n import LanguageNode
from django.templatetags.l10n import LocalizeNode
from django.templatetags.tz import LocalTimeNode, TimezoneNode

from .html import DATA, TABLE_SECTIONS, Mode, State, neutralise, scan

try:  # Django 6: template partials
    from django.template.defaulttags import PartialDefNode
except ImportError:  # pragma: no cover  (Django 5.2)
    PartialDefNode = None  # type: ignore[assignment,misc]

ANALYSED = "_rt_analysed"
MARKABLE = "_rt_markable"
REGION = "_rt_region"
#: Block tags that may rewrite what their children render (``{% filter %}``,
#: ``{% spaceless %}``, ``{% ifchanged %}``, custom block tags), and nodes that work on
#: ``block.super`` as a value: no markers inside them.
OPAQUE = "_rt_opaque"
#: On ``{% for %}`` nodes: an item's output may depend on its position or on its
#: neighbours (``forloop``, an include that may read it), so a row added or removed
#: means rendering every item again, not only the new ones.
POSITIONAL = "_rt_positional"
#: It stands directly in a ``<tbody>``, ``<thead>``, ``<tfoot>`` or ``<tr>``: as a region, its
#: output may hold rows, but no text of its own (the browser would move it out of the table).
IN_TABLE_SECTION = "_rt_in_table_section"
#: It stands in SVG or MathML content: as a region, its output may hold text, not markup
#: (the client parses a patch as HTML, where an SVG element would lose its namespace).
IN_FOREIGN = "_rt_in_foreign"

_STRUCTURAL = (BlockNode, ExtendsNode, CommentNode, LoadNode)
# Block tags known to show their children's output as it is.
_PASS_THROUGH: tuple[type[Node], ...] = (
    IfNode,
    ForNode,
    WithNode,
    AutoEscapeControlNode,
    BlockNode,
    ExtendsNode,
    LanguageNode,
    LocalizeNode,
    LocalTimeNode,
    TimezoneNode,
)
if PartialDefNode is not None:  # {% partialdef name inline %} shows its content as it is
    _PASS_THROUGH += (PartialDefNode,)
# A {% block %} renders from the block context of the whole template: a node that holds
# one cannot be rendered again alone.
_ORDER_DEPENDENT = (CycleNode, IfChangedNode, ResetCycleNode, BlockNode)


class MarkerLikeText(TextNode):
    """Template text that holds comments which would read as markers (``<!--rt:3-->``).

    Django renders text nodes without ``render_annotated``'s detour, so the recorder never
    sees them: this one neutralises them itself in a tracked render (see
    ``html.neutralise``), and renders as Django does otherwise.
    """

    def render_annotated(self, context: Any) -> str:
        from .recorder import current

        return self.s if current() is None else neutralise(self.s)


def analyse_template(nodelist: NodeList) -> None:
    """Annotate a template's nodes (idempotent)."""
    if getattr(nodelist, ANALYSED, False):
        return
    _analyse(nodelist, DATA)
    setattr(nodelist, ANALYSED, True)


def child_nodelists(node: Node) -> list[Any]:
    """The node's child node lists, each rendered as an alternative or a repetition."""
    if isinstance(node, IfNode):
        return [nodelist for _, nodelist in node.conditions_nodelists]
    lists = []
    for attribute in node.child_nodelists:
        nodelist = getattr(node, attribute, None)
        if isinstance(nodelist, NodeList | list):
            lists.append(nodelist)
    return lists


def _subtree(nodelist: Iterable[Node]) -> Iterable[Node]:
    for node in nodelist:
        yield node
        for child in child_nodelists(node):
            yield from _subtree(child)


def _positional(node: Any) -> bool:
    for inner in _subtree(node.nodelist_loop):
        token = getattr(inner, "token", None)
        if token is not None and "forloop" in token.contents:
            return True
        # Another template, or a tag that sees the whole context, may read forloop too.
        if isinstance(inner, IncludeNode | InclusionNode) or getattr(inner, "takes_context", False):
            return True
    return False


def _order_dependent(node: Node) -> bool:
    """Output that depends on the render around it: rendering the node again alone, or
    any node that holds it, would not give what the page shows."""
    if isinstance(node, _ORDER_DEPENDENT):
        return True
    token = getattr(node, "token", None)
    return token is not None and "block.super" in token.contents


def _uses_block_super(node: Node) -> bool:
    """``{{ block.super|upper }}``, ``{% with s=block.super %}``, ``{% if block.super %}``:
    the parent block's output is a value the node works on, not shown as it is, so no
    markers may stand in it. A bare ``{{ block.super }}`` shows it as it is."""
    token = getattr(node, "token", None)
    if token is None or "block.super" not in token.contents:
        return False
    return not (isinstance(node, VariableNode) and token.contents.strip() == "block.super")


def _assigns(node: Node) -> bool:
    """``{% tag ... as name %}``, ``{% regroup %}``, ``{% url ... as name %}``: the
    output goes to a variable that later nodes read, so what the tag read belongs to
    the region around them all, not to a region of its own."""
    token = getattr(node, "token", None)
    if token is None or isinstance(node, WithNode):
        return False
    bits = token.split_contents()
    return (len(bits) > 2 and bits[-2] == "as") or "asvar" in bits


def _analyse(
    nodelist: Iterable[Node], state: State, blocks_from_data: bool = False
) -> tuple[State, bool]:
    """Annotate ``nodelist`` read from ``state``; return the state after it and whether
    it holds an order-dependent node."""
    dependent = False
    for index, node in enumerate(nodelist):
        if isinstance(node, TextNode):
            state = scan(state, node.s)
            if neutralise(node.s) != node.s and isinstance(nodelist, list):
                nodelist[index] = text = MarkerLikeText(node.s)
                vars(text).update(vars(node))  # its token and origin, for debug pages
            continue
        start = DATA if (blocks_from_data and isinstance(node, BlockNode)) else state
        markable = start.markable
        inner_dependent = _order_dependent(node)
        ends = []
        for child in child_nodelists(node):
            end, child_dependent = _analyse(child, start, isinstance(node, ExtendsNode))
            ends.append(end)
            inner_dependent = inner_dependent or child_dependent
        setattr(node, MARKABLE, markable)
        setattr(node, IN_TABLE_SECTION, bool(start.open) and start.open[-1] in TABLE_SECTIONS)
        setattr(node, IN_FOREIGN, start.foreign)
        setattr(
            node,
            OPAQUE,
            (bool(ends) and not isinstance(node, _PASS_THROUGH)) or _uses_block_super(node),
        )
        if isinstance(node, ForNode):
            setattr(node, POSITIONAL, _positional(node))
        setattr(
            node,
            REGION,
            markable
            and not inner_dependent
            and not isinstance(node, _STRUCTURAL)
            and not _assigns(node),
        )
        dependent = dependent or inner_dependent
        if isinstance(node, ExtendsNode):
            continue  # its own text is never rendered
        if ends:
            # A node whose branches end elsewhere (an unclosed tag) moves where later text stands.
            state = next((end for end in ends if end != start), start)
            if start.edge and state.mode is Mode.DATA and not state.edge:
                state = replace(state, edge=start.edge)  # it may render nothing at all
        elif not markable and start.mode is not Mode.DATA:
            state = scan(start, "x")  # the output is opaque text where it stands
        # (An unmarkable node in element content may render nothing: the state stays.)
    return state, dependent
