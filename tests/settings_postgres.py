"""The test project on PostgreSQL (``./dev test`` runs the database-heavy tests again
with it). Where no server answers, those tests are skipped with the reason, unless
``DJANGO_RT_REQUIRE`` names ``postgres``."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DJANGO_RT_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJANGO_RT_PG_PORT", "5432"),
        "USER": os.environ.get("DJANGO_RT_PG_USER", "postgres"),
        "PASSWORD": os.environ.get("DJANGO_RT_PG_PASSWORD", ""),
        "NAME": "postgres",
        # One per run, so that concurrent runs on one server never share it.
        "TEST": {"NAME": f"test_django_rt_{os.getpid()}"},
    }
}
