"""How a WebSocket reaches its consumer: exact origin check → session → user → URL route.

``websocket_application()`` is what ``qfexdash.asgi`` mounts for the ``websocket`` protocol.

Origin check (design.md §3, S2): the handshake's ``Origin`` must be *exactly* the page's own origin
— same scheme (``ws``→``http``, ``wss``→``https``), host and port as the request's ``Host`` — or
one listed in ``CSRF_TRUSTED_ORIGINS``. A missing or ``null`` origin, another host, another port or
another scheme is refused before the consumer runs (the handshake gets HTTP 403; close code 4003).
The ``Host`` itself must be allowed by ``ALLOWED_HOSTS``, which stops DNS-rebinding pages whose
origin and host agree. Channels' ``AllowedHostsOriginValidator`` is looser (it ignores scheme and
port), hence this middleware.

Behind a TLS-terminating proxy, run Daphne with ``--proxy-headers`` so the scope's scheme is
``wss``, or list the public origin in ``CSRF_TRUSTED_ORIGINS``.

User: channels' session middleware loads the session from the cookie; the user is then resolved
read-only (:func:`orders.live.access.session_user`) — unlike channels' ``AuthMiddleware``, a stale
hash never flushes the HTTP session and a hash made with a ``SECRET_KEY_FALLBACKS`` key is accepted,
so rotating ``SECRET_KEY`` logs nobody out through a socket.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import path

from orders.live import protocol as lp
from orders.live.access import session_user
from orders.live.consumers import AccountStreamConsumer
from orders.live.limits import BacklogProbeMiddleware

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PAGE_SCHEME = {"ws": "http", "wss": "https"}

Origin = tuple[str, str, int]


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def parse_origin(value: str) -> Origin | None:
    """``(scheme, host, port)`` of an ``Origin`` header or a configured origin; None when malformed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[parts.scheme]


def _header(scope: dict[str, Any], name: bytes) -> list[str]:
    return [value.decode("latin1") for key, value in scope.get("headers", []) if key.lower() == name]


def request_origin(scope: dict[str, Any]) -> Origin | None:
    """The page's own origin implied by the handshake: its scheme and the ``Host`` header."""
    hosts = _header(scope, b"host")
    if len(hosts) != 1:
        return None
    domain, port = split_domain_port(hosts[0])
    if not domain:
        return None
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not validate_host(domain, allowed):
        return None
    scheme = _PAGE_SCHEME.get(scope.get("scheme") or "ws")
    if scheme is None:
        return None
    try:
        number = int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, _strip_brackets(domain), number


def origin_allowed(scope: dict[str, Any]) -> bool:
    origins = _header(scope, b"origin")
    if len(origins) != 1:
        return False  # missing, or several (ambiguous)
    origin = parse_origin(origins[0])  # "null" fails to parse
    if origin is None:
        return False
    if origin == request_origin(scope):
        return True
    trusted = {parse_origin(value) for value in settings.CSRF_TRUSTED_ORIGINS}
    return origin in trusted


class ExactOriginMiddleware:
    """Refuses WebSocket handshakes whose ``Origin`` is not exactly allowed (see module docstring)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            message = await receive()
            if message["type"] == "websocket.connect":
                # Closing before accept: the server answers the handshake with HTTP 403.
                await send({"type": "websocket.close", "code": lp.CLOSE_FORBIDDEN})
            return None
        return await self.inner(scope, receive, send)


class SessionUserMiddleware:
    """Puts ``scope["user"]``, resolved read-only from ``scope["session"]``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user = await database_sync_to_async(session_user)(scope["session"])
        return await self.inner(dict(scope, user=user), receive, send)


websocket_urlpatterns = [
    path("ws/accounts/all/", AccountStreamConsumer.as_asgi()),
    path("ws/accounts/<int:account_id>/", AccountStreamConsumer.as_asgi()),
]


def websocket_application() -> Any:
    """The full WebSocket stack mounted by ``qfexdash.asgi``."""
    stack = ExactOriginMiddleware(SessionMiddlewareStack(SessionUserMiddleware(URLRouter(websocket_urlpatterns))))
    return BacklogProbeMiddleware(stack)
