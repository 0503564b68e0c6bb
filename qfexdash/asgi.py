"""ASGI entry point: HTTP through Django, WebSockets through Channels (origin check, session, routes).

Importing this module refuses to start the server when the encryption keys are missing or
malformed (``orders.checks.validate_encryption_keys``), so Daphne stops with a clear message.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qfexdash.settings")
django_asgi_app = get_asgi_application()

# These need the apps loaded first.
from channels.routing import ProtocolTypeRouter  # noqa: E402

from orders import checks  # noqa: E402
from orders.live.routing import websocket_application  # noqa: E402

checks.validate_encryption_keys()

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})
