"""The sign-in page (``/signin/``); signing out is Django's ``LogoutView`` (POST only, ``/signout/``).

The second step for superusers and team admins is :mod:`orders.signin.two_factor`.
"""

from __future__ import annotations

from django.contrib.auth.views import LoginView

from orders.signin.forms import SignInForm


class SignInView(LoginView):
    """Django's login view; django-axes answers a locked-out attempt with 429 (orders.signin.throttle)."""

    form_class = SignInForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True
