"""The live engine's HTML tools: the state scanner (where a comment marker is valid)
and ``is_balanced`` (whether markers around a fragment end up as DOM siblings)."""

from __future__ import annotations

import pytest

from django_rt.live.html import (
    DATA,
    Mode,
    State,
    is_balanced,
    neutralise,
    neutralise_at,
    read,
    scan,
)


def mode_after(*chunks: str) -> State:
    state = DATA
    for chunk in chunks:
        state = scan(state, chunk)
    return state


# scan ----------------------------------------------------------------------------------

SCAN_CASES = [
    # element content
    ("", Mode.DATA),
    ("plain text", Mode.DATA),
    ("<p>text</p> more", Mode.DATA),
    ("<div><span>x</span></div>", Mode.DATA),
    ("a &amp; b", Mode.DATA),
    # "<" not followed by a letter is text
    ("a < b", Mode.DATA),
    ("1 <3", Mode.DATA),
    ("<", Mode.TAG_OPEN),
    ("< div", Mode.DATA),
    ("<=", Mode.DATA),
    # tags and attributes
    ("<div", Mode.TAG_NAME),
    ("<div ", Mode.IN_TAG),
    ("<div\n", Mode.IN_TAG),
    ("<input disabled", Mode.IN_TAG),
    ("<div class", Mode.IN_TAG),
    ("<div class=", Mode.BEFORE_VALUE),
    ("<div class= ", Mode.BEFORE_VALUE),
    ('<div class="', Mode.VALUE_DOUBLE),
    ('<div class="a b', Mode.VALUE_DOUBLE),
    ('<div title="a > b', Mode.VALUE_DOUBLE),
    ("<div title=\"it's", Mode.VALUE_DOUBLE),
    ("<div class='", Mode.VALUE_SINGLE),
    ("<div title='a > b", Mode.VALUE_SINGLE),
    ("<div title='say \"hi", Mode.VALUE_SINGLE),
    ("<div class=a", Mode.VALUE_UNQUOTED),
    ("<div class=a ", Mode.IN_TAG),
    ('<div class="a"', Mode.IN_TAG),
    ("<div class='a'", Mode.IN_TAG),
    ('<div class="a">', Mode.DATA),
    ("<div class='a'>", Mode.DATA),
    ("<div class=a>", Mode.DATA),
    ("<div class=>", Mode.DATA),
    ('<div title="a > b">after', Mode.DATA),
    ("<a href=\"x\" title='y' data-z=w>", Mode.DATA),
    ("<br/>", Mode.DATA),
    ("<br />", Mode.DATA),
    ('<img src="a.png"/>', Mode.DATA),
    ("<DIV CLASS='X'>", Mode.DATA),
    # end tags
    ("</", Mode.END_TAG),
    ("</div", Mode.END_TAG),
    ("</div ", Mode.END_TAG),
    ("</div>", Mode.DATA),
    ("<p>a</p>", Mode.DATA),
    # comments
    ("<!", Mode.MARKUP),
    ("<!-", Mode.MARKUP),
    ("<!--", Mode.COMMENT),
    ("<!-- x", Mode.COMMENT),
    ("<!-- <div> ", Mode.COMMENT),
    ("<!-- a -- b ", Mode.COMMENT),
    ("<!-- a -", Mode.COMMENT),
    ("<!-- a --", Mode.COMMENT),
    ("<!-- x -->", Mode.DATA),
    ("<!-- <script> -->", Mode.DATA),
    ("<!-- a -- b -->", Mode.DATA),
    ("<!---->", Mode.DATA),
    ("<!-- x --> y", Mode.DATA),
    # doctype, processing instructions, bogus markup
    ("<!DOCTYPE html", Mode.BOGUS),
    ("<!DOCTYPE html>", Mode.DATA),
    ("<!doctype html><html>", Mode.DATA),
    ("<?xml", Mode.BOGUS),
    ('<?xml version="1.0"?>', Mode.DATA),
    ("<!>", Mode.DATA),
    ("<![CDATA[x]]>", Mode.DATA),
    ("<!-x", Mode.BOGUS),
    ("<!-x>", Mode.DATA),
]


