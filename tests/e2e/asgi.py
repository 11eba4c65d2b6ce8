"""The test project's ASGI application, with static files served (as runserver would)."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from django_rt.asgi import get_asgi_application

application = get_asgi_application()
application.application_mapping["http"] = ASGIStaticFilesHandler(
    application.application_mapping["http"]
)
