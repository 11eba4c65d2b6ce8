from __future__ import annotations

from django.apps import AppConfig


class DjangoRTConfig(AppConfig):
    name = "django_rt"
    verbose_name = "django-rt"

    def ready(self) -> None:
        from . import checks, sessions  # importing checks registers the system checks
        from .changes import signals
        from .live import install

        install()
        signals.connect()
        sessions.connect()
        checks.warn_at_start_up()
