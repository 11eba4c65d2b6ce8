"""django-rt's settings: one ``DJANGO_RT`` dict in the project's settings.

Every key is optional; :data:`DEFAULTS` documents each one. Values are read on every
access, so ``override_settings(DJANGO_RT=...)`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Path of the WebSocket endpoint that get_asgi_application() routes to the consumer.
    "WEBSOCKET_PATH": "/rt/ws/",
    # Seconds a page token stays valid for a (re)join. A joined page receives a fresh
    # token on every join, so only a page left disconnected this long must reload.
    "TOKEN_MAX_AGE": 60 * 60 * 12,
    # Largest text frame a client may send, in bytes. Larger frames are refused.
    "MAX_FRAME_BYTES": 64 * 1024,
    # Largest single gathered value (a string, or a list/dict as JSON), in bytes.
    "MAX_VALUE_BYTES": 32 * 1024,
    # Events a connection may send per second (sustained rate of a token bucket) ...
    "EVENTS_PER_SECOND": 20.0,
    # ... and in one burst.
    "EVENTS_BURST": 40,
    # Static path of the client script.
    "SCRIPT": "django_rt/rt.js",
}


class Settings:
    """Attribute access to ``settings.DJANGO_RT`` merged over :data:`DEFAULTS`."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"django-rt has no setting {name!r}")
        user = getattr(django_settings, "DJANGO_RT", {}) or {}
        return user.get(name, DEFAULTS[name])

    def validate(self) -> list[str]:
        """Problems with the user's ``DJANGO_RT`` setting, as sentences."""
        user = getattr(django_settings, "DJANGO_RT", {})
        if not isinstance(user, dict):
            return [f"DJANGO_RT must be a dict, not {type(user).__name__}."]
        problems = [
            f"DJANGO_RT has an unknown key {key!r}; known keys: {', '.join(sorted(DEFAULTS))}."
            for key in user
            if key not in DEFAULTS
        ]
        for key in ("TOKEN_MAX_AGE", "MAX_FRAME_BYTES", "MAX_VALUE_BYTES", "EVENTS_BURST"):
            value = user.get(key, DEFAULTS[key])
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                problems.append(f"DJANGO_RT[{key!r}] must be a positive integer, not {value!r}.")
        rate = user.get("EVENTS_PER_SECOND", DEFAULTS["EVENTS_PER_SECOND"])
        # `not rate > 0` also refuses NaN, which would switch the rate limit off.
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
            problems.append(
                f"DJANGO_RT['EVENTS_PER_SECOND'] must be a positive number, not {rate!r}."
            )
        path = user.get("WEBSOCKET_PATH", DEFAULTS["WEBSOCKET_PATH"])
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(
                f"DJANGO_RT['WEBSOCKET_PATH'] must be a path starting with '/', not {path!r}."
            )
        script = user.get("SCRIPT", DEFAULTS["SCRIPT"])
        if not isinstance(script, str) or not script.strip():
            problems.append(f"DJANGO_RT['SCRIPT'] must be a static file path, not {script!r}.")
        return problems

    def check(self) -> None:
        problems = self.validate()
        if problems:
            raise ImproperlyConfigured(" ".join(problems))


rt_settings = Settings()
