"""The minified client, ``rt.min.js``: built from ``rt.js`` by ``scripts/build-client``,
small enough, what pages load outside DEBUG, and the same client as the source."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

from django_rt.views import MINIFIED_SCRIPT, client_script

from .requirements import need, node

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "django_rt" / "static" / "django_rt"
#: What a page may load before its first morph (idiomorph comes later, when needed), gzipped.
BUDGET = 6 * 1024


def node_with(*packages: str) -> str:
    """The ``node`` executable, once it and the npm packages are there (npm ci)."""
    executable = node()
    need("node", executable is not None, "`node` is not on PATH")
    assert executable is not None
    for package in packages:
        installed = (ROOT / "node_modules" / package / "package.json").exists()
        need("node", installed, f"the npm package {package} is not installed (run npm ci)")
    return executable


def page_script(**settings: object) -> str:
    """Static path of the client script that the test project's home page loads."""
    with override_settings(**settings):
        html = Client().get("/").content.decode()
    (src,) = re.findall(r'<script src="/static/([^"]*)" defer>', html)
    return src


def test_committed_rt_min_js_is_what_the_build_writes():
    executable = node_with("terser")
    result = subprocess.run(
        [executable, str(ROOT / "scripts" / "build-client"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr or result.stdout


def test_what_a_page_loads_outside_debug_fits_in_6_kb_gzipped():
    with override_settings(DEBUG=False):
        found = finders.find(client_script())
    assert found, f"{MINIFIED_SCRIPT} is not among the static files"
    data = Path(found).read_bytes()
    size = len(gzip.compress(data, compresslevel=9))
    assert size <= BUDGET, f"{MINIFIED_SCRIPT}: {size} bytes gzipped, more than {BUDGET}"


def test_pages_load_the_minified_client_unless_debug():
    assert page_script(DEBUG=False) == "django_rt/rt.min.js"
    assert page_script(DEBUG=True) == "django_rt/rt.js"


def test_a_script_of_the_projects_own_is_loaded_in_both_modes():
    for debug in (False, True):
        assert page_script(DEBUG=debug, DJANGO_RT={"SCRIPT": "vendor/rt.js"}) == "vendor/rt.js"
    # Set to the default, it means the readable client everywhere.
    with override_settings(DEBUG=False, DJANGO_RT={"SCRIPT": "django_rt/rt.js"}):
        assert client_script() == "django_rt/rt.js"


@pytest.mark.parametrize("name", ["rt.js", "rt.min.js"])
def test_both_builds_ship_with_the_package(name):
    assert (STATIC / name).is_file()


def test_the_client_tests_pass_on_rt_min_js():
    executable = node_with("jsdom")
    result = subprocess.run(
        [executable, "--test", "tests/js/"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "RT_JS": "rt.min.js"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
