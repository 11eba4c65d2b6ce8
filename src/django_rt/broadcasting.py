"""Commands for every open page of a view, or of a group, on every process.

``broadcast(target, *responses)`` may be called from anywhere: a view, a handler, a
Celery task, a management command, a shell. The commands travel through the change feed
as one message of the reserved label :data:`BROADCAST_LABEL` (so every process's hub
hears it, whichever feed is configured), after the current transaction commits; each hub
hands them to its own pages of ``target``, which apply them as they apply a handler's
reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, transaction

from .changes import Change, get_feed
from .responses import RTResponse, as_commands

if TYPE_CHECKING:
    from .views import RTView

#: The model label of broadcast messages in the change feed: not a model.
BROADCAST_LABEL = "django_rt.broadcast"
BROADCAST = "broadcast"


def view_audience(view_class: type[RTView]) -> str:
    """The audience of every page of ``view_class`` (and of its subclasses)."""
    from .tokens import view_path

    return "view:" + view_path(view_class)


def group_audience(name: str) -> str:
    return "group:" + name


def audiences(view: RTView) -> set[str]:
    """The audiences a page joins: its view class and the classes it inherits from (a
    broadcast to a base class reaches the pages of its subclasses), and the groups that
    its view names (``get_rt_groups()``)."""
    from .views import RTView

    found = {
        view_audience(cls)
        for cls in type(view).__mro__
        if isinstance(cls, type) and issubclass(cls, RTView) and cls is not RTView
    }
    groups = view.get_rt_groups()
    if isinstance(groups, str) or not isinstance(groups, Iterable):
        raise TypeError(
            f"{type(view).__name__}.get_rt_groups() must return a list of group names, "
            f"not {type(groups).__name__}"
        )
    for name in groups:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{type(view).__name__}.get_rt_groups(): {name!r} is not a name")
        found.add(group_audience(name))
    return found


def broadcast(target: type[RTView] | str, *responses: RTResponse) -> None:
    """Send ``responses`` to every open page of ``target``, on every process.

    ``target`` is an :class:`~django_rt.RTView` subclass (its pages and those of its
    subclasses) or the name of a group that views join through ``get_rt_groups()`` (a
    per-user group is the common case). Inside a transaction the commands leave when it
    commits, and not at all if it rolls back.
    """
    from .views import RTView

    if isinstance(target, type) and issubclass(target, RTView):
        audience = view_audience(target)
    elif isinstance(target, str) and target:
        audience = group_audience(target)
    else:
        raise TypeError(f"broadcast() sends to an RTView subclass or a group name, not {target!r}")
    commands = as_commands(list(responses), "broadcast")
    if not commands:
        return
    message = json.dumps(
        {"to": audience, "cmds": commands}, cls=DjangoJSONEncoder, separators=(",", ":")
    )
    change = Change(BROADCAST_LABEL, message, BROADCAST)
    transaction.on_commit(lambda: get_feed().publish([change]), using=DEFAULT_DB_ALIAS)


def decode(change: Change) -> tuple[str, list[dict[str, Any]]] | None:
    """A broadcast message's audience and commands (``None`` if it is malformed)."""
    try:
        message = json.loads(change.pk)
        audience, commands = message["to"], message["cmds"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(audience, str) or not isinstance(commands, list):
        return None
    return audience, commands
