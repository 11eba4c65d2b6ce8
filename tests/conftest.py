from __future__ import annotations

from typing import Any

import pytest

from .requirements import required


def pytest_sessionstart(session: pytest.Session) -> None:
    """On PostgreSQL (tests.settings_postgres), check that the server answers first."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"]:
        return
    import psycopg

    try:
        psycopg.connect(
            host=database["HOST"],
            port=database["PORT"],
            user=database["USER"],
            password=database["PASSWORD"],
            dbname=database["NAME"],
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as error:
        message = f"PostgreSQL unavailable at {database['HOST']}:{database['PORT']}: {error}"
        if required("postgres"):
            raise pytest.UsageError(message + " (DJANGO_RT_REQUIRE names postgres)") from None
        pytest.exit(message + "; its tests are skipped", returncode=0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread while the shared browser is open, which async tests after it cannot share."""
    browser = [item for item in items if "e2e" in item.path.parts]
    for item in browser:
        item.add_marker(pytest.mark.browser)
    items[:] = [item for item in items if item not in browser] + browser


@pytest.fixture(scope="session")
def application() -> Any:
    from django_rt.asgi import get_asgi_application

    return get_asgi_application()


@pytest.fixture(scope="session", autouse=True)
def _hub_connections_closed_before_the_database_goes(django_db_setup: Any) -> Any:
    """The hub's thread keeps its connection for a moment after a batch; the test
    database is dropped after this fixture ends, and PostgreSQL refuses while any
    connection is open."""
    yield
    from django_rt.workers import close_hub_connections

    close_hub_connections()
