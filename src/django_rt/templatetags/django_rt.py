"""``{% rt_script %}``: place the client script explicitly instead of before ``</body>``."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def rt_script(context: template.Context) -> SafeString:
    """The client script and its page configuration, for an ``RTView`` page.

    Outside an ``RTView`` page it renders nothing. The script itself goes in once the
    page has rendered (it carries the hash of the render).
    """
    from ..live.page import SCRIPT_PLACEHOLDER
    from ..views import RTView

    view: Any = context.get("view")
    if not isinstance(view, RTView):
        return SafeString("")
    return SafeString(SCRIPT_PLACEHOLDER)
