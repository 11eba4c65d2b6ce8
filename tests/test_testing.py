"""django_rt.testing: the page model, its selectors, and the client over a real socket,
in pytest-django (async and sync) and in Django's TestCase and TransactionTestCase."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client, TestCase, TransactionTestCase

from django_rt.testing import Document, RTClient, RTError, Selector, SyncRTClient

from .testapp.models import Entry

# the page model ---------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title> Two
 words </title><style>p{}</style></head>
<body><ul id="list"><!--rt:1--><!--rt:1#1--><li data-row-id="1">a</li><!--/rt:1#1-->\
<!--rt:1#2--><li>b</li><!--/rt:1#2--><!--/rt:1--></ul>
<p id="p"><!--rt:2-->x &amp; y<!--/rt:2--></p>
<script type="application/json" data-rt-config>{"v": 1, "events": []}</script>\
<script src="/static/django_rt/rt.js" defer></script></body></html>"""


def test_a_document_reads_as_the_browser_shows_it():
    doc = Document(PAGE)
    assert doc.title == "Two words"
    assert doc.config == {"v": 1, "events": []}
    # The client's own scripts are not part of the page; markers only when asked.
    assert "script" not in doc.html()
    assert doc.html() == (
        '<ul id="list"><li data-row-id="1">a</li><li>b</li></ul>\n<p id="p">x &amp; y</p>\n'
    )
    assert "<!--rt:2-->" in doc.html(markers=True)
    assert doc.select("#p")[0].text == "x & y"
    assert doc.shown == ("Two words", "<style>p{}</style>", doc.html())


def test_patches_apply_as_the_client_applies_them():
    doc = Document(PAGE)
    assert doc.replace_region("2", "<b>new</b>")
    assert doc.select("#p")[0].html == "<b>new</b>"
    # Keys in their new order: item 2 kept as it is, 3 new, 1 gone.
    assert doc.apply_list("1", ["2", "3"], {"3": "<li>c</li>"})
    assert [li.text for li in doc.select("#list li")] == ["b", "c"]
    assert "<!--rt:1#3--><li>c</li><!--/rt:1#3-->" in doc.html(markers=True)
    # A key the page lacks and the op does not give: a miss, and the page is untouched.
    assert not doc.apply_list("1", ["9"], {})
    assert not doc.replace_region("404", "x")
    assert [li.text for li in doc.select("#list li")] == ["b", "c"]
    doc.morph("<main>all new</main>", title="New")
    assert (doc.title, doc.html()) == ("New", "<main>all new</main>")
    doc.patch_head(None, "<title>ignored</title><meta name=x>")
    assert doc.shown[1] == '<meta name="x">' and doc.title == "New"


def test_the_browsers_implied_end_tags():
    doc = Document("<ul><li>a<li>b</ul><p>one<div>two</div><select><option>x<option>y</select>")
    assert doc.html() == (
        "<ul><li>a</li><li>b</li></ul><p>one</p><div>two</div>"
        "<select><option>x</option><option>y</option></select>"
    )


def test_commands_apply_as_the_client_applies_them():
    doc = Document(
        '<div id="a">old</div><p class="x y" id="b">t</p><input id="i"><i id="gone"></i>'
    )

    def run(action, selector, content=None):
        doc.apply_command({"a": action, "s": selector, "c": content})

    run("html", "#a", "<b>bold</b>")
    run("append", "#a", "<i>!</i>")
    run("prepend", "#a", "&gt;")
    assert doc.select("#a")[0].html == "&gt;<b>bold</b><i>!</i>"
    run("text", "#b", "<not markup>")
    assert doc.select("#b")[0].html == "&lt;not markup&gt;"
    run("attr", "#b", {"title": "t", "hidden": True, "id": "b"})
    run("add_class", "#b", "z x")
    run("remove_class", "#b", "y")
    assert doc.select("#b")[0].attrs == {"class": "x z", "id": "b", "title": "t", "hidden": ""}
    run("value", "#i", "typed")
    assert doc.field_value(doc.select("#i")[0]) == "typed"
    run("focus", "#i")
    assert doc.focused is doc.select("#i")[0]
    run("replace", "#gone", "<em>here</em>")
    run("remove", "#a")
    assert doc.html().endswith('<input id="i"><em>here</em>')


FORM = """<form id="f">
<input name="title" value="x"><input name="tags" type="checkbox" value="a" checked>
<input name="tags" type="checkbox" value="b" checked><input name="off" type="checkbox">
<input name="r" type="radio" value="1"><input name="r" type="radio" value="2" checked>
<select name="one"><option>first</option><option value="2">second</option></select>
<select name="many" multiple><option selected>m1</option><option>m2</option>
<option selected>m3</option></select>
<textarea name="body">
text</textarea><input name="gone" disabled value="d"><input type="file" name="upload">
<fieldset disabled><input name="inside" value="i"></fieldset>
<button name="go" value="1">Go</button><p id="p" data-row-id="7">para</p></form>"""


