"""The proxies pass for what they wrap, and record what is read from them."""

from __future__ import annotations

import pytest
from django.db.models import QuerySet
from django.template import Context, Template
from django.test import RequestFactory

from django_rt import RTContext, RTModelProxy, RTQuerySetProxy
from django_rt.live.proxies import unwrap, wrap, wrap_deep
from django_rt.live.recorder import Session

from .testapp.models import Author, Entry, Tag

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def rows():
    ada = Author.objects.create(name="Ada")
    first = Entry.objects.create(name="first", author=ada, position=2)
    second = Entry.objects.create(name="second", position=1)
    tag = Tag.objects.create(name="t")
    tag.entries.add(first)
    return ada, first, second, tag


def reads(function):
    session = Session()
    with session.active():
        result = function()
    return result, session.root.deps


def test_model_proxy_passes_for_the_instance(rows):
    _, first, second, _ = rows
    proxy = wrap(first)
    assert isinstance(proxy, RTModelProxy) and isinstance(proxy, Entry)
    assert proxy == first and first == unwrap(proxy) and proxy != second
    assert hash(proxy) == hash(first) and bool(proxy)
    assert str(proxy) == "first" and repr(proxy) == repr(first)
    assert proxy.name == "first" and proxy.pk == first.pk
    assert proxy.get_deferred_fields() == set()  # methods work and return as they do


def test_reading_an_instance_records_the_row(rows):
    _, first, _, _ = rows
    proxy = wrap(first)
    value, deps = reads(lambda: proxy.name)
    assert value == "first" and deps == {("i", "testapp.entry", str(first.pk))}
    _, deps = reads(lambda: str(proxy))
    assert deps == {("i", "testapp.entry", str(first.pk))}


def test_foreign_keys_and_related_managers_are_tracked(rows):
    ada, first, _, tag = rows
    proxy = wrap(first)
    author, deps = reads(lambda: proxy.author)
    assert isinstance(author, RTModelProxy) and author == ada
    name, deps = reads(lambda: proxy.author.name)
    assert name == "Ada" and ("i", "testapp.author", str(ada.pk)) in deps
    tags, deps = reads(lambda: list(proxy.tags.all()))
    assert tags == [tag] and all(isinstance(t, RTModelProxy) for t in tags)
    assert ("t", "testapp.tag") in deps
    count, deps = reads(lambda: wrap(ada).entry_set.count())
    assert count == 1 and ("t", "testapp.entry") in deps


def test_queryset_proxy_passes_for_the_queryset(rows):
    _, first, second, _ = rows
    proxy = wrap(Entry.objects.order_by("name"))
    assert isinstance(proxy, RTQuerySetProxy) and isinstance(proxy, QuerySet)
    (items, deps) = reads(lambda: list(proxy))
    assert items == [first, second] and all(isinstance(i, RTModelProxy) for i in items)
    assert deps == {("t", "testapp.entry")}
    assert len(proxy) == 2 and bool(proxy) and proxy[0] == first and proxy[1:] == [second]
    assert list(reversed(proxy)) == [second, first] and first in proxy
    assert proxy.count() == 2 and proxy.exists() and proxy.first() == first
    assert isinstance(proxy.filter(name="first"), RTQuerySetProxy)
    assert not wrap(Entry.objects.none())


def test_wrap_deep_reaches_into_containers(rows):
    _, first, _, _ = rows
    wrapped = wrap_deep({"a": [first, (first, 1)], "b": first, "c": "text"})
    assert isinstance(wrapped["a"][0], RTModelProxy)
    assert isinstance(wrapped["a"][1][0], RTModelProxy) and wrapped["a"][1][1] == 1
    assert isinstance(wrapped["b"], RTModelProxy) and wrapped["c"] == "text"


def test_templates_render_proxies_as_they_render_instances(rows):
    ada, first, _, _ = rows
    source = (
        "{% if entry %}{{ entry }}|{{ entry.name|upper }}|{{ entry.author.name }}|"
        "{{ entries|length }}|{% for e in entries %}{{ e.name }},{% endfor %}|"
        "{{ entry.save }}|{{ author.entry_set.all|join:',' }}{% endif %}"
    )
    context = {"entry": first, "entries": Entry.objects.order_by("name"), "author": ada}
    plain = Template(source).render(Context(context))
    request = RequestFactory().get("/")
    tracked = Template(source).render(RTContext(request, context))
    assert tracked == plain
    assert plain == "first|FIRST|Ada|2|first,second,||first"
