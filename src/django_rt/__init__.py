"""django-rt: realtime server-rendered Django pages.

Public API::

    from django_rt import RTView, RTResponse, RTContext, RTModelProxy

The names are imported lazily so that listing ``"django_rt"`` in ``INSTALLED_APPS``
does not import Django's views before the app registry is ready.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broadcasting import broadcast
    from .events import EventTarget
    from .forms import RTCreateView, RTFormMixin, RTFormView, RTUpdateView
    from .live.proxies import RTModelProxy, RTQuerySetProxy
    from .live.render import RTContext, render_template
    from .responses import RTResponse
    from .views import RTView, live_view

__version__ = "0.1.0"
__all__ = [
    "EventTarget",
    "broadcast",
    "RTContext",
    "RTCreateView",
    "RTFormMixin",
    "RTFormView",
    "RTModelProxy",
    "RTQuerySetProxy",
    "RTResponse",
    "RTUpdateView",
    "RTView",
    "live_view",
    "render_template",
]

_LOCATIONS = {
    "broadcast": ".broadcasting",
    "RTView": ".views",
    "RTResponse": ".responses",
    "EventTarget": ".events",
    "RTFormMixin": ".forms",
    "RTFormView": ".forms",
    "RTCreateView": ".forms",
    "RTUpdateView": ".forms",
    "RTContext": ".live.render",
    "RTModelProxy": ".live.proxies",
    "RTQuerySetProxy": ".live.proxies",
    "render_template": ".live.render",
    "live_view": ".views",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(import_module(_LOCATIONS[name], __name__), name)
    raise AttributeError(f"module 'django_rt' has no attribute {name!r}")