def test_gathered_values_are_what_the_client_gathers():
    doc = Document(FORM)
    form = doc.select("#f")[0]
    assert doc.field_value(form) == {
        "title": "x",
        "tags": ["a", "b"],
        "r": "2",
        "one": "first",
        "many": ["m1", "m3"],
        "body": "text",
    }
    assert doc.field_value(doc.select("[name=off]")[0]) is False
    assert doc.field_value(doc.select("[name=r]")[0]) == "2"  # any radio: its group's value
    assert doc.field_value(doc.select("[name=many]")[0]) == ["m1", "m3"]
    assert doc.field_value(doc.select("#p")[0]) == "para"
    doc.set_value(doc.select("[name=r]")[0], True)
    doc.set_value(doc.select("[name=one]")[0], "2")
    doc.set_value(doc.select("[name=tags]")[1], False)
    assert doc.field_value(form)["r"] == "1"
    assert doc.field_value(form)["one"] == "2"
    assert doc.field_value(form)["tags"] == "a"
    with pytest.raises(ValueError, match="no option"):
        doc.set_value(doc.select("[name=one]")[0], "3")


def test_the_target_of_an_event():
    from django_rt.testing.dom import target_of

    doc = Document(FORM)
    assert target_of(doc.select("#p")[0]) == {
        "id": "p",
        "tag": "p",
        "name": None,
        "value": None,
        "data": {"rowId": "7"},
    }
    assert target_of(doc.select("button")[0])["value"] == "1"


def test_a_replacement_keeps_what_the_user_typed_unless_the_server_changed_it():
    doc = Document('<!--rt:1--><input id="a" value="x"><input name="b" value="y"><!--/rt:1-->')
    a, b = doc.select("#a")[0], doc.select("[name=b]")[0]
    doc.set_value(a, "typed a")
    doc.set_value(b, "typed b")
    doc.focused = a
    doc.replace_region("1", '<input id="a" value="x"><input name="b" value="NEW">')
    assert doc.field_value(doc.select("#a")[0]) == "typed a"
    assert doc.field_value(doc.select("[name=b]")[0]) == "NEW"
    assert doc.focused is doc.select("#a")[0]


@pytest.mark.parametrize(
    ("css", "ids"),
    [
        ("li", ["l1", "l2", "l3"]),
        ("ul > li.on", ["l2"]),
        ("#main li:first-child", ["l1"]),
        ("li:last-child, p", ["l3", "p"]),
        ("li + li", ["l2", "l3"]),
        ("#l1 ~ li", ["l2", "l3"]),
        ("li:nth-child(odd)", ["l1", "l3"]),
        ("li:nth-child(2n)", ["l2"]),
        ("li:not(.on)", ["l1", "l3"]),
        (":is(ul, p) [data-k]", ["l3"]),
        ("[data-k='v w']", ["l3"]),
        ("[data-k~=w]", ["l3"]),
        ("[data-k^=v]", ["l3"]),
        ("[data-k$=W i]", ["l3"]),
        ("[data-k*=' ']", ["l3"]),
        ("form[method=POST i]", ["f"]),
        ("form[method=POST]", []),
        ("div:has(li.on)", ["main"]),
        ("input:checked, input:disabled", ["c", "d"]),
        ("b:empty", ["e"]),
        ("*#p", ["p"]),
    ],
)
def test_selectors(css, ids):
    doc = Document(
        '<div id="main"><ul><li id="l1">1</li><li id="l2" class="on">2</li>'
        '<li id="l3" data-k="v w">3</li></ul><p id="p">p</p></div>'
        '<form id="f" method="post"><input type="checkbox" id="c" checked>'
        '<input id="d" disabled><b id="e"><!--c--></b></form>'
    )
    assert [el.id for el in doc.select(css)] == ids


@pytest.mark.parametrize("css", ["li::before", "a:hover", "[x", "", "a >", ":nth-child(x)"])
def test_unsupported_selectors_are_refused(css):
    with pytest.raises(ValueError, match="CSS selector"):
        Selector(css)


# the client, async ------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
async def test_open_click_gather_and_read_back():
    async with RTClient() as rt:
        page = await rt.open("/")
        assert page.title == "Example" and page.text("#result") == ""
        commands = await page.click("#mybutton", gathered={"#myinput": "hi"})
        assert commands == [{"a": "html", "s": "#result", "c": "Result: hi"}]
        assert page.text("#result") == "Result: hi"
        # Without gathered=, the values come from the page's fields.
        await page.fill("#myinput", "typed")
        await page.click("#mybutton")
        assert page.text("#result") == "Result: typed"
        # A key filter: only Enter calls the handler bound to keydown.enter.
        await page.fire("keydown.enter", "#myinput")
        assert page.text("#entered") == "Entered: typed"
        with pytest.raises(LookupError, match="no binding"):
            await page.fire("keydown", "#myinput", key="a")