@pytest.mark.parametrize(("text", "mode"), SCAN_CASES)
def test_scan_mode(text: str, mode: Mode) -> None:
    assert scan(DATA, text).mode is mode


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("<script>", "script"),
        ("<script type='module'>", "script"),
        ('<script src="a.js" defer>', "script"),
        ("<script>if (a < b) {", "script"),
        ("<script>var s = '<div>';", "script"),
        ("<script>var s = '<!--", "script"),
        ("<script>x</scripts>", "script"),
        ("<script>x</scrip", "script"),
        ("<script>x</script", "script"),  # not closed before a delimiter follows
        ("<script>x</style>", "script"),
        ("<SCRIPT>", "script"),
        ("<style>", "style"),
        ("<style>a > b { color: red }", "style"),
        ("<style>p::after { content: '<p>' }", "style"),
        ("<textarea>", "textarea"),
        ("<textarea name=t rows=3>", "textarea"),
        ("<textarea><b>", "textarea"),
        ("<textarea/>", "textarea"),  # HTML ignores the slash: raw text follows
        ("<title>", "title"),
        ("<TITLE>Page", "title"),
        ("<title><b>not a tag", "title"),
    ],
)
def test_scan_raw_text(text: str, raw: str) -> None:
    state = scan(DATA, text)
    assert state.mode is Mode.RAW_TEXT
    assert state.raw == raw
    assert not state.markable


@pytest.mark.parametrize(
    "text",
    [
        "<script>x</script>",
        "<script>x</SCRIPT>",
        "<SCRIPT>x</script>",
        "<ScRiPt>x</sCrIpT>",
        "<script>if (a < b && c > d) {}</script>",
        "<script>var s = '<div>';</script>",
        # The HTML tokenizer ends a script at "</script" even inside a JS string.
        '<script>var s = "</script>',
        "<script>var s = '</script>",
        "<script>// </script>",
        "<style>a > b {}</style>",
        "<style></style>",
        "<textarea><div></textarea>",
        "<textarea>a</TEXTAREA>",
        "<title>x</title>",
        "<title><b></title>",
        "<title>a</title><p>",
        "<script>a</script><style>b</style><title>c</title><textarea>d</textarea>",
    ],
)
def test_scan_raw_text_ends(text: str) -> None:
    state = scan(DATA, text)
    assert state.mode is Mode.DATA
    assert state.raw == ""
    assert state.markable


def test_scan_raw_text_end_tag_with_space_or_slash() -> None:
    assert scan(DATA, "<script>x</script ").mode is Mode.END_TAG
    assert scan(DATA, "<script>x</script ").raw == ""
    assert scan(DATA, "<script>x</script >").mode is Mode.DATA
    assert scan(DATA, "<script>x</script/>").mode is Mode.DATA
    assert scan(DATA, "<title>x</title\n>").mode is Mode.DATA


def test_scan_string_ish_end_tag_ends_script_then_text_is_data() -> None:
    # What follows the premature "</script>" is element content, as in a browser.
    state = scan(DATA, '<script>var s = "</script>"; after')
    assert state.mode is Mode.DATA


def test_scan_other_end_tags_inside_raw_text_do_not_end_it() -> None:
    assert scan(DATA, "<title></b></p></div>").mode is Mode.RAW_TEXT
    assert scan(DATA, "<textarea></title>").raw == "textarea"
    assert scan(DATA, "<style></script>").raw == "style"


def test_scan_tag_name_is_read_lowercased() -> None:
    state = scan(DATA, "<DiV")
    assert state.mode is Mode.TAG_NAME
    assert state.name == "div"
    assert scan(DATA, "<Script ").name == "script"


def test_scan_tag_name_that_merely_starts_like_a_raw_text_element() -> None:
    assert scan(DATA, "<scripts>").mode is Mode.DATA
    assert scan(DATA, "<titles>").mode is Mode.DATA
    assert scan(DATA, "<tit>").mode is Mode.DATA


