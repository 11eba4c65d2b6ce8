"""A German page stays German in Chromium: ``LocaleMiddleware`` runs for the page's
socket too, and its language is active for the rows the hub renders later and for the
handlers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.test import override_settings

from django_rt.asgi import get_asgi_application
from tests.testapp.models import Entry

from .conftest import open_page
from .servers import ThreadServer

pytestmark = [pytest.mark.django_db(transaction=True)]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


@pytest.fixture
def locale_server() -> Iterator[ThreadServer]:
    """The test project with ``LocaleMiddleware``, served by uvicorn."""
    with override_settings(MIDDLEWARE=MIDDLEWARE, LANGUAGES=[("en", "English"), ("de", "Deutsch")]):
        application = get_asgi_application()
        application.application_mapping["http"] = ASGIStaticFilesHandler(
            application.application_mapping["http"]
        )
        server = ThreadServer(application).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def german(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="de-DE")
    context.set_default_timeout(10_000)
    yield context
    context.close()


def texts(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map((el) => el.textContent)")


def test_a_german_page_stays_german(locale_server, german):
    Entry.objects.create(name="erste")
    page = open_page(german.new_page(), locale_server.url + "/int/page/")
    assert page.text_content("#language") == "de de"
    assert texts(page, "#list .done") == ["Nein"]
    Entry.objects.create(name="zweite", done=True)
    page.wait_for_function("document.querySelectorAll('#list .done').length === 2")
    # The row the hub rendered is German, and the join did not morph the page to English.
    assert texts(page, "#list .done") == ["Nein", "Ja"]
    assert page.text_content("#language") == "de de"
    assert page.text_content("#moment").startswith("Januar 5")
    page.click("#describe")
    page.wait_for_function("document.querySelector('#out').textContent !== ''")
    out = page.text_content("#out")
    assert out.startswith("de ") and out.endswith("Ja,Nein,Vielleicht"), out
