"""ASGI entry point: HTTP through Django, websockets through Channels (quiltweb/routing.py)."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quiltweb.settings")
# No persistent database connections in the web process. Django runs each request's sync code
# in a thread of its own (ThreadSensitiveContext); a connection kept open past the request
# belongs to a thread that is gone, and its file stays open until the cycle collector happens
# to free it (Django's docs: disable persistent connections under ASGI). The worker keeps them.
for _db in settings.DATABASES.values():
    _db["CONN_MAX_AGE"] = 0
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.accounts.websocket import SessionOrTokenAuthMiddleware  # noqa: E402
from apps.core.websocket import SameOriginMiddleware  # noqa: E402
from quiltweb.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginMiddleware(
            SessionOrTokenAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
