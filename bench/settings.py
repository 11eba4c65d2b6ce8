"""The benchmarks' settings: the test project without the per-connection limits."""

import os
import tempfile

from tests.e2e.process_settings import *  # noqa: F403
from tests.e2e.process_settings import DATABASES

# Ten clients join with the one page token the benchmark loads.
DJANGO_RT = {
    "EVENTS_PER_SECOND": 1_000_000.0,
    "EVENTS_BURST": 1_000_000,
    "MAX_CONNECTIONS_PER_TOKEN": 1_000,
}
# A file, so that the hub's worker thread and the benchmark share the test database.
DATABASES["default"]["TEST"] = {
    "NAME": os.path.join(tempfile.gettempdir(), f"django-rt-bench-{os.getpid()}.sqlite3")
}
