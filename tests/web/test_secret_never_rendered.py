"""S14: a secret, once typed in, never comes back in any page or admin page (nor in the admin's history)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from orders.models import AuditEvent, ExchangeAccount
from tests.personas import KEYS

pytestmark = pytest.mark.django_db

PAGE_SECRET = "page-typed-secret-SENTINEL-a1b2c3d4e5"
PAGE_SECRET_2 = "page-replaced-secret-SENTINEL-f6e7d8"
ADMIN_SECRET = "admin-typed-secret-SENTINEL-9a8b7c6d"
ADMIN_SECRET_2 = "admin-replaced-secret-SENTINEL-0f1e2d"
ALL_SECRETS = [PAGE_SECRET, PAGE_SECRET_2, ADMIN_SECRET, ADMIN_SECRET_2, *(secret for _, secret in KEYS.values())]


def _account_data(label: str, secret: str, **extra: str) -> dict[str, str]:
    return {
        "label": label,
        "public_key": f"pub_{label.replace(' ', '_')}",
        "secret": secret,
        "endpoint": "prod",  # a closed loopback port in tests; custom URLs are for superusers (S22)
        "custom_url": "",
        "subaccount_id": "",
        **extra,
    }


def _assert_no_secret(response: Any, where: str) -> None:
    assert response.status_code in (200, 302, 403, 404), (where, response.status_code)
    body = response.content.decode()
    for secret in ALL_SECRETS:
        assert secret not in body, f"a secret appears in {where}"
        # Not even a recognisable part of it (the masked hint's four characters are allowed).
        assert secret[:12] not in body, f"part of a secret appears in {where}"


def _page_urls(account: ExchangeAccount) -> list[str]:
    return [
        reverse("account_list"),
        reverse("account_detail", args=[account.pk]),
        reverse("my_accounts"),
        reverse("my_account_add"),
        reverse("my_account_edit", args=[account.pk]),
        reverse("my_account_delete", args=[account.pk]),
        reverse("audit_trail"),
    ]


def _admin_urls(account: ExchangeAccount, team_pk: int) -> list[str]:
    urls = [
        reverse("admin:index"),
        reverse("admin:orders_exchangeaccount_changelist"),
        reverse("admin:orders_exchangeaccount_add"),
        reverse("admin:orders_exchangeaccount_change", args=[account.pk]),
        reverse("admin:orders_exchangeaccount_history", args=[account.pk]),
        reverse("admin:orders_exchangeaccount_delete", args=[account.pk]),
        reverse("admin:orders_team_changelist"),
        reverse("admin:orders_team_change", args=[team_pk]),
        reverse("admin:orders_auditevent_changelist"),
    ]
    urls += [
        reverse("admin:orders_auditevent_change", args=[pk]) for pk in AuditEvent.objects.values_list("pk", flat=True)
    ]
    return urls


def test_no_page_or_admin_page_shows_a_secret(personas: Any, client_for: Any) -> None:
    owner = client_for(personas.owner)
    personas.team_admin.is_staff = True
    personas.team_admin.save(update_fields=["is_staff"])
    team_admin = client_for(personas.team_admin)
    root = client_for(personas.superuser)

    # Typed in on the pages: add, then replace. Also a failed form (the secret must not be echoed).
    _assert_no_secret(
        owner.post(reverse("my_account_add"), {**_account_data("Typed", PAGE_SECRET), "label": ""}), "add error"
    )
    assert owner.post(reverse("my_account_add"), _account_data("Typed", PAGE_SECRET)).status_code == 302
    typed = ExchangeAccount.objects.get(label="Typed")
    edit_url = reverse("my_account_edit", args=[typed.pk])
    _assert_no_secret(
        owner.post(edit_url, _account_data("Typed", PAGE_SECRET_2, endpoint="custom", custom_url="http://x")),
        "edit error",
    )
    assert owner.post(edit_url, _account_data("Typed", PAGE_SECRET_2)).status_code == 302

    # Typed in on the admin: add, then replace; and a failed admin form.
    add_url = reverse("admin:orders_exchangeaccount_add")
    admin_data = _account_data("Admin typed", ADMIN_SECRET, owner_team=str(personas.team.pk), enabled="on")
    _assert_no_secret(
        team_admin.post(add_url, {**admin_data, "endpoint": "custom", "custom_url": "ftp://x"}), "admin add error"
    )
    assert team_admin.post(add_url, admin_data).status_code == 302
    admin_typed = ExchangeAccount.objects.get(label="Admin typed")
    change_url = reverse("admin:orders_exchangeaccount_change", args=[admin_typed.pk])
    changed = {**admin_data, "secret": ADMIN_SECRET_2}
    changed.pop("owner_team")
    _assert_no_secret(team_admin.post(change_url, {**changed, "endpoint": "nowhere"}), "admin change error")
    assert team_admin.post(change_url, changed).status_code == 302

    # Every page, as every persona who can open it.
    for client, account in [(owner, typed), (team_admin, admin_typed), (root, typed), (root, admin_typed)]:
        for url in _page_urls(account):
            _assert_no_secret(client.get(url), url)
    for client, account in [(team_admin, admin_typed), (root, typed), (root, admin_typed)]:
        for url in _admin_urls(account, personas.team.pk):
            _assert_no_secret(client.get(url), url)
    viewer = client_for(personas.viewer)
    _assert_no_secret(viewer.get(reverse("account_detail", args=[admin_typed.pk])), "viewer detail")
    _assert_no_secret(Client().get(reverse("signin")), "login page")

    # The admin's history keeps field names only.
    for entry in LogEntry.objects.all():
        for secret in ALL_SECRETS:
            assert secret not in entry.change_message
            assert secret not in entry.object_repr
    # And the audit trail's details never carry one.
    for event in AuditEvent.objects.all():
        for secret in ALL_SECRETS:
            assert secret not in str(event.detail)
            assert secret not in event.target
