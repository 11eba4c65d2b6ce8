"""Signed page tokens: what a WebSocket ``join`` needs to find its page again.

A token names the view class and the page's path and query, and binds them to the user
who loaded the page. A random page id tells one page load from another: the fresh
tokens that a page's joins hand out keep it, so that the connections of one page can be
counted. It is signed with Django's signing (``SECRET_KEY``, salted for this
use) and expires after ``DJANGO_RT['TOKEN_MAX_AGE']`` seconds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core import signing
from django.http import HttpRequest

from .conf import rt_settings

SALT = "django_rt.page"


class InvalidToken(Exception):
    """The token was forged, altered, or signed with another key."""


class ExpiredToken(InvalidToken):
    """The token was valid but is older than ``TOKEN_MAX_AGE``."""


def new_page_id() -> str:
    return secrets.token_urlsafe(9)


@dataclass(frozen=True)
class PageToken:
    view: str
    path: str
    user: str
    #: One page load (``""`` in a token signed before page ids existed).
    page: str = field(default_factory=new_page_id, compare=False)

    def sign(self) -> str:
        return signing.dumps(
            {"v": self.view, "p": self.path, "u": self.user, "n": self.page},
            salt=SALT,
            compress=True,
        )

    @classmethod
    def load(cls, token: Any) -> PageToken:
        if not isinstance(token, str) or not token:
            raise InvalidToken("the page token is missing")
        try:
            data = signing.loads(token, salt=SALT, max_age=rt_settings.TOKEN_MAX_AGE)
        except signing.SignatureExpired as error:
            raise ExpiredToken("the page token has expired; reload the page") from error
        except signing.BadSignature as error:
            raise InvalidToken("the page token is invalid") from error
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "vpu"):
            raise InvalidToken("the page token is invalid")
        page = data.get("n")
        return cls(
            view=data["v"],
            path=data["p"],
            user=data["u"],
            page=page if isinstance(page, str) else "",
        )


def user_key(request: HttpRequest) -> str:
    """Who the request is from, as the token records it: a primary key, or ``""``."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return str(user.pk)


def view_path(view: type | Callable[..., Any]) -> str:
    """What a token names a view by: its class (or function) and module."""
    return f"{view.__module__}.{view.__qualname__}"
