"""Signed page tokens: what a WebSocket ``join`` needs to find its page again.

A token names the view class and the page's path and query, and binds them to the user
who loaded the page. It is signed with Django's signing (``SECRET_KEY``, salted for this
use) and expires after ``DJANGO_RT['TOKEN_MAX_AGE']`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.http import HttpRequest

from .conf import rt_settings

SALT = "django_rt.page"


class InvalidToken(Exception):
    """The token was forged, altered, or signed with another key."""


class ExpiredToken(InvalidToken):
    """The token was valid but is older than ``TOKEN_MAX_AGE``."""


@dataclass(frozen=True)
class PageToken:
    view: str
    path: str
    user: str

    def sign(self) -> str:
        return signing.dumps(
            {"v": self.view, "p": self.path, "u": self.user}, salt=SALT, compress=True
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
        return cls(view=data["v"], path=data["p"], user=data["u"])


def user_key(request: HttpRequest) -> str:
    """Who the request is from, as the token records it: a primary key, or ``""``."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return str(user.pk)


def view_path(view_class: type) -> str:
    return f"{view_class.__module__}.{view_class.__qualname__}"
