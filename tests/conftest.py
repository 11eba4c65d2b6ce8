from __future__ import annotations

from typing import Any

import pytest


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
