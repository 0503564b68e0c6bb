""" "Your sessions" (``/signin/sessions/``): where you are signed in, and signing out everywhere else.

Each row is a signed-in browser (:mod:`orders.accounts.sign_ins`): when it signed in, when it was last used,
from which address, which browser, with which second factor. "Sign out everywhere else" ends every other
session; their pages ask for the password at their next request and their live tables close within seconds
(the sockets' access re-check finds the session gone). A superuser can do the same for a person from the
admin's user list (``orders.admin.people``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from orders.accounts import sign_ins
from orders.accounts.people import signed_in
from orders.signin.two_factor import enrolled
from orders.views import render_page


def _browser(user_agent: str) -> str:
    """A short name for a browser from its user agent, for people ("Firefox on Linux"), else the agent itself."""
    agent = user_agent or ""
    names = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
    systems = [("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
               ("Mac OS X", "macOS"), ("Linux", "Linux")]  # fmt: skip
    name = next((label for marker, label in names if marker in agent), "")
    system = next((label for marker, label in systems if marker in agent), "")
    if name and system:
        return f"{name} on {system}"
    return name or system or (agent[:80] if agent else "Unknown browser")


@login_required
@require_http_methods(["GET", "POST"])
def your_sessions(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    current = request.session.session_key
    if request.method == "POST":
        ended = sign_ins.sessions_end(user, keep=current)
        if ended:
            noun = "session" if ended == 1 else "sessions"
            messages.success(request, f"Signed out {ended} other {noun}. Their live pages close within a few seconds.")
        else:
            messages.info(request, "You were not signed in anywhere else.")
        return redirect("your_sessions")
    rows = [
        {"record": record, "browser": _browser(record.user_agent), "current": record.session_key == current}
        for record in sign_ins.browser_sessions_of(user)
    ]
    rows.sort(key=lambda row: not row["current"])
    context = {"rows": rows, "others": sum(not row["current"] for row in rows), "enrolled": enrolled(user)}
    return render_page(request, "registration/your_sessions.html", {**context, "nav": "sessions"})