@pytest.mark.parametrize(
    "text",
    [
        '<!doctype html><html><head><title>T</title><style>a>b{}</style></head><body class="x">',
        "<p title='a > b'>x</p><!-- c --><script>if(a<b){}</script>t",
        '<div data-x="</div>">y</div><textarea><b></textarea><?pi?><br/>',
        "<ul><li>1</li></ul><!---->",
        "<table><tr><td>a</td></tr></table> < > <3",
    ],
)
def test_scan_in_chunks_equals_scan_whole(text: str) -> None:
    """Templates are scanned text node by text node: any split gives the same state."""
    whole = scan(DATA, text)
    for cut in range(len(text) + 1):
        assert scan(scan(DATA, text[:cut]), text[cut:]).mode is whole.mode, cut
    one_by_one = mode_after(*text)
    assert one_by_one.mode is whole.mode


def test_scan_end_tag_split_across_chunks() -> None:
    assert mode_after("<script>a</scr", "ipt>").mode is Mode.DATA
    assert mode_after("<title>a</", "title", ">").mode is Mode.DATA
    assert mode_after("<!-", "-", " x -", "->").mode is Mode.DATA
    assert mode_after("<div cl", "ass=", '"', "x").mode is Mode.VALUE_DOUBLE


def test_scan_from_a_non_data_state() -> None:
    in_value = scan(DATA, '<a href="')
    assert scan(in_value, "/x").mode is Mode.VALUE_DOUBLE
    assert scan(in_value, '/x">').mode is Mode.DATA
    in_comment = scan(DATA, "<!--")
    assert scan(in_comment, "<p>").mode is Mode.COMMENT


def test_state_markable_only_in_data() -> None:
    assert DATA.markable
    assert State().mode is Mode.DATA
    for mode in Mode:
        assert State(mode=mode).markable is (mode is Mode.DATA)


def test_scan_returns_new_state_and_keeps_input() -> None:
    before = scan(DATA, "<div")
    after = scan(before, " class")
    assert before.mode is Mode.TAG_NAME
    assert after.mode is Mode.IN_TAG
    assert State() == DATA


def test_scan_double_less_than_then_tag() -> None:
    assert scan(DATA, '<<b title="').mode is Mode.VALUE_DOUBLE


@pytest.mark.parametrize("text", ["<!-->", "<!--->"])
def test_scan_abrupt_empty_comment(text: str) -> None:
    assert scan(DATA, text).mode is Mode.DATA


# is_balanced ---------------------------------------------------------------------------

BALANCED = [
    "",
    "text only",
    "a < b and c > d",
    "<p>a</p>",
    "<p>a</p><p>b</p>",
    "<div><p>x</p><span>y</span></div>",
    "<ul><li>a</li><li>b</li></ul>",
    "<DIV>x</div>",
    "<div>x</DIV>",
    # void elements
    "<br>",
    "<hr>",
    "<p>a<br>b</p>",
    '<img src="x.png" alt="x">',
    "<input name=q value=x>",
    '<meta charset="utf-8"><link rel="stylesheet" href="a.css">',
    "<area><base><col><embed><param><source><track><wbr>",
    # self-closing syntax on void and foreign elements
    "<br/>",
    "<br />",
    '<img src="x"/>',
    '<svg viewBox="0 0 1 1"><circle r="1"/><path d="M0 0"/></svg>',
    # comments
    "<!-- c -->",
    "<!-- <div> -->",
    "<p>a<!-- </p> --></p>",
    "<div><!-- x --></div>",
    "<!---->",
    # attributes containing '>' or tag-like text in quotes
    '<div title="a>b">x</div>',
    "<div title='a>b'>x</div>",
    '<div title="</div>">x</div>',
    "<a href='?a=1&b=2' title=\"it's >\">x</a>",
    # raw text elements holding markup-like text
    "<script>if (a<b) document.write('<div>')</script>",
    "<script>var s = '<p>';</script><p>after</p>",
    "<style>p>a{content:'<b>'}</style>",
    "<textarea><div></textarea>",
    "<title><b></title>",
    "<SCRIPT>x</script>",
    "<script>x</SCRIPT >",
    '<script type="application/json">{"a": "<x>"}</script>',
    # doctype and processing instructions are not elements
    "<!DOCTYPE html><p>x</p>",
    "<?xml version='1.0'?><svg></svg>",
    # tables and selects written out in full
    "<table><tbody><tr><td>a</td></tr></tbody></table>",
    '<select><option value="1">a</option><option>b</option></select>',
    # comment markers of nested regions
    "<!--rt:1.1-->x<!--/rt:1.1--><b><!--rt:1.2-->y<!--/rt:1.2--></b>",
]

