from django.apps import AppConfig


class BenchappConfig(AppConfig):
    name = "benchapp"

    def ready(self):
        from . import signals  # noqa: F401