@pytestmark_db
async def test_refusals_and_failures_raise_with_their_code():
    async with RTClient() as rt:
        typed = await rt.open("/typed/")
        with pytest.raises(RTError) as refused:
            await typed.click("#go", gathered={"#count": "three"})
        assert refused.value.code == "invalid_value" and "count" in refused.value.message
        page = await rt.open("/")
        with pytest.raises(RTError) as failed:
            await page.click("#fail")
        assert failed.value.code == "handler_error"
        with pytest.raises(ValueError, match="no binding of 'click' gathers"):
            await page.click("#mybutton", gathered={"#nowhere": "x"})
        with pytest.raises(LookupError, match="no element"):
            await page.click("#absent")


@pytestmark_db
async def test_redirects_dispatches_and_attributes_are_recorded():
    async with RTClient() as rt:
        page = await rt.open("/actions/")
        await page.click("#all")
        assert page.redirected_to == "/elsewhere/"
        assert page.dispatched == [("done", {"n": 1}, None)]
        assert page.element("#c").get("title") == "t"
        assert page.text("#b") == "t"


@pytestmark_db
async def test_a_saved_row_reaches_every_open_page():
    alice = await sync_to_async(User.objects.create_user)("alice", password="pw")
    async with RTClient(user=alice) as rt:
        mine = await rt.open("/live/mine/")
        everyone = await rt.open("/live/entries/", client=Client())
        await sync_to_async(Entry.objects.create)(name="hers", owner=alice)
        await sync_to_async(Entry.objects.create)(name="nobody's")
        await rt.settle()
        assert mine.texts("#list .name") == ["hers"]
        assert sorted(everyone.texts("#list .name")) == ["hers", "nobody's"]
        assert mine.ops["region"] >= 1 and not mine.misses


@pytestmark_db
async def test_a_page_that_lost_a_region_resyncs():
    entry = await sync_to_async(Entry.objects.create)(name="one")
    async with RTClient() as rt:
        page = await rt.open(f"/live/entry/{entry.pk}/")
        # A command replaced the region's markup (the README warns against it).
        page.document.apply_command({"a": "html", "s": "h1", "c": "mine"})
        entry.name = "two"
        await sync_to_async(entry.save)()
        await page.settle()
        assert page.misses and page.ops["morph"] == 1
        assert page.text("h1") == "two"
        assert page.shown == await page.fresh()


@pytestmark_db
async def test_a_reload_op_loads_the_page_again():
    entry = await sync_to_async(Entry.objects.create)(name="shown")
    async with RTClient() as rt:
        page = await rt.open(f"/live/entry/{entry.pk}/")
        await sync_to_async(entry.delete)()
        await page.settle()
        # The view now answers 404 to the page's URL: the reload found nothing to show.
        assert page.reloads == 1 and page.status_code == 404


@pytestmark_db
async def test_a_refused_join_raises():
    async with RTClient() as rt:
        page = await rt.open("/private/", user=await sync_to_async(User.objects.create_user)("a"))
        assert page.element("#who") is not None
        client = Client()
        response = await sync_to_async(client.get)("/")
        page.client = client  # another browser, with this page's token
        with pytest.raises(RTError) as refused:
            await page.reconnect()
        assert refused.value.code == "forbidden"
        del response


# the client, sync, in Django's test cases -------------------------------------------


class SyncClientInATestCase(TestCase):
    """The page's database work runs in the test's transaction: it sees the test's rows."""

    def test_rows_of_the_test_and_changes_saved_on_commit(self):
        Entry.objects.create(name="seen")
        with SyncRTClient() as rt:
            page = rt.open("/entries/")
            assert page.texts("li") == ["seen"]
            with self.captureOnCommitCallbacks(execute=True):
                Entry.objects.create(name="later")
            page.settle()
            assert page.texts("li") == ["seen", "later"]
            page.close()

    def test_handlers_see_the_logged_in_user(self):
        user = User.objects.create_user("bob")
        client = Client()
        client.force_login(user)
        with SyncRTClient(client=client) as rt:
            page = rt.open("/private/")
            page.click("#whoami")
            assert page.text("#who") == "bob"

    async def test_async_in_a_test_case(self):
        await sync_to_async(Entry.objects.create)(name="async")
        async with RTClient() as rt:
            page = await rt.open("/entries/")
            assert page.texts("li") == ["async"]


class SyncClientInATransactionTestCase(TransactionTestCase):
    def test_a_save_commits_and_the_page_follows(self):
        with SyncRTClient() as rt:
            page = rt.open("/live/counter/")
            page.click("#bump")
            page.click("#bump")
            assert page.text("#counter") == "2"
            entries = rt.open("/entries/")
            Entry.objects.create(name="committed")
            entries.settle()
            assert entries.texts("li") == ["committed"]


@pytestmark_db
async def test_a_broadcast_reaches_the_page():
    from django_rt import RTResponse, broadcast

    from .testapp.truth import BroadcastView

    async with RTClient() as rt:
        page = await rt.open("/truth/broadcast/")
        await sync_to_async(broadcast)(BroadcastView, RTResponse("#result", "to all"))
        await page.settle()
        assert page.text("#result") == "to all"
