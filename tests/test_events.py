"""``RTView.event``, ``collect_handlers``, ``Handler`` and ``EventBinding``."""

# No ``from __future__ import annotations`` here: the views below are defined inside the
# tests, and their annotations must be objects, not strings naming test locals.

import enum
from typing import Any, Literal

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_rt import EventTarget, RTResponse, RTView
from django_rt.coercion import InvalidValue
from django_rt.events import BINDINGS_ATTRIBUTE, EventBinding, Handler, collect_handlers, event
from django_rt.protocol import BindingKey


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


def binding_of(function) -> EventBinding:
    (binding,) = getattr(function, BINDINGS_ATTRIBUTE)
    return binding


# the decorator --------------------------------------------------------------------


def test_event_is_the_decorator_of_the_module():
    assert RTView.event is event


def test_plain_event():
    @event("click", "#go")
    def handler(self, request):
        pass

    assert binding_of(handler) == EventBinding(event="click", selector="#go")


@pytest.mark.parametrize(
    ("name", "event_name", "key"),
    [
        ("keydown.enter", "keydown", "enter"),
        ("keyup.Escape", "keyup", "escape"),
        ("keydown.a", "keydown", "a"),
        ("keydown.arrow-up", "keydown", "arrow-up"),
        ("keydown.page down", "keydown", "page down"),
        ("rt:custom-event", "rt:custom-event", None),
        ("focusout", "focusout", None),
    ],
)
def test_event_name_and_key_filter(name, event_name, key):
    @event(name, "#x")
    def handler(self, request):
        pass

    binding = binding_of(handler)
    assert (binding.event, binding.key) == (event_name, key)


@pytest.mark.parametrize("name", ["", "1click", "click me", "<script>", ".enter", "-x"])
def test_bad_event_name(name):
    with pytest.raises(ValueError, match="is not a DOM event name"):
        event(name, "#x")


@pytest.mark.parametrize("name", ["keydown.ctrl+s", "keydown.a.b", "keydown.<b>", "keydown."])
def test_bad_key_name(name):
    with pytest.raises(ValueError, match="is not a key name"):
        event(name, "#x")


@pytest.mark.parametrize(
    ("name", "selector"), [("click", ""), ("click", "   "), ("click", None), (None, "#x")]
)
def test_event_needs_a_name_and_a_selector(name, selector):
    with pytest.raises(TypeError, match="non-empty CSS selector"):
        event(name, selector)


@pytest.mark.parametrize("option", ["debounce", "throttle"])
def test_debounce_and_throttle_in_milliseconds(option):
    @event("input", "#q", **{option: 300})
    def handler(self, request):
        pass

    assert getattr(binding_of(handler), option) == 300

    @event("input", "#q", **{option: 0})
    def handler_zero(self, request):
        pass

    assert getattr(binding_of(handler_zero), option) == 0


@pytest.mark.parametrize("option", ["debounce", "throttle"])
@pytest.mark.parametrize("value", [-1, 1.5, "300", True])
def test_bad_debounce_or_throttle(option, value):
    with pytest.raises(TypeError, match=f"{option}= must be a non-negative int of milliseconds"):
        event("input", "#q", **{option: value})


def test_debounce_and_throttle_together_are_refused():
    with pytest.raises(TypeError, match="use debounce= or throttle=, not both"):
        event("input", "#q", debounce=100, throttle=100)


def test_prevent_default_is_on_for_submit_only():
    assert (
        event("submit", "form")(lambda self, request: None)._rt_bindings[0].prevent_default is True
    )
    assert event("click", "a")(lambda self, request: None)._rt_bindings[0].prevent_default is False
    off = event("submit", "form", prevent_default=False)(lambda self, request: None)
    assert off._rt_bindings[0].prevent_default is False
    on = event("click", "a", prevent_default=True, stop_propagation=True)(
        lambda self, request: None
    )
    assert on._rt_bindings[0].prevent_default is True
    assert on._rt_bindings[0].stop_propagation is True


