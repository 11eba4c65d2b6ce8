"""Settings of the fan-out benchmark's Django servers: the test project (its ``Entry``
model), the benchmark's page and write endpoint, no per-connection limits.

Every server and writer process reads ``DJANGO_RT_FANOUT``, the JSON of
``{"database": path of the SQLite file, "feed": DJANGO_RT["CHANGE_FEED"] or null}``.
"""

import json
import os
import tempfile
from pathlib import Path

from tests.settings import *  # noqa: F403
from tests.settings import TEMPLATES

_RUN = json.loads(os.environ.get("DJANGO_RT_FANOUT") or "{}")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _RUN.get("database")
        or os.path.join(tempfile.gettempdir(), f"django-rt-fanout-{os.getpid()}.sqlite3"),
        # Several processes write and read the one file (the harness sets WAL mode);
        # a write transaction takes the lock first, and waits for it instead of failing.
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    }
}
ROOT_URLCONF = "bench.fanout.urls"
TEMPLATES = [{**TEMPLATES[0], "DIRS": [Path(__file__).resolve().parent / "templates"]}]
DJANGO_RT = {
    # Thousands of sockets join with the token of one page load, and events come as
    # fast as the benchmark sends them.
    "MAX_CONNECTIONS_PER_TOKEN": 1_000_000,
    "MAX_CONNECTIONS_PER_USER": 1_000_000,
    "EVENTS_PER_SECOND": 1_000_000.0,
    "EVENTS_BURST": 1_000_000,
}
if _RUN.get("feed"):
    DJANGO_RT["CHANGE_FEED"] = _RUN["feed"]
# What goes wrong in a server lands in its log, which the harness reads.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_rt": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
