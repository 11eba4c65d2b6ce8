"""django-rt: realtime server-rendered Django pages.

Public API::

    from django_rt import RTView, RTResponse

The names are imported lazily so that listing ``"django_rt"`` in ``INSTALLED_APPS``
does not import Django's views before the app registry is ready.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import EventTarget
    from .responses import RTResponse
    from .views import RTView

__version__ = "0.1.0"
__all__ = ["EventTarget", "RTResponse", "RTView"]

_LOCATIONS = {
    "RTView": ".views",
    "RTResponse": ".responses",
    "EventTarget": ".events",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(import_module(_LOCATIONS[name], __name__), name)
    raise AttributeError(f"module 'django_rt' has no attribute {name!r}")
