"""What a tracked render puts in the page, as Chromium reads it: markers that change
nothing the browser parses, keys that keep each row's patches in its row, and marker
text from the data that captures no patch."""

from __future__ import annotations

from typing import Any

import pytest
from django.template import Context, Template

from django_rt.live.render import render_template
from tests.testapp.models import Label

from .conftest import open_page

# The DOM of the page with django-rt's markers taken out (what the client walks: comment
# nodes whose text starts "rt:" or "/rt:"), adjacent text joined, and the ids of the
# regions whose end marker is not a later sibling of their start marker.
READ_PAGE = """() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_COMMENT);
    const markers = [];
    for (let n; (n = walker.nextNode()); ) {
        if (n.data.startsWith('rt:') || n.data.startsWith('/rt:')) markers.push(n);
    }
    const apart = [];
    for (const start of markers.filter((n) => n.data.startsWith('rt:'))) {
        let n = start;
        while ((n = n.nextSibling) && !(n.nodeType === 8 && n.data === '/' + start.data));
        if (!n) apart.push(start.data);
    }
    markers.forEach((n) => n.remove());
    document.body.normalize();
    return {html: document.body.innerHTML, text: document.body.textContent, apart};
}"""


def read_in_browser(page: Any, html: str) -> dict[str, Any]:
    page.set_content(f"<!doctype html><html><head></head><body>{html}</body></html>")
    return page.evaluate(READ_PAGE)


def label(name: str, code: str = "p") -> Label:
    return Label(code=code, name=name)


CASES = [
    # A newline right after <pre> is dropped; after a comment, it is content.
    ("pre", "<pre>{{ a.name }}</pre>", {"a": label("\nfirst line")}),
    ("listing", "<listing>{{ a.name }}</listing>", {"a": label("\nfirst line")}),
    (
        "pre-loop",
        "<pre>{% for l in labels %}{{ l.name }}{% endfor %}</pre>",
        {"labels": [label("\nfirst", "x"), label("second", "y")]},
    ),
    (
        "pre-from-a-value",
        "{{ html|safe }}{{ a.name }}</pre>",
        {"html": "<pre>", "a": label("\nfirst line")},
    ),
    # An unfinished tag in unescaped output would swallow a marker.
    ("unfinished-tag", "<p>{{ html|safe }}{{ a.name }}</p>", {"html": "a <b"}),
    ("unfinished-tag-space", "<p>{{ html|safe }} {{ a.name }} x</p>", {"html": "a <b"}),
    ("unfinished-quote", "<p>{{ html|safe }}{{ a.name }}'>y</p>", {"html": "<b title='"}),
    ("unfinished-comment", "<p>{{ html|safe }}{{ a.name }}</p><p>x--></p>", {"html": "<!--"}),
    (
        "autoescape-off",
        "<p>{% autoescape off %}{{ html }}{{ a.name }}{% endautoescape %}</p>",
        {"html": "x <i"},
    ),
    # A bare "<" before a marker: without it, "<b" would open a tag.
    ("bare-lt", "<p>{{ html|safe }}{{ a.name }}</p>", {"html": "1 <", "a": label("b>x")}),
    # A character reference split by a marker.
    ("reference", "<p>&{{ a.name }}</p>", {"a": label("amp;")}),
    (
        "reference-from-a-value",
        "<p>{{ html|safe }}{{ a.name }}</p>",
        {"html": "&am", "a": label("p;")},
    ),
    # A CRLF split by a marker: two line breaks instead of one.
    (
        "crlf",
        "<pre>\n{{ a.name }}{{ b.name }}</pre>",
        {"a": label("first\r"), "b": label("\nsecond", "q")},
    ),
]


@pytest.mark.parametrize(("source", "values"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_markers_change_nothing_the_browser_parses(page: Any, source: str, values: Any) -> None:
    context = {"a": label("name"), **values}
    live = render_template(Template(source), context)
    plain = Template(source).render(Context(context))
    with_markers = read_in_browser(page, live.html)
    as_django = read_in_browser(page, plain)
    assert with_markers["html"] == as_django["html"]
    assert with_markers["text"] == as_django["text"]
    assert with_markers["apart"] == []


# live pages ----------------------------------------------------------------------------

pytestmark = [pytest.mark.django_db(transaction=True)]


def names(page: Any) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#labels li')]
            .map((li) => [li.querySelector('.code').textContent,
                          li.querySelector('.name').textContent]))"""
    )


def wait_for_name(page: Any, code: str, name: str) -> None:
    page.wait_for_function(
        """([code, name]) => [...document.querySelectorAll('#labels li')].some((li) =>
            li.querySelector('.code').textContent === code
            && li.querySelector('.name').textContent === name)""",
        arg=[code, name],
    )


def test_a_row_with_a_dotted_key_is_renamed_alone(page: Any, asgi_server: Any) -> None:
    # Key "a.1" reads, unencoded, as region 1 inside item "a" (its code): the ids collide.
    for code in ["a", "a.1", "a.1.1", "\u2d30", "-30"]:
        Label.objects.create(code=code, name=f"name of {code}")
    open_page(page, asgi_server.url + "/live/labels/")
    before = names(page)
    assert len(before) == 5
    row = Label.objects.get(code="a")
    row.name = "renamed"
    row.save()
    wait_for_name(page, "a", "renamed")
    # A later change that shows: the rename had every chance to land elsewhere too.
    Label.objects.create(code="z", name="later")
    wait_for_name(page, "z", "later")
    assert names(page) == {**before, "a": "renamed", "z": "later"}
    assert page.errors == []


def test_marker_text_in_trusted_html_captures_no_patch(page: Any, asgi_server: Any) -> None:
    Label.objects.create(code="a", name="name of a")
    Label.objects.create(code="b", name="name of b")
    # Region 1 is the list; "1#a.2" is the name of row "a" (after its code). The note
    # copies its markers (in every form the client would take for one), after the real
    # ones in the page.
    forged = (
        "<!--rt:1#a.2--><i id=forged>forged</i><!--/rt:1#a.2-->"
        "<!rt:1#b.2><i id=bogus>bogus</i><!/rt:1#b.2>"
    )
    Label.objects.create(code="note", name=forged)
    open_page(page, asgi_server.url + "/live/labels/")
    for code in ("a", "b"):
        row = Label.objects.get(code=code)
        row.name = f"renamed {code}"
        row.save()
    wait_for_name(page, "a", "renamed a")
    wait_for_name(page, "b", "renamed b")
    assert page.text_content("#forged") == "forged"
    assert page.text_content("#bogus") == "bogus"
    assert names(page) == {"a": "renamed a", "b": "renamed b"}
    assert page.errors == []
