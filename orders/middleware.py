"""Response headers for signed-in pages and the Content-Security-Policy's WebSocket origin (S28).

* ``Cache-Control: no-store`` on every response to a signed-in user: account lists, orders and forms
  must not stay in a browser's or a proxy's cache after sign-out. Static files never reach this
  middleware (WhiteNoise answers them first), so they stay cacheable.
* The policy itself comes from django-csp (``CONTENT_SECURITY_POLICY`` in settings). Its
  ``connect-src`` gets this page's own WebSocket origin (``ws://`` or ``wss://`` plus the request's
  host), which is where ``static/js/live_socket.js`` connects; ``'self'`` alone does not cover a
  ``ws:`` URL in every browser.

The idle session limit (``QFEXDASH_SESSION_IDLE_MINUTES``) needs no code here: every page request saves
the session with a fresh expiry (``SESSION_SAVE_EVERY_REQUEST``), WebSocket traffic never does, and
both the pages and the live sockets' access re-check refuse a session past its expiry.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class PrivatePagesMiddleware:
    """List after ``csp.middleware.CSPMiddleware`` so its update reaches the policy being built."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response["Cache-Control"] = "no-store"
        scheme = "wss" if request.is_secure() else "ws"
        try:
            host = request.get_host()
        except Exception:  # a disallowed host: Django answers 400 anyway; no origin to add
            return response
        update = dict(getattr(response, "_csp_update", None) or {})
        update["connect-src"] = [*update.get("connect-src", []), f"{scheme}://{host}"]
        response._csp_update = update  # type: ignore[attr-defined]
        return response