UNBALANCED = [
    # a tag, a comment or markup left unfinished at the end: what follows (a marker) is in it
    "a <b",
    "a <b title='x",
    'a <b title="x>y',
    "x </p",
    "x <",
    "x </",
    "<!",
    "<!doctype",
    "a <!-- open",
    "a <?x",
    # the end is in the middle of something a comment after it would split
    "a &amp",
    "a &",
    "a &#38",
    "AT&T",
    "line\r",
    "<pre>",
    # markup inside SVG raw-text-named elements: the browser reads it as elements
    "<svg><style>a<b</style></svg>",
    # unclosed
    "<div>",
    "<div><p>x</p>",
    "<p>a",
    "<span>x",
    # stray end tag
    "</div>",
    "x</p>",
    "<div>a</div></div>",
    # misnested
    "<div></span>",
    "<div><span></div></span>",
    "<b><i>x</b></i>",
    # optional end tags refused
    "<li>a<li>b",
    "<ul><li>a</ul>",
    "<p>a<p>b",
    "<table><tr><td>a</table>",
    "<select><option>a<option>b</select>",
    # unclosed comment or raw text
    "<!-- open",
    "<p><!-- </p>",
    "<script>x",
    "<textarea>",
    "<style>a{}",
    "<title>x</titl>",
    # a tag name inside quotes does not close the element
    '<div title="</div>">',
]


@pytest.mark.parametrize("html", BALANCED)
def test_balanced(html: str) -> None:
    assert is_balanced(html)


@pytest.mark.parametrize("html", UNBALANCED)
def test_unbalanced(html: str) -> None:
    assert not is_balanced(html)


def test_balanced_concatenation_and_nesting() -> None:
    parts = ["<p>a</p>", "<br>", "<!-- c -->", "<script>'<div>'</script>", "x"]
    assert is_balanced("".join(parts))
    assert is_balanced("<section>" + "".join(parts) + "</section>")
    assert not is_balanced("<section>" + "".join(parts))


def test_deep_nesting() -> None:
    depth = 200
    html = "<div>" * depth + "x" + "</div>" * depth
    assert is_balanced(html)
    assert not is_balanced(html[: -len("</div>")])


@pytest.mark.parametrize("html", ["<span/>", "<div/>text", "<a href=/x/>"])
def test_self_closing_non_void_html_element_is_not_closed(html: str) -> None:
    assert not is_balanced(html)


def test_unquoted_value_ending_in_slash() -> None:
    assert is_balanced("<a href=/x/>x</a>")


def test_unfinished_markup_in_the_middle_is_still_read_as_the_browser_does() -> None:
    # The ">" inside quotes does not end the tag; a quote in a name does not start a value.
    assert is_balanced("<b title='a > b'>x</b>")
    assert is_balanced('<b a"b>x</b>')
    assert not is_balanced('<b a="b>x</b>')
    # A tag name runs up to a space, "/" or ">": "<b<i>" is one tag, named "b<i".
    assert not is_balanced("<b<i>x</i></b>")


# scan: where a comment would split something -----------------------------------------


@pytest.mark.parametrize(
    "text",
    ["<pre>", "<PRE class=x>", "<listing>", "<p>a &", "a &am", "a &#3", "a &#x", "a\r"],
)
def test_scan_edges_are_not_markable(text: str) -> None:
    state = scan(DATA, text)
    assert state.mode is Mode.DATA
    assert state.edge
    assert not state.markable


@pytest.mark.parametrize(
    "text",
    ["<pre>x", "<pre>\n", "<pre><b>", "<pre><!-- c -->", "a &amp;", "a & b", "a\r\n", "<p>"],
)
def test_scan_markable_again_after_text(text: str) -> None:
    assert scan(DATA, text).markable


def test_scan_inside_template_is_not_markable() -> None:
    assert not scan(DATA, "<template><p>").markable
    assert scan(DATA, "<template><p></p></template>").markable


# read ----------------------------------------------------------------------------------


