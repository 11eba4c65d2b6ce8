"""The benchmark server's settings: the test project without the per-connection rate limit."""

from tests.e2e.process_settings import *  # noqa: F403

DJANGO_RT = {"EVENTS_PER_SECOND": 1_000_000.0, "EVENTS_BURST": 1_000_000}
