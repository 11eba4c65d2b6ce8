"""Template tags for the live engine's tests: an inclusion tag, a simple tag and a
block tag with a node list."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()


@register.inclusion_tag("testapp/live/card.html")
def entry_card(entry: Any, note: str = "") -> dict[str, Any]:
    return {"entry": entry, "note": note}


@register.simple_tag
def shout(value: Any, mark: str = "!") -> str:
    return f"{value}{mark}"


class BoxNode(template.Node):
    child_nodelists = ("nodelist",)

    def __init__(self, css_class: template.base.FilterExpression, nodelist: template.NodeList):
        self.css_class = css_class
        self.nodelist = nodelist

    def render(self, context: template.Context) -> str:
        return format_html(
            '<div class="box {}">{}</div>',
            self.css_class.resolve(context),
            self.nodelist.render(context),
        )


@register.tag
def boxed(parser: template.base.Parser, token: template.base.Token) -> BoxNode:
    """``{% boxed "class" %}…{% endboxed %}``: the content in a ``<div class="box …">``."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError("boxed takes one argument")
    nodelist = parser.parse(("endboxed",))
    parser.delete_first_token()
    return BoxNode(parser.compile_filter(bits[1]), nodelist)


@register.simple_tag(takes_context=True)
def row_number(context: template.Context) -> str:
    """The loop counter, read from the context (not from a ``forloop`` token)."""
    return str(context["forloop"]["counter"])
