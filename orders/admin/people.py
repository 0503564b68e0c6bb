"""What a superuser can do for a person in the admin's user list (S35): sign them out everywhere, and remove
their second-factor devices — the answer to a lost phone — which signs them out everywhere too.

Both are admin actions of the user list (``orders.admin.member_search`` registers the user admin), open to
superusers only, like every other page of the user admin. Deleting a device from django-otp's own device lists
also ends that person's sessions (:func:`end_sessions_on_device_delete`); and whatever removed a device, a
session that used it is signed out at its next request (``orders.middleware.SecondFactorGoneMiddleware``) and its
live sockets close at their next access re-check (``orders.live.access``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders.accounts import sign_ins

__all__ = ["end_sessions_on_device_delete", "remove_second_factor", "sign_out_everywhere"]


def _superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


def _report(model_admin: Any, request: HttpRequest, done: str, people: int, sessions: int) -> None:
    noun = "person" if people == 1 else "people"
    model_admin.message_user(
        request,
        f"{done} for {people} {noun}: {sessions} session(s) signed out; their live pages close within seconds.",
        messages.SUCCESS,
    )


@admin.action(description="Sign out everywhere (every browser of the selected people)")
def sign_out_everywhere(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    if not _superuser(request):
        model_admin.message_user(request, "Only a superuser can sign people out.", messages.ERROR)
        return
    people = list(queryset)
    ended = sum(sign_ins.sessions_end(person) for person in people)
    _report(model_admin, request, "Signed out everywhere", len(people), ended)


@admin.action(description="Remove second-step devices (lost phone) and sign out everywhere")
def remove_second_factor(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    if not _superuser(request):
        model_admin.message_user(request, "Only a superuser can remove second-step devices.", messages.ERROR)
        return
    people = list(queryset)
    ended = sum(sign_ins.second_factor_remove(person) for person in people)
    _report(model_admin, request, "Removed the second-step devices", len(people), ended)


class _DeviceDeletionEndsSessions:
    """Mixed into django-otp's device admins: deleting a device signs its person out everywhere."""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        sign_ins.second_factor_device_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for device in queryset.select_related("user"):
            sign_ins.second_factor_device_delete(device)


def end_sessions_on_device_delete(site: admin.AdminSite) -> None:
    """Give django-otp's registered device admins :class:`_DeviceDeletionEndsSessions` (idempotent)."""
    for model in (TOTPDevice, StaticDevice):
        model_admin = site._registry.get(model)
        if model_admin is not None and not isinstance(model_admin, _DeviceDeletionEndsSessions):
            cls = type(model_admin)
            model_admin.__class__ = type(f"SessionEnding{cls.__name__}", (_DeviceDeletionEndsSessions, cls), {})