def test_stacked_decorators_keep_source_order():
    @event("click", "#a")
    @event("keydown.enter", "#b", debounce=10)
    @event("submit", "#c")
    def handler(self, request):
        pass

    bindings = getattr(handler, BINDINGS_ATTRIBUTE)
    assert [(b.event, b.selector) for b in bindings] == [
        ("click", "#a"),
        ("keydown", "#b"),
        ("submit", "#c"),
    ]
    assert bindings[1].debounce == 10 and bindings[1].key == "enter"


def test_decorator_returns_the_function_itself():
    def handler(self, request):
        pass

    assert event("click", "#a")(handler) is handler


def test_decorating_something_not_callable_is_refused():
    with pytest.raises(TypeError, match="decorates a view method"):
        event("click", "#a")("not a function")


# collect_handlers -----------------------------------------------------------------


class Parent(RTView):
    template_name = "testapp/example.html"

    @RTView.event("click", "#save")
    def save(self, request, title="#title"):
        return RTResponse("#out", "parent")

    @RTView.event("click", "#remove")
    def remove(self, request):
        pass

    @RTView.event("click", "#gone")
    def gone(self, request):
        pass

    def helper(self, request, value="#not-gathered"):
        """Not decorated: not a handler."""


class Child(Parent):
    # Overridden without the decorator: keeps the parent's bindings, its own signature.
    def save(self, request, title="#title", body="#body"):
        return RTResponse("#out", "child")

    gone = None

    @RTView.event("change", "#extra")
    async def extra(self, request):
        pass


class Rebound(Parent):
    @RTView.event("dblclick", "#save")
    def save(self, request):
        pass


def test_handlers_of_a_view():
    assert set(Parent.rt_handlers) == {"save", "remove", "gone"}
    save = Parent.rt_handlers["save"]
    assert save.name == "save" and save.function is vars(Parent)["save"]
    assert save.gathered == {"title": "#title"}
    assert save.bindings == (EventBinding("click", "#save"),)
    assert collect_handlers(Parent).keys() == Parent.rt_handlers.keys()


def test_undecorated_methods_and_rtview_methods_are_not_handlers():
    assert "helper" not in Parent.rt_handlers
    assert not {"get", "dispatch", "setup", "rt_config", "rt_script"} & set(Parent.rt_handlers)
    assert RTView.rt_handlers == {}


def test_inherited_override_keeps_bindings_and_takes_the_new_signature():
    save = Child.rt_handlers["save"]
    assert save.bindings == Parent.rt_handlers["save"].bindings
    assert save.function is vars(Child)["save"]
    assert save.gathered == {"title": "#title", "body": "#body"}
    # The parent's own handler is untouched.
    assert Parent.rt_handlers["save"].gathered == {"title": "#title"}


def test_none_unbinds_an_inherited_handler():
    assert "gone" not in Child.rt_handlers
    assert "gone" in Parent.rt_handlers
    assert set(Child.rt_handlers) == {"save", "remove", "extra"}


def test_redecorated_override_replaces_the_bindings():
    assert Rebound.rt_handlers["save"].bindings == (EventBinding("dblclick", "#save"),)
    assert Rebound.rt_handlers["save"].gathered == {}


def test_async_detection():
    assert Child.rt_handlers["extra"].is_async is True
    assert Child.rt_handlers["save"].is_async is False


def test_mixin_handlers_are_collected():
    class Mixin:
        @RTView.event("click", "#mixin")
        def from_mixin(self, request):
            pass

    class WithMixin(Mixin, RTView):
        template_name = "testapp/example.html"

    assert WithMixin.rt_handlers["from_mixin"].bindings == (EventBinding("click", "#mixin"),)


def test_a_non_callable_attribute_removes_a_handler():
    class Shadowed(Parent):
        remove = "not a handler any more"

    assert "remove" not in Shadowed.rt_handlers


