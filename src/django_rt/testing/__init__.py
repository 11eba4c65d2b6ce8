"""Test live pages without a browser.

:class:`RTClient` opens a page of an ``RTView`` as a browser would: it loads the URL over
HTTP with a Django test ``Client`` (anonymous, logged in as ``user=``, or a client of
your own), joins its WebSocket through the project's ASGI application with Channels'
``WebsocketCommunicator``, and keeps a model of the page's DOM (:class:`Document`) to
which it applies every patch and every handler's commands as ``rt.js`` does. An event is
fired the way the client fires it: the binding for that event and element comes from the
page's configuration, the gathered values from the fields of the model (or from
``gathered=``), and the frame is the one ``rt.js`` would send::

    async with RTClient(user=alice) as rt:
        page = await rt.open("/entries/")
        await page.click("#mybutton", gathered={"#myinput": "hi"})
        assert page.text("#result") == "Result: hi"
        await sync_to_async(Entry.objects.create)(name="new")
        await page.settle()
        assert "new" in page.texts("li")

:class:`SyncRTClient` is the same for synchronous tests (Django's ``TestCase``), each
call run with ``async_to_sync``.

The socket's application runs on an event loop of its own, in a thread of its own, so
that it outlives each call. The sync work that django-rt does in its worker threads
(the join's view, handlers, the hub's updates) runs instead where the test's database
connection is, while a call of the client is in progress: in a ``TestCase`` the page sees
the test's rows, and a change saved between two calls is applied at the next one
(:meth:`RTPage.settle`). In a ``TestCase``, save inside
``self.captureOnCommitCallbacks(execute=True)``: changes are published on commit.
"""

from __future__ import annotations

from .client import RTClient, RTError, RTPage, SyncRTClient, SyncRTPage
from .css import Selector
from .dom import Document, Element
from .loop import TIMEOUT

__all__ = [
    "TIMEOUT",
    "Document",
    "Element",
    "RTClient",
    "RTError",
    "RTPage",
    "Selector",
    "SyncRTClient",
    "SyncRTPage",
]
