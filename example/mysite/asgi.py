import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from django_rt.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