def test_parameters_target_kwargs_and_other_defaults():
    class View(RTView):
        template_name = "testapp/example.html"

        @RTView.event("click", "#a")
        def handler(
            self,
            request,
            text="#text",
            *,
            page=1,
            flag=None,
            target=None,
            choice="#choice",
            **kwargs,
        ):
            pass

        @RTView.event("click", "#b")
        def plain(self, request, *args, **kwargs):
            pass

    handler = View.rt_handlers["handler"]
    assert handler.gathered == {"text": "#text", "choice": "#choice"}
    assert handler.wants_target is True
    plain = View.rt_handlers["plain"]
    assert plain.gathered == {} and plain.wants_target is False


def test_target_without_a_default_is_accepted():
    class View(RTView):
        template_name = "testapp/example.html"

        @RTView.event("click", ".row")
        def pick(self, request, target: EventTarget):
            pass

    assert View.rt_handlers["pick"].wants_target is True
    assert View.rt_handlers["pick"].gathered == {}


def test_required_parameter_is_refused_with_a_helpful_message():
    with pytest.raises(ImproperlyConfigured) as info:

        class Broken(RTView):
            template_name = "testapp/example.html"

            @RTView.event("click", "#a")
            def handler(self, request, query):
                pass

    message = str(info.value)
    assert "Broken.handler()" in message
    assert "'query' without a default" in message
    assert "query='#query'" in message  # shows how to gather it


def test_required_parameter_of_an_undecorated_override_is_refused():
    with pytest.raises(ImproperlyConfigured, match="'extra' without a default"):

        class Broken(Parent):
            def save(self, request, extra):
                pass


@pytest.mark.parametrize(
    "source",
    [
        "def handler(self): pass",
        "def handler(): pass",
        "def handler(self, *, request): pass",
        "def handler(self, *args): pass",
    ],
)
def test_handler_must_take_the_request(source):
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(ImproperlyConfigured, match=r"must take \(self, request, \.\.\.\)"):

        class Broken(RTView):
            template_name = "testapp/example.html"
            handler = RTView.event("click", "#a")(namespace["handler"])


def test_positional_only_gathered_parameter_is_refused():
    # The consumer passes gathered values as keyword arguments.
    with pytest.raises(ImproperlyConfigured, match="positional-only parameter 'text'"):

        class Broken(RTView):
            template_name = "testapp/example.html"

            @RTView.event("click", "#a")
            def handler(self, request, text="#text", /):
                pass


# Handler.coerce -------------------------------------------------------------------


class Typed(RTView):
    template_name = "testapp/typed.html"

    @RTView.event("click", "#go")
    def go(
        self,
        request,
        count: int = "#count",
        size: Size = "#size",
        mode: Literal["a", "b"] = "#mode",
        tags: list[str] = "#tags",
        note: str | None = "#note",
        raw="#raw",
    ):
        pass


def test_handler_coerces_by_annotation():
    go = Typed.rt_handlers["go"]
    assert go.annotations == {
        "count": int,
        "size": Size,
        "mode": Literal["a", "b"],
        "tags": list[str],
        "note": str | None,
        "raw": Any,
    }
    assert go.coerce("count", "3") == 3
    assert go.coerce("size", "l") is Size.LARGE
    assert go.coerce("mode", "b") == "b"
    assert go.coerce("tags", "x") == ["x"]
    assert go.coerce("note", None) is None
    value = {"anything": ["goes"]}
    assert go.coerce("raw", value) is value
    with pytest.raises(InvalidValue, match="'x' is not a whole number"):
        go.coerce("count", "x")


def test_unsupported_annotation_is_improperly_configured():
    class View(RTView):
        template_name = "testapp/example.html"

        @RTView.event("click", "#a")
        def handler(self, request, pair: tuple[int, str] = "#pair"):
            pass

    with pytest.raises(ImproperlyConfigured) as info:
        View.rt_handlers["handler"].coerce("pair", ["1", "x"])
    message = str(info.value)
    assert "handler()" in message and "'pair'" in message
    assert "fixed-length tuple" in message
    assert "Annotate gathered parameters with" in message


