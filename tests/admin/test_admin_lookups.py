"""S26: no admin list can be filtered or searched by a secret, and bad filter values are a 400, not a 500.

The attack: ``?secret_ciphertext__startswith=v2.a`` on the accounts changelist, then the next character,
reading the ciphertext out from the row count (``binding`` the same way, a password hash on the user list).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse

from orders.admin.safety import SafeAdminMixin, touches_secret

pytestmark = pytest.mark.django_db


def _staff(user: Any) -> Any:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("orders_exchangeaccount", "secret_ciphertext__startswith=v"),
        ("orders_exchangeaccount", "secret_ciphertext=x"),
        ("orders_exchangeaccount", "secret_hint=abcd"),
        ("orders_exchangeaccount", "binding__startswith=1"),
        ("orders_exchangeaccount", "owner_user__password__startswith=md5"),
        ("orders_auditevent", "account__secret_ciphertext__startswith=v"),
        ("orders_auditevent", "account__binding__contains=a"),
        ("orders_team", "exchange_accounts__secret_ciphertext__startswith=v"),
        ("auth_user", "password__startswith=md5"),
    ],
)
def test_secret_lookups_are_refused(personas: Any, client_for: Any, name: str, query: str) -> None:
    app, model = name.split("_", 1)
    url = reverse(f"admin:{app}_{model}_changelist") + "?" + query
    for user in (personas.superuser, _staff(personas.team_admin)):
        response = client_for(user).get(url)
        assert response.status_code in (400, 403), (user, response.status_code)
        assert personas.team_account.secret_ciphertext[:8] not in response.content.decode()


def test_a_control_lookup_still_works(personas: Any, client_for: Any) -> None:
    url = reverse("admin:orders_exchangeaccount_changelist") + "?endpoint=custom"
    assert client_for(personas.superuser).get(url).status_code == 200


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("orders_auditevent", "created_at__year=99999999999"),
        ("orders_auditevent", "created_at__year=2026&created_at__month=13"),
        ("orders_auditevent", "pk=abc"),
        ("orders_exchangeaccount", "pk=abc"),
        ("orders_exchangeaccount", "last_verified_at__gte=not-a-date"),
        ("orders_team", "id__in=1,x"),
    ],
)
def test_bad_filter_values_are_a_400_page(personas: Any, client_for: Any, name: str, query: str) -> None:
    app, model = name.split("_", 1)
    response = client_for(personas.superuser).get(reverse(f"admin:{app}_{model}_changelist") + "?" + query)
    assert response.status_code == 400


def test_every_registered_admin_is_protected_and_searches_no_secret(rf: Any, personas: Any) -> None:
    request = rf.get("/")
    request.user = personas.superuser
    assert admin.site._registry
    for model_admin in admin.site._registry.values():
        assert isinstance(model_admin, SafeAdminMixin), type(model_admin)
        assert not any(touches_secret(field) for field in model_admin.get_search_fields(request))


def test_search_cannot_reach_a_secret(personas: Any, client_for: Any) -> None:
    """Searching for the ciphertext's start finds nothing (search_fields hold no secret-bearing field)."""
    prefix = personas.team_account.secret_ciphertext[:12]
    response = client_for(personas.superuser).get(reverse("admin:orders_exchangeaccount_changelist"), {"q": prefix})
    assert response.status_code == 200
    assert "0 exchange accounts" in response.content.decode() or "0 results" in response.content.decode()
