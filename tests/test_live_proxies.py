"""The proxies pass for what they wrap, and record what is read from them."""

from __future__ import annotations

import inspect
import re
from collections import OrderedDict, defaultdict, namedtuple

import pytest
from django.db.models import QuerySet
from django.forms.utils import ErrorList
from django.template import Context, Template
from django.test import RequestFactory

from django_rt import RTContext, RTModelProxy, RTQuerySetProxy
from django_rt.live.proxies import RTObjectProxy, unwrap, wrap, wrap_deep
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


def test_wrap_deep_keeps_what_needs_no_proxy(rows):
    _, first, _, _ = rows
    words, mapping, pair = ["a", "b"], {"a": 1}, ("a", 1)
    assert wrap_deep(words) is words and wrap_deep(mapping) is mapping
    assert wrap_deep(pair) is pair
    nested = [words, first]
    wrapped = wrap_deep(nested)
    assert wrapped is not nested and wrapped[0] is words


def test_wrap_deep_keeps_container_types(rows):
    _, first, _, _ = rows
    errors = ErrorList(["Required."])
    assert wrap_deep(errors) is errors
    assert wrap_deep(ErrorList([first]))[0] is first  # its own code renders it: left as is

    class Rows(list):
        pass

    class Index(defaultdict):
        pass

    listed = wrap_deep(Rows([first, "x"]))
    assert type(listed) is Rows and isinstance(listed[0], RTModelProxy) and listed[1] == "x"
    index = Index(list, {"a": first})
    indexed = wrap_deep(index)
    assert type(indexed) is Index and indexed.default_factory is list
    assert isinstance(indexed["a"], RTModelProxy) and index["a"] is first
    ordered = OrderedDict(a=first)
    assert wrap_deep(ordered) is ordered
    Pair = namedtuple("Pair", "entry label")  # noqa: PYI024
    pair = Pair(first, "x")
    assert wrap_deep(pair) is pair


class Shelf:
    """An object with the operators Django's template engine tries."""

    def __init__(self, items):
        self.items = items

    def __getitem__(self, key):
        return self.items[key]

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __lt__(self, other):
        return len(self) < len(other)


def test_object_proxies_have_the_operators_of_what_they_wrap(rows):
    _, first, _, _ = rows
    shelf = RTObjectProxy(Shelf([first, 2]), ("v",))
    for name in ("__getitem__", "__len__", "__iter__", "__lt__"):
        assert hasattr(shelf, name)
    assert not hasattr(shelf, "__contains__") and not hasattr(wrap(first), "__len__")
    (value, deps) = reads(lambda: shelf[0])
    assert isinstance(value, RTModelProxy) and deps == {("v",)}
    assert len(shelf) == 2 and list(shelf)[1] == 2 and first in shelf
    assert shelf < Shelf([1, 2, 3]) and not shelf < shelf
    with pytest.raises(TypeError):
        len(wrap(first))


def test_wrapped_methods_keep_their_signature(rows):
    _, first, _, _ = rows
    method = wrap(first).serializable_value
    assert inspect.signature(method) == inspect.signature(first.serializable_value)
    with pytest.raises(TypeError):
        inspect.signature(method).bind()


def test_queryset_indexing_is_djangos(rows):
    _, first, second, _ = rows
    queryset = Entry.objects.order_by("name")
    proxy = wrap(queryset)
    for index in (-1, slice(-2, None), "count"):
        with pytest.raises(Exception) as plain:
            Entry.objects.order_by("name")[index]
        with pytest.raises(type(plain.value), match=re.escape(str(plain.value))):
            proxy[index]
    # Before the render sees the rows, a slice is a queryset of its own ...
    sliced = proxy[:1]
    assert isinstance(sliced, RTQuerySetProxy)
    items, deps = reads(lambda: list(sliced))
    assert items == [first] and deps == {("t", "testapp.entry")}
    assert proxy[::2] == [first] and isinstance(proxy[::2][0], RTModelProxy)
    with pytest.raises(IndexError):
        proxy[5]
    assert proxy[1] == second and isinstance(proxy[1], RTModelProxy)
    # ... after, it is a list of the rows the render saw.
    session = Session()
    with session.active():
        list(proxy)
        assert proxy[:1] == [first] and isinstance(proxy[:1], list)


def test_queryset_proxy_prints_as_django_prints_a_queryset(rows):
    for index in range(25):
        Entry.objects.create(name=f"n{index:02}")
    queryset = Entry.objects.order_by("name")
    assert str(wrap(queryset)) == repr(wrap(queryset)) == repr(Entry.objects.order_by("name"))
    assert "...(remaining elements truncated)..." in str(wrap(queryset))