def markers(html: str) -> list[tuple[str, bool, bool]]:
    return [(m.data, m.exact, m.placed) for m in read(html).markers]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # in element content: both markers placed
        ("<p><!--rt:1-->x<!--/rt:1--></p>", [("rt:1", True, True), ("/rt:1", True, True)]),
        ("<pre>\n<!--rt:1-->x<!--/rt:1--></pre>", [("rt:1", True, True), ("/rt:1", True, True)]),
        # right after <pre>: the newline the browser drops would become content
        ("<pre><!--rt:1-->\nx<!--/rt:1--></pre>", [("rt:1", True, False), ("/rt:1", True, True)]),
        ("<listing><!--rt:1--><!--rt:1.1-->", [("rt:1", True, False), ("rt:1.1", True, False)]),
        # an unfinished tag swallows the start marker; the end marker is a comment again
        ("a <b<!--rt:2-->Y<!--/rt:2-->", [("/rt:2", True, True)]),
        # "<" before a marker: without it, "<b" would be a tag
        ("1 <<!--rt:2-->b<!--/rt:2-->", [("rt:2", True, False), ("/rt:2", True, True)]),
        # a character reference or a CRLF split by the marker
        ("&am<!--rt:1-->p;<!--/rt:1-->", [("rt:1", True, False), ("/rt:1", True, True)]),
        ("a\r<!--rt:1-->\n<!--/rt:1-->", [("rt:1", True, False), ("/rt:1", True, True)]),
        # comments the rows of a table would leave behind, or text a table would move out
        (
            "<table><!--rt:1--><tr></tr><!--/rt:1--></table>",
            [("rt:1", True, False), ("/rt:1", True, False)],
        ),
        ("<tr><!--rt:1-->text<!--/rt:1--></tr>", [("rt:1", True, False), ("/rt:1", True, False)]),
        (
            "<tr><!--rt:1--><td>a</td><!--/rt:1--></tr>",
            [("rt:1", True, True), ("/rt:1", True, True)],
        ),
        # not in the page's tree
        (
            "<template><!--rt:1-->x<!--/rt:1--></template>",
            [("rt:1", True, False), ("/rt:1", True, False)],
        ),
        # raw text, attributes, other comments: no comment at all
        ("<script>'<!--rt:1-->'</script>", []),
        ("<textarea><!--rt:1--></textarea>", []),
        ("<a title='<!--rt:1-->'>x</a>", []),
        ("<!-- <!--rt:1--> -->", []),
        # bogus comments the client would still take for markers: never as the engine writes
        ("<!rt:1>", [("rt:1", False, False)]),
        ("<!/rt:1>", [("/rt:1", False, False)]),
        ("<//rt:1>", [("/rt:1", False, False)]),
        ("<!--rt:1--!>", [("rt:1", False, False)]),
        # after markup in an SVG <style>, this model may not be the browser's
        ("<svg><style>a<b</style><!--rt:1--></svg>", [("rt:1", True, False)]),
        ("<svg><style>a{}</style><!--rt:1--></svg>", [("rt:1", True, True)]),
    ],
)
def test_read_markers(html: str, expected: list[tuple[str, bool, bool]]) -> None:
    assert markers(html) == expected


def test_read_markers_are_transparent() -> None:
    # What a marker follows is the text before it and any markers next to it.
    assert markers("<pre><!--rt:1--><!--rt:1.1-->x") == [
        ("rt:1", True, False),
        ("rt:1.1", True, False),
    ]
    assert markers("&am<!--/rt:1--><!--rt:2-->p;")[1] == ("rt:2", True, False)
    # A comment of the page's own is not: the text before it ends there.
    assert markers("&am<!-- c --><!--rt:2-->p;") == [("rt:2", True, True)]


@pytest.mark.parametrize(
    ("html", "end"),
    [
        ("<script>a</script><p>x</p>", "<p>"),
        ("<script>'</script>'<p>", "'<p>"),
        # After "<!--", a "<script" hides the next "</script>" until "-->".
        ("<script><!--<script></script>x--></script><p>", "<p>"),
        ("<script><!--</script><p>", "<p>"),
        ("<script><!--><script></script><p>", "<p>"),
        ("<style><!--</style><p>", "<p>"),
        ("<title><b></title><p>", "<p>"),
    ],
)
def test_read_raw_text_ends_where_the_browser_ends_it(html: str, end: str) -> None:
    marker = "<!--rt:9-->"
    at = html.index(end)
    assert markers(html[:at] + marker + html[at:]) == [("rt:9", True, True)]


