"""The wire protocol between the server and ``rt.js``, defined once on this side.

Every frame is a JSON object whose ``t`` key names its type. The client defines the
same names once in ``static/django_rt/rt.js`` (``PROTOCOL``); ``tests/test_protocol_sync.py``
loads that file in Node and checks that both sides agree, so a key is never a bare
string in two places.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

import orjson

#: Bumped whenever a frame changes shape. A client of another version is refused
#: at ``join`` and reloads the page to fetch the matching script.
VERSION = 1


class Frame(StrEnum):
    """Frame types (the value of ``Key.TYPE``)."""

    # client -> server
    JOIN = "join"
    EVENT = "event"
    RESYNC = "resync"
    # server -> client
    JOINED = "joined"
    REPLY = "reply"
    ERROR = "error"
    PATCH = "patch"


class Key(StrEnum):
    """Keys of a frame."""

    TYPE = "t"
    VERSION = "v"
    TOKEN = "token"
    REF = "ref"
    HANDLER = "h"
    GATHERED = "g"
    TARGET = "target"
    COMMANDS = "cmds"
    CODE = "code"
    MESSAGE = "message"
    DETAIL = "detail"
    HASH = "hash"
    OPS = "ops"
    IDS = "ids"


class TargetKey(StrEnum):
    """Keys of the ``target`` object: the element that fired the event."""

    ID = "id"
    TAG = "tag"
    NAME = "name"
    VALUE = "value"
    DATA = "data"


class CommandKey(StrEnum):
    """Keys of one DOM command inside ``Key.COMMANDS``."""

    ACTION = "a"
    SELECTOR = "s"
    CONTENT = "c"


class Action(StrEnum):
    """What a command does to the elements its selector matches."""

    HTML = "html"
    TEXT = "text"
    APPEND = "append"
    PREPEND = "prepend"
    REPLACE = "replace"
    REMOVE = "remove"
    ATTR = "attr"
    ADD_CLASS = "add_class"
    REMOVE_CLASS = "remove_class"
    VALUE = "value"
    FOCUS = "focus"
    REDIRECT = "redirect"
    DISPATCH = "dispatch"
    RESET = "reset"


class DispatchKey(StrEnum):
    """Keys of the content of a ``dispatch`` command."""

    NAME = "name"
    DETAIL = "detail"


class PatchKey(StrEnum):
    """Keys of one operation inside a ``patch`` frame's ``Key.OPS``."""

    OP = "o"
    ID = "id"
    HTML = "html"
    KEYS = "keys"
    ITEMS = "items"
    TITLE = "title"
    MESSAGE = "message"
    SET = "set"


class PatchOp(StrEnum):
    """What a patch operation does.

    - ``region``: replace what lies between ``<!--rt:ID-->`` and ``<!--/rt:ID-->``;
    - ``list``: a keyed list region: keep the items (``<!--rt:ID#KEY-->…<!--/rt:ID#KEY-->``)
      in ``keys`` in that order, drop the others, and take ``items[KEY]`` as the new HTML
      of the items that are new or changed;
    - ``morph``: morph the whole ``<body>`` to ``html`` (and set ``title``);
    - ``reload``: reload the page (what it showed is gone: its view now refuses);
    - ``head``: set the document's ``title``, and morph the children of ``<head>`` to
      ``html`` (when given), scripts excepted;
    - ``stale``: the page could not be updated (``message`` says why) and may show old
      data until a later patch (a morph) brings it up to date;
    - ``attrs``: set attribute values of elements inside region ``id``: ``set`` lists
      ``[place, tag, name, value]``, ``place`` counting the region's elements in document
      order; an element that is not a ``tag`` there makes the op a miss.
    """

    REGION = "region"
    LIST = "list"
    MORPH = "morph"
    RELOAD = "reload"
    HEAD = "head"
    STALE = "stale"
    ATTRS = "attrs"


class Marker(StrEnum):
    """Comment markers around live regions: ``<!--rt:3.1-->…<!--/rt:3.1-->``."""

    START = "rt:"
    END = "/rt:"
    ITEM = "#"


