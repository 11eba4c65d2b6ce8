from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def application() -> Any:
    from django_rt.asgi import get_asgi_application

    return get_asgi_application()
