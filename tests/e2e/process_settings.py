"""Settings of the test project when it runs in its own uvicorn process."""

from tests.settings import *  # noqa: F403
from tests.settings import BASE_DIR

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "process.sqlite3"}
}
