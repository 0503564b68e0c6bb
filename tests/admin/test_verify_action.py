"""The admin's "Verify credentials" action authenticates each selected account against the simulator."""

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

CHANGELIST = "admin:orders_exchangeaccount_changelist"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """Serves the real keys of "Desk A main" only; the other accounts' keys are unknown to it."""
    public_key, secret = KEYS["Desk A main"]
    account = SimAccount(public_key=public_key, secret=secret, user_id=str(uuid.uuid4()), orders=2, twaps=0)
    with Simulator(accounts=[account], seed=5) as simulator:
        yield simulator


def _run_action(client: Any, accounts: list[ExchangeAccount]) -> Any:
    data = {"action": "verify_credentials", "_selected_action": [a.pk for a in accounts], "index": "0"}
    return client.post(reverse(CHANGELIST), data, follow=True)


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_verify_reports_each_account(personas: Any, client_for: Any, sim: Simulator) -> None:
    good = point_at(personas.team_account, sim.url)
    unknown = point_at(personas.owner_account, sim.url)  # a key the exchange does not know
    response = _run_action(client_for(personas.superuser), [good, unknown])
    assert response.status_code == 200
    messages = _messages(response)
    assert any(m.startswith("“Desk A main”: ") and "accepted" in m for m in messages), messages
    assert any(m.startswith("“Owner personal” was not verified: ") for m in messages), messages
    good.refresh_from_db()
    unknown.refresh_from_db()
    assert good.last_verified_at is not None
    assert good.last_error == ""
    assert unknown.last_verified_at is None
    assert unknown.last_error
    assert unknown.last_error in " ".join(messages)
    assert AuditEvent.objects.filter(account=good, action=AuditEvent.Action.ACCOUNT_VERIFIED).count() == 1
    assert AuditEvent.objects.filter(account=unknown, action=AuditEvent.Action.ACCOUNT_VERIFY_FAILED).count() == 1
    # The changelist now shows the outcome.
    body = response.content.decode()
    assert "Verified" in body


def test_unreachable_endpoint_is_a_message_not_an_error_page(personas: Any, client_for: Any) -> None:
    response = _run_action(client_for(personas.superuser), [personas.team_account])
    assert response.status_code == 200
    assert any("was not verified" in m for m in _messages(response))


def test_team_admin_verifies_only_what_they_manage(personas: Any, client_for: Any, sim: Simulator) -> None:
    personas.team_admin.is_staff = True
    personas.team_admin.save(update_fields=["is_staff"])
    good = point_at(personas.team_account, sim.url)
    # A forged selection of another team's account is filtered out by the changelist queryset.
    response = _run_action(client_for(personas.team_admin), [good, personas.other_team_account])
    good.refresh_from_db()
    assert good.last_verified_at is not None
    assert not AuditEvent.objects.filter(
        account=personas.other_team_account, action__startswith="account_verif"
    ).exists()
    assert not any("Desk B" in m for m in _messages(response))


@pytest.mark.parametrize("persona", ["trader", "viewer"])
def test_read_only_staff_cannot_run_the_action(personas: Any, client_for: Any, persona: str, sim: Simulator) -> None:
    user = getattr(personas, persona)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    account = point_at(personas.team_account, sim.url)
    client = client_for(user)
    changelist = client.get(reverse(CHANGELIST)).content.decode()
    assert "verify_credentials" not in changelist
    _run_action(client, [account])
    account.refresh_from_db()
    assert account.last_verified_at is None
    assert sim.request_count("auth") == 0
    assert not AuditEvent.objects.filter(account=account, action__startswith="account_verif").exists()
