"""ASGI entry point: HTTP through Django, websockets through Channels (quiltweb/routing.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quiltweb.settings")
# Each request runs in a thread of its own here: a connection kept past its request is never
# used again (quiltweb/settings.py, QUILTWEB_DB_CONN_MAX_AGE). Set before the settings load.
os.environ.setdefault("QUILTWEB_DB_CONN_MAX_AGE", "0")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.accounts.websocket import SessionOrTokenAuthMiddleware  # noqa: E402
from apps.core.websocket import SameOriginMiddleware  # noqa: E402
from quiltweb.routing import WithRelay, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WithRelay(
            SameOriginMiddleware(SessionOrTokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
