"""The sign-in page (``/signin/``); signing out is Django's ``LogoutView`` (POST only, ``/signout/``).

The second step for superusers and team admins is :mod:`orders.signin.two_factor`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import LoginView

from orders.signin.forms import SignInForm
from orders.signin.two_factor import SECOND_FACTOR_GONE

# Why a session was signed out, for the next sign-in page (``?ended=``).
ENDED_NOTES = {
    SECOND_FACTOR_GONE: "You were signed out because the second-step device of your account was removed "
    "(for example after a lost phone). Sign in again with your password; you will set up a new authenticator app.",
}


class SignInView(LoginView):
    """Django's login view; django-axes answers a locked-out attempt with 429 (orders.signin.throttle)."""

    form_class = SignInForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["ended_note"] = ENDED_NOTES.get(self.request.GET.get("ended", ""))
        return context
