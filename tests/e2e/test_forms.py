"""Live forms and bound values end to end: Chromium, the real client, a real ASGI server."""

from __future__ import annotations

import pytest

from tests.testapp.models import Entry

from .conftest import new_page, open_page

pytestmark = [pytest.mark.django_db(transaction=True)]


def texts(page, selector):
    return page.eval_on_selector_all(selector, "els => els.map((el) => el.textContent)")


def wait_texts(page, selector, expected):
    page.wait_for_function(
        "([selector, expected]) => JSON.stringify([...document.querySelectorAll(selector)]"
        ".map((el) => el.textContent)) === JSON.stringify(expected)",
        arg=[selector, expected],
    )


def focus(page):
    """The focused element's id, value and caret."""
    return page.evaluate(
        "[document.activeElement.id, document.activeElement.value,"
        " document.activeElement.selectionStart]"
    )


NO_ERRORS = "!document.querySelector('.errorlist')"

# Counts the times the name field was replaced by a patch (a new element took its place).
COUNT_REPLACEMENTS = """
window.replaced = 0;
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.removedNodes) {
      if (node.nodeType === 1 && (node.id === "id_name" || node.querySelector("#id_name"))) {
        window.replaced += 1;
      }
    }
  }
}).observe(document.body, { childList: true, subtree: true });
"""


def test_a_model_form_validates_as_the_user_types(page, asgi_server):
    Entry.objects.create(name="apple")
    open_page(page, asgi_server.url + "/forms/entries/new/")
    page.click("#id_name")
    page.keyboard.type("apple")
    page.wait_for_selector("#id_name_error li:text-is('An entry named apple exists.')")
    # The error appeared around the field without taking it from the user.
    assert focus(page) == ["id_name", "apple", 5]
    assert page.get_attribute("#id_name", "aria-invalid") == "true"
    # Only the field the user was in shows its errors.
    assert texts(page, ".errorlist li") == ["An entry named apple exists."]
    page.keyboard.type("s")
    page.wait_for_function(NO_ERRORS)
    assert focus(page) == ["id_name", "apples", 6]
    # Leaving a required field empty shows its error once the user leaves it.
    page.fill("#id_position", "")
    page.keyboard.press("Tab")
    page.wait_for_selector("#id_position_error li:text-is('This field is required.')")
    assert page.input_value("#id_name") == "apples"
    assert page.errors == []


def test_keystrokes_made_while_validations_travel_are_kept(page, asgi_server):
    Entry.objects.create(name="apple")
    # Validates on every keystroke: replies arrive while the user goes on typing.
    open_page(page, asgi_server.url + "/forms/entries/new/every-key/")
    page.click("#id_name")
    page.keyboard.type("apple")
    page.wait_for_selector("#id_name_error")
    page.evaluate(COUNT_REPLACEMENTS)
    page.keyboard.type(" pie crust", delay=25)
    page.wait_for_function(NO_ERRORS)
    assert focus(page) == ["id_name", "apple pie crust", 15]
    # The field was replaced while the user typed on ("apple p" cleared the error).
    assert page.evaluate("window.replaced") >= 1
    # Editing in the middle: the caret stays where the user put it.
    page.keyboard.press("Home")
    page.keyboard.type("big ", delay=25)
    page.keyboard.press("Backspace")
    page.keyboard.type(" ")
    assert focus(page) == ["id_name", "big apple pie crust", 4]
    page.keyboard.press("Control+a")
    page.keyboard.type("apple", delay=25)
    page.wait_for_selector("#id_name_error")
    assert focus(page) == ["id_name", "apple", 5]
    assert page.errors == []


def test_a_submit_saves_and_updates_another_open_page(context, asgi_server):
    Entry.objects.create(name="apple")
    listing = open_page(new_page(context), asgi_server.url + "/forms/entries/")
    form = open_page(new_page(context), asgi_server.url + "/forms/entries/new/")
    wait_texts(listing, "#entries .name", ["apple"])

    # Refused on submit: every error shows (the form's own too), nothing is saved.
    form.fill("#id_name", "Apple")
    form.check("#id_done")
    form.click("#save")
    form.wait_for_selector(".errorlist.nonfield li:text-is('A finished entry needs a position.')")
    assert texts(form, "#id_name_error li") == ["An entry named Apple exists."]
    assert Entry.objects.count() == 1
    assert form.url.endswith("/forms/entries/new/")

    form.fill("#id_name", "banana")
    form.fill("#id_position", "2")
    form.click("#save")
    form.wait_for_url("**/forms/entries/")
    wait_texts(form, "#entries .name", ["apple", "banana"])
    wait_texts(listing, "#entries .name", ["apple", "banana"])
    assert Entry.objects.get(name="banana").done is True
    assert listing.errors == [] and form.errors == []


def test_without_javascript_the_same_view_posts_and_redirects(browser, context, asgi_server):
    Entry.objects.create(name="apple")
    listing = open_page(new_page(context), asgi_server.url + "/forms/entries/")
    static = browser.new_context(java_script_enabled=False)
    static.set_default_timeout(10_000)
    try:
        page = static.new_page()
        page.goto(asgi_server.url + "/forms/entries/new/")
        page.fill("#id_name", "apple")
        page.click("#save")
        # Django's answer to an invalid POST, as Django renders it.
        page.wait_for_selector("#id_name_error li:text-is('An entry named apple exists.')")
        assert page.url.endswith("/forms/entries/new/")
        assert page.input_value("#id_name") == "apple"
        assert "data-rt-config" not in page.content()  # a page answering a POST is not live

        page.fill("#id_name", "cherry")
        page.click("#save")
        page.wait_for_url("**/forms/entries/")
        assert texts(page, "#entries .name") == ["apple", "cherry"]
        # The row saved by the POST reaches the live page.
        wait_texts(listing, "#entries .name", ["apple", "cherry"])
    finally:
        static.close()


def test_a_bound_search_box_filters_a_live_queryset(page, asgi_server):
    for name in ("apple", "apricot", "banana"):
        Entry.objects.create(name=name)
    open_page(page, asgi_server.url + "/forms/search/")
    page.click("#search")
    page.keyboard.type("ap", delay=30)
    wait_texts(page, "#results .name", ["apple", "apricot"])
    assert page.text_content("#summary") == "2 for “ap”"

    # The queryset the view built from the value is live like any other.
    Entry.objects.create(name="apex")
    Entry.objects.create(name="cherry")
    wait_texts(page, "#results .name", ["apex", "apple", "apricot"])

    page.keyboard.type("r", delay=30)
    wait_texts(page, "#results .name", ["apricot"])
    assert focus(page) == ["search", "apr", 3]
    page.keyboard.type("x")
    page.wait_for_selector("#results .none")
    page.fill("#search", "")
    wait_texts(page, "#results .name", ["apex", "apple", "apricot", "banana", "cherry"])
    assert page.text_content("#summary") == "5 for “”"
    assert page.errors == []
