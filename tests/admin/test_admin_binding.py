"""S21/S22 in the admin: a stored key goes nowhere new without its secret; custom URLs are for superusers.

The attack this closes: a team admin changes the endpoint or custom URL of the team's account (keeping the
stored secret), then the save, "Verify credentials" or the feed signs a login to the new address.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from orders.models import AuditEvent, ExchangeAccount
from orders.simulator import SimAccount, Simulator
from tests.personas import KEYS, point_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim() -> Iterator[Simulator]:
    public_key, secret = KEYS["Desk A main"]
    account = SimAccount(public_key=public_key, secret=secret, user_id=str(uuid.uuid4()), orders=1, twaps=0)
    with Simulator(accounts=[account], seed=8) as simulator:
        yield simulator


@pytest.fixture
def attacker_sim() -> Iterator[Simulator]:
    """Where an insider would like the key's logins to go: it would capture every auth message."""
    with Simulator(accounts=[], seed=9) as simulator:
        yield simulator


def _staff(user: Any) -> Any:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def _change(client: Any, account: ExchangeAccount, **overrides: str) -> Any:
    data = {
        "label": account.label, "public_key": account.public_key, "secret": "", "endpoint": account.endpoint,
        "custom_url": account.custom_url, "subaccount_id": account.subaccount_id, "enabled": "on", "_save": "Save",
    }  # fmt: skip
    data.update(overrides)
    return client.post(reverse("admin:orders_exchangeaccount_change", args=[account.pk]), data)


def test_team_admin_cannot_point_the_key_at_another_url(
    personas: Any, client_for: Any, sim: Simulator, attacker_sim: Simulator
) -> None:
    account = point_at(personas.team_account, sim.url)
    client = client_for(_staff(personas.team_admin))
    response = _change(client, account, custom_url=attacker_sim.url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Only a superuser can enter or change a custom QFEX address." in body
    # Nor by switching to another endpoint without the secret.
    response = _change(client, account, endpoint="uat", custom_url="")
    assert "type its secret key again" in response.content.decode()
    account.refresh_from_db()
    assert (account.endpoint, account.custom_url) == ("custom", sim.url)
    # "Verify credentials" still signs in only where the key was entered for.
    data = {"action": "verify_credentials", "_selected_action": [account.pk], "index": "0"}
    client.post(reverse("admin:orders_exchangeaccount_changelist"), data)
    assert attacker_sim.handshake_count == 0
    assert sim.request_count("auth") == 1


def test_superuser_changing_the_url_needs_the_secret(
    personas: Any, client_for: Any, sim: Simulator, attacker_sim: Simulator
) -> None:
    account = point_at(personas.team_account, sim.url)
    client = client_for(personas.superuser)
    refused = _change(client, account, custom_url=attacker_sim.url)
    assert refused.status_code == 200
    assert "type its secret key again" in refused.content.decode()
    assert attacker_sim.handshake_count == 0
    moved = _change(client, account, custom_url=attacker_sim.url, secret=KEYS["Desk A main"][1])
    assert moved.status_code == 302
    account.refresh_from_db()
    assert account.custom_url == attacker_sim.url
    assert AuditEvent.objects.filter(account=account, action=AuditEvent.Action.ACCOUNT_SECRET_CHANGED).exists()


def test_a_disallowed_custom_url_is_refused_even_for_a_superuser(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    response = _change(client_for(personas.superuser), account, custom_url="ws://10.0.0.8:8765",
                       secret=KEYS["Desk A main"][1])  # fmt: skip
    assert response.status_code == 200
    assert "not on this server&#x27;s list of allowed QFEX endpoints" in response.content.decode()
