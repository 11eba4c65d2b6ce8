"""Signed page tokens: ``PageToken.sign`` / ``PageToken.load`` and ``user_key``."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core import signing
from django.test import RequestFactory, override_settings

from django_rt.tokens import SALT, ExpiredToken, InvalidToken, PageToken, user_key, view_path
from tests.testapp.views import ExampleView

TOKEN = PageToken(view="tests.testapp.views.ExampleView", path="/items/?q=1&page=2", user="7")


def test_round_trip():
    signed = TOKEN.sign()
    assert isinstance(signed, str) and signed
    assert PageToken.load(signed) == TOKEN


def test_round_trip_keeps_unicode_and_empty_user():
    token = PageToken(view="app.views.V", path="/caf%C3%A9/?q=\u00e9t\u00e9", user="")
    assert PageToken.load(token.sign()) == token


def test_token_is_signed_not_encrypted_but_salted():
    # Another salt (a token signed for another purpose) is refused.
    payload = {"v": TOKEN.view, "p": TOKEN.path, "u": TOKEN.user}
    with pytest.raises(InvalidToken, match="the page token is invalid"):
        PageToken.load(signing.dumps(payload))
    assert PageToken.load(signing.dumps(payload, salt=SALT)) == TOKEN


def test_tampered_token_is_refused():
    signed = TOKEN.sign()
    body, _, signature = signed.rpartition(":")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for forged in (
        f"{body}:{flipped}",
        "x" + signed[1:] if signed[0] != "x" else "y" + signed[1:],
        signed[:-3],
        signed + "x",
        signed.replace(":", ";"),
    ):
        with pytest.raises(InvalidToken, match="the page token is invalid") as info:
            PageToken.load(forged)
        assert not isinstance(info.value, ExpiredToken)


def test_token_of_another_user_cannot_be_made_from_one():
    # Re-signing an altered payload needs the key: a payload swap breaks the signature.
    other = PageToken(TOKEN.view, TOKEN.path, "1").sign()
    mine_body = TOKEN.sign().split(":", 1)[0]
    other_rest = other.split(":", 1)[1]
    with pytest.raises(InvalidToken):
        PageToken.load(f"{mine_body}:{other_rest}")


def test_token_signed_with_another_key_is_refused():
    signed = TOKEN.sign()
    with (
        override_settings(SECRET_KEY="another-secret-key-for-the-tests"),
        pytest.raises(InvalidToken),
    ):
        PageToken.load(signed)


def test_token_signed_with_a_fallback_key_is_accepted():
    signed = TOKEN.sign()
    with override_settings(
        SECRET_KEY="a-rotated-secret-key-for-the-tests",
        SECRET_KEY_FALLBACKS=["django-rt-tests-not-secret"],
    ):
        assert PageToken.load(signed) == TOKEN


@pytest.mark.parametrize("token", [None, "", 5, b"bytes", ["token"], {"v": "x"}])
def test_missing_token(token):
    with pytest.raises(InvalidToken, match="the page token is missing"):
        PageToken.load(token)


@pytest.mark.parametrize("token", ["garbage", "a:b:c", ":", "\u00e9:\u00e9"])
def test_garbage_token(token):
    with pytest.raises(InvalidToken, match="the page token is invalid"):
        PageToken.load(token)


# expiry ---------------------------------------------------------------------------


def test_expired_token_is_refused():
    now = float(int(time.time()))  # signing records whole seconds
    with mock.patch("time.time", return_value=now):
        signed = TOKEN.sign()
    with override_settings(DJANGO_RT={"TOKEN_MAX_AGE": 1}):
        with mock.patch("time.time", return_value=now + 1):
            assert PageToken.load(signed) == TOKEN  # exactly the maximum age: still valid
        with mock.patch("time.time", return_value=now + 2.5), pytest.raises(ExpiredToken) as info:
            PageToken.load(signed)
    assert str(info.value) == "the page token has expired; reload the page"
    assert isinstance(info.value, InvalidToken)  # callers catching InvalidToken catch it too


def test_default_max_age_is_twelve_hours():
    now = float(int(time.time()))  # signing records whole seconds
    with mock.patch("time.time", return_value=now):
        signed = TOKEN.sign()
    with mock.patch("time.time", return_value=now + 12 * 3600 - 5):
        assert PageToken.load(signed) == TOKEN
    with mock.patch("time.time", return_value=now + 12 * 3600 + 5), pytest.raises(ExpiredToken):
        PageToken.load(signed)


def test_max_age_is_read_on_every_load():
    now = float(int(time.time()))  # signing records whole seconds
    with mock.patch("time.time", return_value=now):
        signed = TOKEN.sign()
    with mock.patch("time.time", return_value=now + 100):
        with override_settings(DJANGO_RT={"TOKEN_MAX_AGE": 50}), pytest.raises(ExpiredToken):
            PageToken.load(signed)
        with override_settings(DJANGO_RT={"TOKEN_MAX_AGE": 500}):
            assert PageToken.load(signed) == TOKEN


# payload shapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "a string",
        ["v", "p", "u"],
        None,
        {},
        {"v": "x", "p": "/"},
        {"v": "x", "p": "/", "u": None},
        {"v": "x", "p": "/", "u": 7},
        {"v": ["x"], "p": "/", "u": ""},
        {"view": "x", "path": "/", "user": ""},
    ],
)
def test_wrong_payload_shapes_are_refused(payload):
    # Correctly signed (with the key and salt) but not a page token.
    signed = signing.dumps(payload, salt=SALT, compress=True)
    with pytest.raises(InvalidToken, match="the page token is invalid"):
        PageToken.load(signed)


def test_extra_payload_keys_are_ignored():
    signed = signing.dumps({"v": "x", "p": "/", "u": "", "extra": 1}, salt=SALT)
    assert PageToken.load(signed) == PageToken("x", "/", "")


# user_key and view_path -----------------------------------------------------------


def test_user_key_without_a_user():
    assert user_key(RequestFactory().get("/")) == ""


def test_user_key_of_an_anonymous_user():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert user_key(request) == ""


@pytest.mark.django_db
def test_user_key_of_a_user_is_its_primary_key():
    user = User.objects.create_user("carol", password="pw")
    request = RequestFactory().get("/")
    request.user = user
    assert user_key(request) == str(user.pk)
    assert isinstance(user_key(request), str)


def test_view_path():
    assert view_path(ExampleView) == "tests.testapp.views.ExampleView"

    class Local:
        pass

    assert view_path(Local) == f"{__name__}.test_view_path.<locals>.Local"
