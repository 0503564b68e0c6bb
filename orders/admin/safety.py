"""Admin safety for every ModelAdmin (S26): no lookups on secrets, and bad filters are a 400, not a 500.

Django's admin lets anyone who may view a changelist filter it by any local field through the query string
(``?secret_ciphertext__startswith=v2.a``) and reads the row count back: a staff user could read a ciphertext
(or a password hash) character by character. :class:`SafeAdminMixin` refuses every lookup and search that
touches a secret-bearing field, at any depth (``account__secret_ciphertext`` too): Django answers such a
lookup with 400. A filter value the database or Python cannot take (``?created_at__year=99999999999``,
``?pk=abc``) also answers 400 instead of a server error.

:func:`protect_site` applies the mixin to every ModelAdmin registered on a site, including Django's own
user admin and django-otp's device admins; ``orders/admin/__init__.py`` calls it once, last.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.db import DataError
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.views.defaults import bad_request

__all__ = ["SECRET_FIELD_NAMES", "BadFilter", "SafeAdminMixin", "protect_site", "touches_secret"]

# Field names that hold a secret or something derived from one, on any model: never filtered or searched.
SECRET_FIELD_NAMES = frozenset(
    {"secret_ciphertext", "secret_hint", "binding", "password", "secret", "key", "token", "session_data", "session_key"}
)


def touches_secret(lookup: str) -> bool:
    """Whether a lookup or search path (``a__b__startswith``, ``^name``) names a secret-bearing field."""
    path = lookup.lstrip("^=@")
    return any(part in SECRET_FIELD_NAMES for part in path.split(LOOKUP_SEP))


class BadFilter(Exception):
    """A changelist filter value that cannot be applied; answered with 400."""


class SafeAdminMixin:
    """Mix into a ModelAdmin (before ``admin.ModelAdmin``)."""

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        if touches_secret(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]

    def get_search_fields(self, request: HttpRequest) -> Any:
        fields = super().get_search_fields(request)  # type: ignore[misc]
        return [field for field in fields if not touches_secret(field)]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)  # type: ignore[misc]
        return [item for item in filters if not (isinstance(item, str) and touches_secret(item))]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except (IncorrectLookupParameters, ValidationError, ValueError, OverflowError, TypeError) as exc:
            raise BadFilter(type(exc).__name__) from exc

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        try:
            response = super().changelist_view(request, extra_context)  # type: ignore[misc]
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()  # the query runs while rendering: its errors are caught here too
        except (BadFilter, ValidationError, ValueError, OverflowError, DataError) as exc:
            return bad_request(request, exc)
        return response


def protect_site(site: admin.AdminSite) -> None:
    """Give every ModelAdmin registered on ``site`` the :class:`SafeAdminMixin` (idempotent)."""
    for model_admin in site._registry.values():
        cls = type(model_admin)
        if not issubclass(cls, SafeAdminMixin):
            model_admin.__class__ = type(f"Safe{cls.__name__}", (SafeAdminMixin, cls), {})
