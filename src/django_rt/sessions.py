"""Ending a session's live pages, in every process, the moment the session ends.

A page's socket keeps the session key it connected with. When that session ends (a
logout, ``flush()``, a key rotated by ``cycle_key()``: ``login()``,
``update_session_auth_hash()`` after a password change), a "session ended" message goes
through the change feed, so that the hub of every process hears it, as a
:class:`~django_rt.changes.Change` of the reserved label :data:`SESSION_LABEL` whose
``pk`` is :func:`session_hash` of the key: the key itself never leaves the process. Each
hub closes that session's sockets (``CloseCode.SESSION_ENDED``) and their pages reload.

Django sends no signal when a session ends, so :func:`connect` wraps ``flush``,
``cycle_key`` and their async twins on every session backend (``SessionBase`` and each
subclass that overrides them, defined now or later); ``user_logged_out`` covers a
session object that is not a ``SessionBase``. An expired session, or one deleted behind
Django's back, ends its pages at the next access check (``consumer.py``).

Within a request, the message waits for the end of the response (``request_finished``):
a page that reloaded at once would otherwise still send the old cookie, before the
browser has the one that the response sets (after a password change, the new session
key), and land on the login page; the hub stops the page at once, but closes its socket
a moment later (``consumer.SESSION_END_GRACE``), once the browser has stored that cookie.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

from django.apps import apps
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.base import SessionBase
from django.core.signals import request_finished, request_started
from django.db import router, transaction
from django.utils.crypto import salted_hmac

from .changes import DELETE, Change, get_feed

#: The model label of "session ended" messages in the change feed: not a model.
SESSION_LABEL = "django_rt.session"

_SALT = "django_rt.session"
_ENDING_METHODS = ("flush", "cycle_key")
_ASYNC_ENDING_METHODS = ("aflush", "acycle_key")
_WRAPPED = "_rt_ends_session"
_BUSY = "_rt_ending"


def session_hash(session_key: str) -> str:
    """What names a session in the feed: keyed with ``SECRET_KEY``, so that whoever
    reads the feed can neither recover a key nor test a guess."""
    return salted_hmac(_SALT, session_key, algorithm="sha256").hexdigest()


#: The sessions that ended during the current request, announced when it is over; None
#: outside a request (a shell, a management command, a socket's own access check).
_ended_in_request: ContextVar[list[str] | None] = ContextVar("django_rt_ended", default=None)


def session_ended(session_key: str | None) -> None:
    """Announce that the session ``session_key`` ended: at the end of the current
    request, or now outside one."""
    if not session_key:
        return
    pending = _ended_in_request.get()
    if pending is not None:
        pending.append(session_key)
    else:
        publish([session_key])


def _request_started(sender: Any, **kwargs: Any) -> None:
    _ended_in_request.set([])


def _request_finished(sender: Any, **kwargs: Any) -> None:
    pending = _ended_in_request.get()
    _ended_in_request.set(None)
    if pending:
        keys = list(dict.fromkeys(pending))
        pending.clear()
        publish(keys)


def publish(session_keys: Sequence[str]) -> None:
    """Publish that the sessions ``session_keys`` ended (after commit, in a transaction)."""
    changes = [Change(SESSION_LABEL, session_hash(key), DELETE) for key in session_keys]
    feed = get_feed()
    using = router.db_for_write(_session_model()) if _session_model() else "default"
    connection = transaction.get_connection(using)
    if connection.in_atomic_block:
        # A database session is gone once the transaction commits; a page that reloaded
        # before that would still find it.
        connection.on_commit(lambda: feed.publish(changes))
    else:
        feed.publish(changes)


def _session_model() -> Any:
    if not apps.is_installed("django.contrib.sessions"):
        return None
    from django.contrib.sessions.models import Session

    return Session


# Wrapping the backends -------------------------------------------------------------


def _wrap_sync(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def ending(self: SessionBase, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, _BUSY, False):  # a subclass's override calling super()
            return method(self, *args, **kwargs)
        key = self.session_key
        setattr(self, _BUSY, True)
        try:
            result = method(self, *args, **kwargs)
        finally:
            setattr(self, _BUSY, False)
        session_ended(key)
        return result

    setattr(ending, _WRAPPED, True)
    return ending


def _wrap_async(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def ending(self: SessionBase, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, _BUSY, False):
            return await method(self, *args, **kwargs)
        key = self.session_key
        setattr(self, _BUSY, True)
        try:
            result = await method(self, *args, **kwargs)
        finally:
            setattr(self, _BUSY, False)
        session_ended(key)
        return result

    setattr(ending, _WRAPPED, True)
    return ending


def _wrap_class(cls: type[SessionBase]) -> None:
    for names, wrap in ((_ENDING_METHODS, _wrap_sync), (_ASYNC_ENDING_METHODS, _wrap_async)):
        for name in names:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, _WRAPPED, False):
                setattr(cls, name, wrap(method))


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _on_subclass(cls: type[SessionBase], /, **kwargs: Any) -> None:
    super(SessionBase, cls).__init_subclass__(**kwargs)
    _wrap_class(cls)


def ends_sessions(session: Any) -> bool:
    """Whether ``session``'s ``flush()`` announces its end (every ``SessionBase`` once
    :func:`connect` ran)."""
    return getattr(getattr(type(session), "flush", None), _WRAPPED, False)


def _on_logout(sender: Any, request: Any = None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and not ends_sessions(session):
        # Not a SessionBase: its flush() will not say so; say it now.
        session_ended(getattr(session, "session_key", None))


def connect() -> None:
    """Announce the end of every session from now on (idempotent)."""
    for cls in (SessionBase, *_subclasses(SessionBase)):
        _wrap_class(cls)
    if "__init_subclass__" not in SessionBase.__dict__:
        SessionBase.__init_subclass__ = classmethod(_on_subclass)  # type: ignore[method-assign,assignment]
    user_logged_out.connect(_on_logout, dispatch_uid="django_rt.session_logout")
    request_started.connect(_request_started, dispatch_uid="django_rt.session_request_started")
    request_finished.connect(_request_finished, dispatch_uid="django_rt.session_request_finished")