class ErrorCode(StrEnum):
    """The ``code`` of an error frame."""

    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    VERSION_MISMATCH = "version_mismatch"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    FORBIDDEN = "forbidden"
    UNKNOWN_HANDLER = "unknown_handler"
    INVALID_VALUE = "invalid_value"
    VALUE_TOO_LARGE = "value_too_large"
    RATE_LIMITED = "rate_limited"
    HANDLER_ERROR = "handler_error"
    SESSION_ENDED = "session_ended"
    ACCESS_REVOKED = "access_revoked"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    JOIN_TIMEOUT = "join_timeout"


class CloseCode(IntEnum):
    """WebSocket close codes of the server's own decisions; the client answers each one
    as ``docs/security.md`` says, and never with its usual reconnect and backoff.

    - ``MAX_AGE``: the connection is old; rejoin at once with the fresh token;
    - ``SESSION_ENDED``, ``ACCESS_REVOKED``: the page's session ended, or its view now
      refuses the user: reload, and go where the view sends the browser;
    - ``TOKEN_EXPIRED``, ``VERSION_MISMATCH``: reload for a fresh token or script;
    - the others: the same join would be refused again; do not retry.
    """

    MAX_AGE = 4000
    JOIN_TIMEOUT = 4400
    INVALID_TOKEN = 4401
    FORBIDDEN = 4403
    TOKEN_EXPIRED = 4408
    VERSION_MISMATCH = 4426
    TOO_MANY_CONNECTIONS = 4429
    SESSION_ENDED = 4440
    ACCESS_REVOKED = 4443


class ConfigKey(StrEnum):
    """Keys of the JSON page configuration that ``RTView`` renders for the client."""

    VERSION = "v"
    URL = "url"
    TOKEN = "token"
    EVENTS = "events"
    DEBUG = "debug"
    HASH = "hash"
    MORPH = "morph"


class BindingKey(StrEnum):
    """Keys of one event binding in ``ConfigKey.EVENTS``."""

    EVENT = "e"
    SELECTOR = "s"
    HANDLER = "h"
    GATHER = "g"
    DEBOUNCE = "debounce"
    THROTTLE = "throttle"
    KEY = "key"
    PREVENT_DEFAULT = "prevent"
    STOP_PROPAGATION = "stop"
    #: Also sent once after every join, with the values it gathers (``RTView.bind``).
    SYNC = "sync"


class CssClass(StrEnum):
    """Classes the client sets on the page."""

    CONNECTED = "rt-connected"
    DISCONNECTED = "rt-disconnected"
    LOADING = "rt-loading"


class DomEvent(StrEnum):
    """DOM events the client dispatches for user code."""

    CONNECTED = "rt:connected"
    DISCONNECTED = "rt:disconnected"
    ERROR = "rt:error"


#: The ``<script>`` attribute that carries the page configuration.
CONFIG_ATTRIBUTE = "data-rt-config"


def as_dict() -> dict[str, Any]:
    """The whole protocol as plain data, in the shape of the client's ``PROTOCOL``."""

    def members(enum: type[StrEnum] | type[IntEnum]) -> dict[str, Any]:
        return {member.name: member.value for member in enum}

    return {
        "version": VERSION,
        "frames": members(Frame),
        "keys": members(Key),
        "targetKeys": members(TargetKey),
        "commandKeys": members(CommandKey),
        "actions": members(Action),
        "dispatchKeys": members(DispatchKey),
        "patchKeys": members(PatchKey),
        "patchOps": members(PatchOp),
        "markers": members(Marker),
        "errors": members(ErrorCode),
        "close": members(CloseCode),
        "config": members(ConfigKey),
        "binding": members(BindingKey),
        "classes": members(CssClass),
        "domEvents": members(DomEvent),
        "configAttribute": CONFIG_ATTRIBUTE,
    }


def _default(value: Any) -> Any:
    """What a frame holds beyond JSON's types (a lazy translation, a date, a decimal, a
    UUID): what Django's JSON encoder makes of it."""
    from django.core.serializers.json import DjangoJSONEncoder

    return DjangoJSONEncoder().default(value)


def encode(frame: dict[str, Any]) -> str:
    """A frame as the socket sends it: compact JSON, UTF-8 text."""
    return orjson.dumps(frame, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
