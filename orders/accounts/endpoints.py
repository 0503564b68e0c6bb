"""The endpoint policy of this site (S22): where a stored QFEX key may be sent.

``QFEXDASH_CUSTOM_ENDPOINTS`` lists the ``host`` / ``host:port`` entries a custom URL may name (empty,
the default: no custom URL at all — only QFEX production and UAT). The configured production and UAT
URLs are always allowed (they are the operator's own settings). The same policy is handed to the QFEX
client, which checks every *resolved* address at connect time (:mod:`orders.qfex.policy`), so a name that
later resolves into a private network is still refused.

Only superusers may enter or change a custom URL (pages, admin, command): see :func:`may_set_custom_url`.
"""

from __future__ import annotations

from django.conf import settings

from orders.accounts.people import Visitor
from orders.qfex.policy import EndpointNotAllowed, EndpointPolicy

__all__ = [
    "CUSTOM_URL_SUPERUSERS_ONLY",
    "EndpointNotAllowed",
    "custom_url_problem",
    "endpoint_policy",
    "may_set_custom_url",
]

CUSTOM_URL_SUPERUSERS_ONLY = "Only a superuser can enter or change a custom QFEX address."


def _custom_policy() -> EndpointPolicy:
    return EndpointPolicy.from_entries(settings.QFEXDASH_CUSTOM_ENDPOINTS)


def endpoint_policy() -> EndpointPolicy:
    """The policy the QFEX client connects under: custom entries plus the production and UAT URLs."""
    return _custom_policy().with_urls([settings.QFEX_TRADE_URL, settings.QFEX_UAT_TRADE_URL])


def custom_url_problem(url: str) -> str | None:
    """Why ``url`` may not be used as a custom endpoint, in words; None when the policy lists it."""
    policy = _custom_policy()
    if not policy.allowed:
        return (
            "Custom QFEX addresses are switched off on this server: choose QFEX production or UAT "
            "(an administrator can allow an address with QFEXDASH_CUSTOM_ENDPOINTS)."
        )
    try:
        policy.check_url(url)
    except EndpointNotAllowed:
        return (
            "That address is not on this server's list of allowed QFEX endpoints "
            "(QFEXDASH_CUSTOM_ENDPOINTS); ask an administrator."
        )
    return None


def may_set_custom_url(user: Visitor | None) -> bool:
    """Whether ``user`` may enter or change a custom URL (superusers only; None is the operator's shell)."""
    return user is None or bool(getattr(user, "is_superuser", False) and getattr(user, "is_active", False))
