"""django-rt's ASGI application, with static files served (the client script)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from django_rt.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
application.application_mapping["http"] = ASGIStaticFilesHandler(
    application.application_mapping["http"]
)