def test_read_script_double_escape_keeps_the_script_open() -> None:
    assert markers("<script><!--<script></script><!--rt:9-->") == []


def test_read_foreign_content() -> None:
    assert is_balanced('<svg><circle r="1"/><text>a</text></svg>')
    assert is_balanced("<math><mi>x</mi></math>")
    # CDATA is text in SVG, a bogus comment in HTML
    assert markers("<svg><![CDATA[ <!--rt:1--> ]]></svg>") == []
    assert markers("<p><![CDATA[ x ]]><!--rt:1--></p>") == [("rt:1", True, True)]
    # An HTML element breaks out of SVG: its <style> is raw text again
    assert markers("<svg><p><style><!--rt:1--></style></p></svg>") == []
    # Inside <foreignObject> the children are HTML
    assert is_balanced("<svg><foreignObject><textarea><b></textarea></foreignObject></svg>")


def test_read_loose_text() -> None:
    assert read("text").loose_text
    assert read("<b>x</b> y").loose_text
    assert not read("<tr><td>x</td></tr>\n").loose_text
    assert not read("").loose_text


# neutralise ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<!--rt:8-->x<!--/rt:8-->", "<!-- rt:8-->x<!-- /rt:8-->"),
        ("<!rt:8><!/rt:8>", "<! rt:8><! /rt:8>"),
        ("<//rt:8>", "</ /rt:8>"),
        # not markers to the client: left alone
        ("<!-- rt:8--><!--RT:8--></rt:8><!--django-rt:script-->", None),
        ("a rt: b <!--x-->", None),
    ],
)
def test_neutralise(html: str, expected: str | None) -> None:
    assert neutralise(html) == (html if expected is None else expected)
    assert neutralise(neutralise(html)) == neutralise(html)
    # what the client would take for a marker: none left
    assert all(not m.data.startswith(("rt:", "/rt:")) for m in read(neutralise(html)).markers)


def test_neutralise_at() -> None:
    html = "<!--rt:1-->a<!--rt:2-->b"
    assert neutralise_at(html, [html.index("<!--rt:2")]) == "<!--rt:1-->a<!-- rt:2-->b"
    assert neutralise_at(html, []) == html


# read past checked regions -------------------------------------------------------------


def test_read_past_a_checked_region() -> None:
    html = "<p><!--rt:1--><b>x</b> <i>unclosed<!--/rt:1--></p>"
    # What a checked region holds is not read again (here: not even the unclosed <i>).
    reading = read(html, {"1": "<b>x</b> <i>unclosed"})
    assert reading.skipped == {"1"}
    assert reading.balanced
    assert [(m.data, m.placed, m.read_past) for m in reading.markers] == [
        ("rt:1", True, True),
        ("/rt:1", True, True),
    ]
    assert not read(html).balanced


def test_read_past_only_what_the_region_holds() -> None:
    # A copy of the start marker, before other content: read, not read past.
    html = "<!--rt:1-->copy<!--rt:1-->x<!--/rt:1-->"
    reading = read(html, {"1": "x"})
    assert [(m.data, m.read_past) for m in reading.markers] == [
        ("rt:1", False),
        ("rt:1", True),
        ("/rt:1", True),
    ]
    # Not where the marker is not placed: what it holds is read again.
    reading = read("&am<!--rt:1-->p;<!--/rt:1-->", {"1": "p;"})
    assert reading.skipped == frozenset()


def test_read_past_keeps_what_a_table_would_move_out() -> None:
    html = "<tr><!--rt:1-->text<!--/rt:1--></tr>"
    assert [m.placed for m in read(html, {"1": "text"}, {"1"}).markers] == [False, False]
    assert [m.placed for m in read(html, {"1": "text"}).markers] == [False, False]
    rows = "<tr><!--rt:1--><td>a</td><!--/rt:1--></tr>"
    assert [m.placed for m in read(rows, {"1": "<td>a</td>"}, set()).markers] == [True, True]
    # Text of a region read past is the fragment's own.
    assert read("<!--rt:1-->text<!--/rt:1-->", {"1": "text"}, {"1"}).loose_text
    assert not read("<!--rt:1--><b>x</b><!--/rt:1-->", {"1": "<b>x</b>"}, set()).loose_text
