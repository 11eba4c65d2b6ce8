"""System checks (``django_rt.checks``) and settings (``django_rt.conf``)."""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import modify_settings, override_settings

from django_rt.checks import check_frame_limit, check_server_limit, check_settings
from django_rt.conf import DEFAULTS, rt_settings


def ids(messages):
    return [message.id for message in messages]


def only(messages, check_id):
    found = [message for message in messages if message.id == check_id]
    assert found, f"no {check_id} in {ids(messages)}"
    return found


# the test project itself ----------------------------------------------------------


def test_the_test_project_is_clean():
    assert check_settings() == []


def test_check_is_registered():
    assert check_settings in checks.registry.registry.get_checks()
    with override_settings(DJANGO_RT={"NOPE": 1}):
        found = checks.run_checks(tags=[checks.Tags.compatibility])
    assert "django_rt.E001" in ids(found)


# E001: DJANGO_RT values -----------------------------------------------------------


def test_unknown_key():
    with override_settings(DJANGO_RT={"WEBSOCKET_PATHS": "/ws/"}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert isinstance(error, checks.Error)
    assert "unknown key 'WEBSOCKET_PATHS'" in error.msg
    assert "WEBSOCKET_PATH" in error.msg.split("known keys:")[1]  # lists the right spelling
    assert error.hint == "See the configuration section of django-rt's README."


POSITIVE_INTEGERS = [
    "TOKEN_MAX_AGE",
    "MAX_FRAME_BYTES",
    "MAX_VALUE_BYTES",
    "EVENTS_BURST",
    "MAX_CONNECTION_AGE",
    "MAX_CONNECTIONS_PER_TOKEN",
    "MAX_CONNECTIONS_PER_USER",
    "WORKER_THREADS",
    "JOIN_CONCURRENCY",
]


@pytest.mark.parametrize("key", POSITIVE_INTEGERS)
@pytest.mark.parametrize("value", [0, -5, 1.5, "10", None, True])
def test_positive_integers(key, value):
    with override_settings(DJANGO_RT={key: value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert error.msg == f"DJANGO_RT[{key!r}] must be a positive integer, not {value!r}."


@pytest.mark.parametrize("key", POSITIVE_INTEGERS)
def test_positive_integers_accepted(key):
    with override_settings(DJANGO_RT={key: 1}):
        assert check_settings() == []


@pytest.mark.parametrize("value", [0, 1, "yes", None])
def test_direct_writes_is_true_or_false(value):
    with override_settings(DJANGO_RT={"DIRECT_WRITES": value}):
        (error,) = check_settings()
    assert error.msg == f"DJANGO_RT['DIRECT_WRITES'] must be True or False, not {value!r}."
    with override_settings(DJANGO_RT={"DIRECT_WRITES": False}):
        assert check_settings() == []


@pytest.mark.parametrize("value", [0, -1, 0.0, "20", None, True, float("nan")])
def test_events_per_second(value):
    with override_settings(DJANGO_RT={"EVENTS_PER_SECOND": value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert error.msg == f"DJANGO_RT['EVENTS_PER_SECOND'] must be a positive number, not {value!r}."


@pytest.mark.parametrize("value", [0.5, 3, 100.0])
def test_events_per_second_accepted(value):
    with override_settings(DJANGO_RT={"EVENTS_PER_SECOND": value}):
        assert check_settings() == []


@pytest.mark.parametrize("value", [0, -1, "10", None, True, float("nan"), float("inf")])
def test_join_timeout(value):
    with override_settings(DJANGO_RT={"JOIN_TIMEOUT": value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert error.msg == (
        f"DJANGO_RT['JOIN_TIMEOUT'] must be a positive number of seconds, not {value!r}."
    )


@pytest.mark.parametrize("value", [0.25, 3, 60.0])
def test_join_timeout_accepted(value):
    with override_settings(DJANGO_RT={"JOIN_TIMEOUT": value}):
        assert check_settings() == []


@pytest.mark.parametrize("key", ["ACCESS_CHECK_SECONDS", "RESYNC_SECONDS"])
@pytest.mark.parametrize("value", [-1, -0.5, "5", None, True, float("nan"), float("inf")])
def test_intervals(key, value):
    with override_settings(DJANGO_RT={key: value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert error.msg == (
        f"DJANGO_RT[{key!r}] must be a number of seconds (0 or more), not {value!r}."
    )


@pytest.mark.parametrize("key", ["ACCESS_CHECK_SECONDS", "RESYNC_SECONDS"])
@pytest.mark.parametrize("value", [0, 0.5, 30])
def test_intervals_accepted(key, value):
    with override_settings(DJANGO_RT={key: value}):
        assert check_settings() == []


@pytest.mark.parametrize("value", ["rt/ws/", "", None, 5, "ws://host/rt/"])
def test_bad_websocket_path(value):
    with override_settings(DJANGO_RT={"WEBSOCKET_PATH": value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert (
        error.msg == f"DJANGO_RT['WEBSOCKET_PATH'] must be a path starting with '/', not {value!r}."
    )


@pytest.mark.parametrize("value", ["", "  ", None, 5])
def test_bad_script(value):
    # A bad SCRIPT would otherwise only fail when the first page renders.
    with override_settings(DJANGO_RT={"SCRIPT": value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert error.msg == f"DJANGO_RT['SCRIPT'] must be a static file path, not {value!r}."


@pytest.mark.parametrize("value", [["WEBSOCKET_PATH"], "x", 5, None])
def test_not_a_dict(value):
    with override_settings(DJANGO_RT=value):
        (error,) = check_settings()
    assert error.id == "django_rt.E001"
    assert error.msg == f"DJANGO_RT must be a dict, not {type(value).__name__}."


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("COALESCE_SECONDS", -1),
        ("COALESCE_SECONDS", "fast"),
        ("INLINE_UPDATE_PAGES", -1),
        ("INLINE_UPDATE_PAGES", True),
        ("INLINE_UPDATE_PAGES", 1.5),
        ("IGNORE_MODELS", "sessions.session"),
        ("IGNORE_MODELS", ["sessions"]),
        ("CHANGE_FEED", "no.such.Feed"),
        ("MORPH_SCRIPT", ""),
    ],
)
def test_live_settings_are_checked(key, value):
    with override_settings(DJANGO_RT={key: value}):
        (error,) = check_settings()
    assert error.id == "django_rt.E001" and key in error.msg


def test_every_problem_is_reported():
    with override_settings(DJANGO_RT={"NOPE": 1, "TOKEN_MAX_AGE": 0, "WEBSOCKET_PATH": "x"}):
        messages = check_settings()
    assert ids(messages) == ["django_rt.E001"] * 3


def test_all_keys_valid():
    custom = {
        "WEBSOCKET_PATH": "/live/",
        "TOKEN_MAX_AGE": 60,
        "MAX_FRAME_BYTES": 1024,
        "MAX_VALUE_BYTES": 512,
        "EVENTS_PER_SECOND": 2.5,
        "EVENTS_BURST": 5,
        "SCRIPT": "js/rt.js",
        "MORPH_SCRIPT": "js/idiomorph.js",
        "CHANGE_FEED": "django_rt.changes.memory.MemoryFeed",
        "COALESCE_SECONDS": 0,
        "INLINE_UPDATE_PAGES": 0,
        "DIRECT_WRITES": False,
        "IGNORE_MODELS": ["sessions.session"],
        "ACCESS_CHECK_SECONDS": 1,
        "MAX_CONNECTION_AGE": 600,
        "JOIN_TIMEOUT": 2.5,
        "MAX_CONNECTIONS_PER_TOKEN": 1,
        "MAX_CONNECTIONS_PER_USER": 10,
        "RESYNC_SECONDS": 1.5,
        "WORKER_THREADS": 2,
        "JOIN_CONCURRENCY": 2,
    }
    assert set(custom) == set(DEFAULTS)
    with override_settings(DJANGO_RT=custom):
        assert check_settings() == []


# E002: sessions and auth ----------------------------------------------------------


@pytest.mark.parametrize("app", ["django.contrib.sessions", "django.contrib.auth"])
def test_sessions_and_auth_are_needed(app):
    with modify_settings(INSTALLED_APPS={"remove": [app]}):
        (error,) = only(check_settings(), "django_rt.E002")
    assert isinstance(error, checks.Error)
    assert error.msg.startswith(f"django-rt needs {app!r} in INSTALLED_APPS")


def test_both_missing_give_two_errors():
    with modify_settings(
        INSTALLED_APPS={"remove": ["django.contrib.sessions", "django.contrib.auth"]}
    ):
        assert ids(check_settings()).count("django_rt.E002") == 2


# W001 and E003: daphne ------------------------------------------------------------


def test_debug_without_daphne_warns_under_runserver(monkeypatch):
    monkeypatch.setattr("sys.argv", ["manage.py", "runserver"])
    with override_settings(DEBUG=True):
        messages = check_settings()
    assert ids(messages) == ["django_rt.W001"]
    (warning,) = messages
    assert isinstance(warning, checks.Warning)
    assert "'daphne' is not in INSTALLED_APPS" in warning.msg
    assert "SILENCED_SYSTEM_CHECKS" in warning.hint


def test_no_warning_without_debug():
    with override_settings(DEBUG=False):
        assert "django_rt.W001" not in ids(check_settings())


def test_debug_with_daphne_and_asgi_application_is_clean():
    with (
        modify_settings(INSTALLED_APPS={"prepend": "daphne"}),
        override_settings(DEBUG=True, ASGI_APPLICATION="mysite.asgi.application"),
    ):
        assert check_settings() == []


@pytest.mark.parametrize("debug", [True, False])
def test_daphne_without_asgi_application(debug):
    with modify_settings(INSTALLED_APPS={"prepend": "daphne"}), override_settings(DEBUG=debug):
        messages = check_settings()
    assert ids(messages) == ["django_rt.E003"]
    (error,) = messages
    assert error.msg == "'daphne' is installed but ASGI_APPLICATION is not set."
    assert "get_asgi_application()" in error.hint


# W002: staticfiles ----------------------------------------------------------------


def test_without_staticfiles():
    with modify_settings(INSTALLED_APPS={"remove": ["django.contrib.staticfiles"]}):
        messages = check_settings()
    assert ids(messages) == ["django_rt.W002"]
    assert "'django_rt/rt.min.js'" in messages[0].msg  # what pages load outside DEBUG
    with (
        modify_settings(INSTALLED_APPS={"remove": ["django.contrib.staticfiles"]}),
        override_settings(DEBUG=True),
    ):
        assert "'django_rt/rt.js'" in check_settings()[0].msg
    with (
        modify_settings(INSTALLED_APPS={"remove": ["django.contrib.staticfiles"]}),
        override_settings(DJANGO_RT={"SCRIPT": "vendor/rt.min.js"}),
    ):
        assert "'vendor/rt.min.js'" in check_settings()[0].msg


# django_rt.conf.rt_settings -------------------------------------------------------


def test_defaults():
    assert rt_settings.ACCESS_CHECK_SECONDS == 5.0
    assert rt_settings.MAX_CONNECTION_AGE == 60 * 60
    assert rt_settings.JOIN_TIMEOUT == 10.0
    assert rt_settings.MAX_CONNECTIONS_PER_TOKEN == 4
    assert rt_settings.MAX_CONNECTIONS_PER_USER == 50
    assert rt_settings.RESYNC_SECONDS == 5.0
    assert rt_settings.WORKER_THREADS == 8
    assert rt_settings.WEBSOCKET_PATH == "/rt/ws/"
    assert rt_settings.TOKEN_MAX_AGE == 12 * 60 * 60
    assert rt_settings.MAX_FRAME_BYTES == 64 * 1024
    assert rt_settings.MAX_VALUE_BYTES == 32 * 1024
    assert rt_settings.EVENTS_PER_SECOND == 20.0
    assert rt_settings.EVENTS_BURST == 40
    assert rt_settings.SCRIPT == "django_rt/rt.js"


def test_overrides_are_read_on_every_access():
    with override_settings(DJANGO_RT={"WEBSOCKET_PATH": "/live/", "EVENTS_BURST": 3}):
        assert rt_settings.WEBSOCKET_PATH == "/live/"
        assert rt_settings.EVENTS_BURST == 3
        assert DEFAULTS["TOKEN_MAX_AGE"] == rt_settings.TOKEN_MAX_AGE  # others keep defaults
    assert rt_settings.WEBSOCKET_PATH == "/rt/ws/"


def test_empty_or_none_setting_means_defaults():
    for value in ({}, None):
        with override_settings(DJANGO_RT=value):
            assert rt_settings.SCRIPT == "django_rt/rt.js"


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="django-rt has no setting 'NOPE'"):
        rt_settings.NOPE  # noqa: B018
    with override_settings(DJANGO_RT={"NOPE": 1}), pytest.raises(AttributeError):
        rt_settings.NOPE  # noqa: B018
    assert not hasattr(rt_settings, "websocket_path")


def test_check_raises_improperly_configured_with_every_problem():
    rt_settings.check()  # the test settings are fine
    with (
        override_settings(DJANGO_RT={"NOPE": 1, "EVENTS_BURST": 0}),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        rt_settings.check()
    assert "unknown key 'NOPE'" in str(info.value)
    assert "DJANGO_RT['EVENTS_BURST'] must be a positive integer, not 0." in str(info.value)


# E004: the unrelated distribution of the same import name ---------------------------


def test_conflicting_distribution(tmp_path, monkeypatch):
    import importlib
    import sys

    info = tmp_path / "django_rt-0.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: django-rt\nVersion: 0.3.1\n")
    assert check_settings() == []
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    importlib.invalidate_caches()
    (error,) = only(check_settings(), "django_rt.E004")
    assert isinstance(error, checks.Error)
    assert "'django-rt' 0.3.1 is installed" in error.msg
    assert error.hint.startswith("pip uninstall django-rt")


# W003: the server's own WebSocket message limit ---------------------------------------

UVICORN = "/venv/bin/uvicorn"
UVICORN_MODULE = "/venv/lib/python3.13/site-packages/uvicorn/__main__.py"
DAPHNE = "/venv/bin/daphne"


def test_frame_limit_check_is_registered_and_quiet_under_pytest():
    assert check_frame_limit in checks.registry.registry.get_checks()
    assert check_frame_limit() == []


@pytest.mark.parametrize(
    ("argv", "buffered", "fix"),
    [
        ([UVICORN, "mysite.asgi:application"], "up to 16777216 bytes", "--ws-max-size 131072"),
        ([UVICORN_MODULE, "app", "--ws-max-size", "1000000"], "1000000", "--ws-max-size 131072"),
        ([UVICORN, "app", "--ws-max-size=0"], "no limit", "--ws-max-size 131072"),
        ([DAPHNE, "app"], "up to 1048576", "--websocket-max-message-size 131072"),
    ],
)
def test_a_server_that_buffers_more_than_the_frame_limit_warns(argv, buffered, fix):
    (warning,) = check_server_limit(argv)
    assert warning.id == "django_rt.W003" and isinstance(warning, checks.Warning)
    assert buffered in warning.msg and "MAX_FRAME_BYTES (65536)" in warning.msg
    assert fix in warning.hint and "docs/security.md" in warning.hint


@pytest.mark.parametrize(
    "argv",
    [
        [UVICORN, "app", "--ws-max-size", "131072"],
        [UVICORN, "app", "--ws-max-size=65536"],
        [DAPHNE, "--websocket-max-message-size", "100000", "app"],
        ["/venv/bin/gunicorn", "-k", "uvicorn.workers.UvicornWorker"],  # cannot tell
        ["manage.py", "runserver"],  # daphne is not installed here
        [],
    ],
)
def test_a_server_within_the_limit_or_unknown_is_quiet(argv):
    assert check_server_limit(argv) == []


def test_the_recommended_limit_follows_max_frame_bytes():
    with override_settings(DJANGO_RT={"MAX_FRAME_BYTES": 1000}):
        (warning,) = check_server_limit([UVICORN, "app", "--ws-max-size", "131072"])
    assert "--ws-max-size 2000" in warning.hint


def test_daphnes_runserver_reads_its_setting():
    with modify_settings(INSTALLED_APPS={"prepend": "daphne"}):
        (warning,) = check_server_limit(["manage.py", "runserver"])
        assert "daphne's runserver" in warning.msg and "1048576" in warning.msg
        assert "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = 131072" in warning.hint
        with override_settings(DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE=128 * 1024):
            assert check_server_limit(["manage.py", "runserver"]) == []
        argv = ["manage.py", "runserver", "--websocket-max-message-size", "65536"]
        assert check_server_limit(argv) == []


def test_the_warning_is_logged_at_start_up_under_uvicorn(monkeypatch, caplog):
    from django_rt.checks import warn_at_start_up

    monkeypatch.setattr("sys.argv", [UVICORN, "mysite.asgi:application"])
    with caplog.at_level("WARNING", logger="django_rt"):
        warn_at_start_up()
        with override_settings(SILENCED_SYSTEM_CHECKS=["django_rt.W003"]):
            warn_at_start_up()
    (record,) = caplog.records
    assert "(django_rt.W003)" in record.getMessage() and "--ws-max-size" in record.getMessage()
