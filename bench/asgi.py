"""The benchmark server: the test project plus a bare Channels echo consumer as baseline."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path

from django_rt.asgi import get_asgi_application


class EchoConsumer(AsyncWebsocketConsumer):
    """The least a Channels app can do per frame: parse JSON, answer JSON."""

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data)
        await self.send(text_data=json.dumps({"t": "reply", "ref": frame.get("ref"), "cmds": []}))


application = get_asgi_application(websocket_urlpatterns=[path("echo/", EchoConsumer.as_asgi())])
