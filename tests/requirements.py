"""Tests that need a service skip with a reason where it is missing, and fail instead
where ``DJANGO_RT_REQUIRE`` names it (CI sets ``DJANGO_RT_REQUIRE=all``).

The names: ``chromium``, ``node``, ``postgres``, ``redis``, and ``django-suite``
(Django's own template tests, which ``scripts/django-template-tests`` fetches from PyPI).
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("DJANGO_RT_CHROMIUM", "/usr/bin/chromium")


def required(service: str) -> bool:
    names = {name.strip() for name in os.environ.get("DJANGO_RT_REQUIRE", "").split(",")}
    return "all" in names or service in names


def need(service: str, available: bool, reason: str) -> None:
    """Skip (or fail, when the service is required) unless ``available``."""
    if available:
        return
    message = f"{service} unavailable: {reason}"
    if required(service):
        pytest.fail(message + f" (DJANGO_RT_REQUIRE names {service})", pytrace=False)
    pytest.skip(message)


def node() -> str | None:
    return shutil.which("node")
