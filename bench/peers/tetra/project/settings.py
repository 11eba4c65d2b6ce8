"""Tetra's side of bench/browser_latency.py, set up as Tetra's installation guide says."""

import os

import benchcommon

globals().update(benchcommon.base_settings("tetra"))

INSTALLED_APPS = [
    "tetra",  # before staticfiles (its runserver), as Tetra's guide asks
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "benchapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tetra.middleware.TetraMiddleware",
]
CHANNEL_LAYERS = benchcommon.channel_layers()
# esbuild from the npm registry, installed by bench/browser_latency.py's setup (Tetra
# would otherwise download it itself when it builds the components' scripts).
TETRA_ESBUILD_PATH = os.environ.get("TETRA_ESBUILD_PATH", "esbuild")
