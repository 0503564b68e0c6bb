"""The sign-in forms: the site's page and the admin's, throttled together by django-axes (S25).

Failed attempts are counted and locked out in :mod:`orders.signin.throttle`; a wrong username and a wrong
password read the same, so the form does not tell which usernames exist.
"""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm


class SignInForm(AuthenticationForm):
    """The sign-in form. Failed attempts are counted and locked out by django-axes (orders.signin.throttle, S25)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password don't match. Both are case-sensitive.",
        "inactive": "That username and password don't match. Both are case-sensitive.",
    }


class AdminSignInForm(AdminAuthenticationForm):
    """The admin site's sign-in, throttled by django-axes with the same counters as the main sign-in page."""
