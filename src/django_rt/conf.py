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
    # Static path of the client script. Unless set, pages load it minified (rt.min.js)
    # when DEBUG is off.
    "SCRIPT": "django_rt/rt.js",
    # Static path of the morph library, loaded by the client when a page must resync.
    "MORPH_SCRIPT": "django_rt/vendor/idiomorph/idiomorph.js",
    # Where database changes come from: like CACHES, {"BACKEND": a ChangeFeed's dotted
    # path, "LOCATION": ..., "OPTIONS": {...}}, or the dotted path alone (docs/feeds.md).
    "CHANGE_FEED": "django_rt.changes.memory.MemoryFeed",
    # Seconds the hub waits before each batch, to gather a burst of changes into one
    # update per page. 0: a lone change goes at once, and the changes that arrive while a
    # batch is processed make the next one.
    "COALESCE_SECONDS": 0.0,
    # Live pages (one per audience) that a commit's own thread may update before its
    # commit returns, when the hub is idle and none of them runs its view again: a lone
    # save reaches its pages without waiting for the hub's thread, and the committing
    # request spends the time of a few regions' renders. 0: the hub's thread does all.
    "INLINE_UPDATE_PAGES": 4,
    # Write an audience's patch frame, built once, to each socket's transport where the
    # server's socket state can be read (uvicorn --ws websockets-sansio; docs/deploy.md),
    # rather than through each socket's ASGI send.
    "DIRECT_WRITES": True,
    # Seconds a page's access verdict is trusted: before a patch is sent or a handler
    # runs, a verdict older than this re-runs the page's view (its login and permission
    # checks) with the session and user as they are now. 0 checks every time.
    "ACCESS_CHECK_SECONDS": 5.0,
    # Seconds after which a connection is closed (give or take 10%, so that pages opened
    # together do not all return together) and the client rejoins with its fresh token,
    # so that the join's checks run again.
    "MAX_CONNECTION_AGE": 60 * 60,
    # Seconds a socket may stay open without joining a page.
    "JOIN_TIMEOUT": 10.0,
    # Open connections per page (one page token and the fresh tokens its joins hand out)
    # and per user (a signed-in user, or else an anonymous session), per process.
    "MAX_CONNECTIONS_PER_TOKEN": 4,
    "MAX_CONNECTIONS_PER_USER": 50,
    # Least seconds between two renders of a page asked for by its browser (resync);
    # asking again meanwhile is answered once, when the interval is over.
    "RESYNC_SECONDS": 5.0,
    # Threads that run the connections' sync work (handlers, joins, access checks,
    # resync renders), per process. One connection uses at most one at a time.
    "WORKER_THREADS": 8,
    # Joins whose view runs and renders at once, per process: a join storm (every page
    # back after a restart) leaves threads to the handlers of the pages already joined.
    "JOIN_CONCURRENCY": 4,
    # Models whose changes are never published ("app_label.modelname").
    "IGNORE_MODELS": [
        "sessions.session",
        "admin.logentry",
        "contenttypes.contenttype",
        "migrations.migration",
    ],
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
        for key in (
            "TOKEN_MAX_AGE",
            "MAX_FRAME_BYTES",
            "MAX_VALUE_BYTES",
            "EVENTS_BURST",
            "MAX_CONNECTION_AGE",
            "MAX_CONNECTIONS_PER_TOKEN",
            "MAX_CONNECTIONS_PER_USER",
            "WORKER_THREADS",
            "JOIN_CONCURRENCY",
        ):
            value = user.get(key, DEFAULTS[key])
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                problems.append(f"DJANGO_RT[{key!r}] must be a positive integer, not {value!r}.")
        rate = user.get("EVENTS_PER_SECOND", DEFAULTS["EVENTS_PER_SECOND"])
        # `not rate > 0` also refuses NaN, which would switch the rate limit off.
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
            problems.append(
                f"DJANGO_RT['EVENTS_PER_SECOND'] must be a positive number, not {rate!r}."
            )
        timeout = user.get("JOIN_TIMEOUT", DEFAULTS["JOIN_TIMEOUT"])
        if not _number(timeout) or not 0 < timeout < float("inf"):
            problems.append(
                f"DJANGO_RT['JOIN_TIMEOUT'] must be a positive number of seconds, not {timeout!r}."
            )
        for key in ("ACCESS_CHECK_SECONDS", "RESYNC_SECONDS"):
            value = user.get(key, DEFAULTS[key])
            # `not 0 <= value` also refuses NaN; infinity would switch the check off.
            if not _number(value) or not 0 <= value < float("inf"):
                problems.append(
                    f"DJANGO_RT[{key!r}] must be a number of seconds (0 or more), not {value!r}."
                )
        path = user.get("WEBSOCKET_PATH", DEFAULTS["WEBSOCKET_PATH"])
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(
                f"DJANGO_RT['WEBSOCKET_PATH'] must be a path starting with '/', not {path!r}."
            )
        for key in ("SCRIPT", "MORPH_SCRIPT"):
            script = user.get(key, DEFAULTS[key])
            if not isinstance(script, str) or not script.strip():
                problems.append(f"DJANGO_RT[{key!r}] must be a static file path, not {script!r}.")
        delay = user.get("COALESCE_SECONDS", DEFAULTS["COALESCE_SECONDS"])
        if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay < 10:
            problems.append(
                f"DJANGO_RT['COALESCE_SECONDS'] must be a number of seconds, not {delay!r}."
            )
        inline = user.get("INLINE_UPDATE_PAGES", DEFAULTS["INLINE_UPDATE_PAGES"])
        if not isinstance(inline, int) or isinstance(inline, bool) or inline < 0:
            problems.append(
                "DJANGO_RT['INLINE_UPDATE_PAGES'] must be a number of pages (0 or more), "
                f"not {inline!r}."
            )
        direct = user.get("DIRECT_WRITES", DEFAULTS["DIRECT_WRITES"])
        if not isinstance(direct, bool):
            problems.append(f"DJANGO_RT['DIRECT_WRITES'] must be True or False, not {direct!r}.")
        ignored = user.get("IGNORE_MODELS", DEFAULTS["IGNORE_MODELS"])
        if not isinstance(ignored, list | tuple) or not all(
            isinstance(label, str) and label.count(".") == 1 for label in ignored
        ):
            problems.append(
                "DJANGO_RT['IGNORE_MODELS'] must be a list of 'app_label.modelname' strings, "
                f"not {ignored!r}."
            )
        from .changes import feed_problems

        problems += feed_problems(user.get("CHANGE_FEED", DEFAULTS["CHANGE_FEED"]))
        return problems

    def check(self) -> None:
        problems = self.validate()
        if problems:
            raise ImproperlyConfigured(" ".join(problems))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


rt_settings = Settings()
