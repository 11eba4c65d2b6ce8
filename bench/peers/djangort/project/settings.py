"""django-rt's side of bench/browser_latency.py: the README's setup, default settings."""

import json
import os

import benchcommon

globals().update(benchcommon.base_settings("django-rt"))

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "django_rt",
    "benchapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
# Defaults, unless bench/browser_latency.py --rt-settings asks for others (to see what a
# setting costs): a JSON object.
DJANGO_RT = json.loads(os.environ.get("BENCH_DJANGO_RT", "{}"))