def test_unsupported_annotation_is_refused_even_for_a_missing_value():
    class View(RTView):
        template_name = "testapp/example.html"

        @RTView.event("click", "#a")
        def handler(self, request, entry: RTView | None = "#entry"):
            pass

    with pytest.raises(ImproperlyConfigured, match="cannot coerce to RTView"):
        View.rt_handlers["handler"].coerce("entry", None)


def test_unresolvable_forward_reference_is_improperly_configured():
    class View(RTView):
        template_name = "testapp/example.html"

        @RTView.event("click", "#a")
        def handler(self, request, value: "NoSuchType" = "#value"):  # noqa: F821
            pass

    # Defining the view works; the annotation is resolved on the first call.
    handler = View.rt_handlers["handler"]
    with pytest.raises(ImproperlyConfigured) as info:
        handler.coerce("value", "x")
    assert "Cannot resolve the annotations of handler handler()" in str(info.value)
    assert "NoSuchType" in str(info.value)


def test_only_gathered_annotations_are_resolved():
    # ``request: HttpRequest`` and ``-> RTResponse`` imported under TYPE_CHECKING are
    # strings that do not resolve at runtime; they must not break the gathered ones.
    class View(RTView):
        template_name = "testapp/example.html"

        @RTView.event("click", "#a")
        def handler(
            self,
            request: "HttpRequest",  # noqa: F821
            count: "int" = "#count",
            target: "EventTarget" = None,
        ) -> "Nothing":  # noqa: F821
            pass

    handler = View.rt_handlers["handler"]
    assert handler.coerce("count", "4") == 4
    assert handler.annotations == {"count": int}


# EventBinding.as_config -----------------------------------------------------------


def test_as_config_minimal_keys():
    handler = Parent.rt_handlers["save"]
    (binding,) = handler.bindings
    assert binding.as_config(handler) == {
        BindingKey.EVENT: "click",
        BindingKey.SELECTOR: "#save",
        BindingKey.HANDLER: "save",
        BindingKey.GATHER: {"title": "#title"},
    }


def test_as_config_all_keys():
    class View(RTView):
        template_name = "testapp/example.html"

        @RTView.event("keydown.Enter", "#q", debounce=250, stop_propagation=True)
        @RTView.event("scroll", "#list", throttle=0)
        @RTView.event("submit", "form")
        def search(self, request, q="#q", target=None):
            pass

    handler = View.rt_handlers["search"]
    configs = [binding.as_config(handler) for binding in handler.bindings]
    gather = {"q": "#q"}
    assert configs == [
        {
            "e": "keydown",
            "s": "#q",
            "h": "search",
            "g": gather,
            "key": "enter",
            "debounce": 250,
            "stop": True,
        },
        {"e": "scroll", "s": "#list", "h": "search", "g": gather, "throttle": 0},
        {"e": "submit", "s": "form", "h": "search", "g": gather, "prevent": True},
    ]
    # The keys are the protocol's (sync: bound values only, tests/test_forms.py).
    assert {key for config in configs for key in config} == set(BindingKey) - {BindingKey.SYNC}
    # Each config has its own gather dict: the client may not alter the handler's.
    configs[0][BindingKey.GATHER]["x"] = "#x"
    assert handler.gathered == {"q": "#q"}


def test_handler_from_function_directly():
    def method(self, request, name="#name"):
        pass

    binding = EventBinding("click", "#a")
    handler = Handler.from_function(Parent, "method", method, (binding,))
    assert handler == Handler(
        name="method",
        function=method,
        bindings=(binding,),
        gathered={"name": "#name"},
        wants_target=False,
        is_async=False,
    )
