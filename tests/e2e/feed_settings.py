"""Settings of the test project when several processes of it share one database and a
change feed (tests/e2e/test_processes.py). Each server and shell of a test reads both
from the environment variable ``DJANGO_RT_E2E``: the JSON of
``{"database": DATABASES["default"], "feed": DJANGO_RT["CHANGE_FEED"]}``."""

import json
import os

from django.core.exceptions import ImproperlyConfigured

from tests.settings import *  # noqa: F403

try:
    _DEPLOYMENT = json.loads(os.environ["DJANGO_RT_E2E"])
except (KeyError, ValueError) as error:
    raise ImproperlyConfigured(
        'tests.e2e.feed_settings reads DJANGO_RT_E2E, the JSON of {"database": ..., '
        f'"feed": ...}}: {error!r}'
    ) from None

DATABASES = {"default": _DEPLOYMENT["database"]}
DJANGO_RT = {"CHANGE_FEED": _DEPLOYMENT["feed"]}
ROOT_URLCONF = "tests.e2e.feed_urls"
# What goes wrong in a server or a shell lands in its log, for the test to show.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django_rt": {"handlers": ["stderr"], "level": "WARNING", "propagate": False}},
}
