"""One copy of each field rule: the same bad input gets the same words from the "My accounts" form, the
admin's form, the services and the ``qfex_account`` command (orders/accounts/rules.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.accounts import exchange_accounts, teams
from orders.forms import AccountForm, ExchangeAccountAdminForm, TeamAdminForm
from orders.models import ExchangeAccount

SECRET = "qfex_secret_rules_test_5e1d7c3b9a"
UUID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"

# (field, what is typed): each is refused by a rule, whoever checks it. The command reads ``--endpoint`` as
# prod, uat or a ws(s):// address, so an https:// one is refused there as an unknown choice, not as an address.
BAD_INPUT = [
    pytest.param("custom_url", {"endpoint": "custom", "custom_url": "wss://"}, id="no-host"),
    pytest.param("custom_url", {"endpoint": "custom", "custom_url": "ws://me:pw@127.0.0.1:9"}, id="credentials"),
    pytest.param("custom_url", {"endpoint": "custom", "custom_url": "ws://127.0.0.1:99999"}, id="bad-port"),
    pytest.param("custom_url", {"endpoint": "custom", "custom_url": "ws://10.1.2.3:8765"}, id="not-allowed"),
    pytest.param("subaccount_id", {"subaccount_id": "not-a-uuid"}, id="subaccount"),
    pytest.param("public_key", {"public_key": "has spaces in it"}, id="public-key"),
    pytest.param("label", {"label": "Owner personal"}, id="label-taken"),
]


def _typed(overrides: dict[str, str]) -> dict[str, Any]:
    return {"label": "New account", "public_key": "qfex_pub_rules", "endpoint": "prod", "custom_url": "", **overrides}


def _from_service(owner: Any, superuser: Any, field: str, typed: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        exchange_accounts.account_create(actor=superuser, owner_user=owner, secret=SECRET, **typed)
    return refused.value.message_dict[field]


def _from_page_form(owner: Any, superuser: Any, field: str, typed: dict[str, str]) -> list[str]:
    # A superuser adding for the owner: only a superuser may enter a custom address at all.
    form = AccountForm({**typed, "secret": SECRET}, owner_user=owner, user=superuser)
    assert not form.is_valid()
    return [str(message) for message in form.errors[field]]


def _from_admin_form(owner: Any, superuser: Any, field: str, typed: dict[str, str]) -> list[str]:
    form_class = type("Form", (ExchangeAccountAdminForm,), {"acting_user": superuser})
    form = form_class({**typed, "secret": SECRET, "owner_user": str(owner.pk), "enabled": "on"})
    assert not form.is_valid()
    return form.errors[field]


def _from_command(owner: Any, typed: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("QFEX_SECRET_KEY", SECRET)
    endpoint = typed["custom_url"] if typed["endpoint"] == "custom" else typed["endpoint"]
    args = ["--label", typed["label"], "--owner", owner.username, "--public-key", typed["public_key"]]
    args += ["--endpoint", endpoint, "--no-verify"]
    if typed.get("subaccount_id"):
        args += ["--account-id", typed["subaccount_id"]]
    with pytest.raises(CommandError) as refused:
        call_command("qfex_account", "add", *args)
    return str(refused.value)


@pytest.mark.parametrize(("field", "overrides"), BAD_INPUT)
def test_a_rule_says_the_same_wherever_it_is_checked(
    personas: Any, field: str, overrides: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    typed = _typed(overrides)
    owner, superuser = personas.owner, personas.superuser
    service = _from_service(owner, superuser, field, typed)
    assert len(service) == 1
    assert _from_page_form(owner, superuser, field, typed) == service
    assert _from_admin_form(owner, superuser, field, typed) == service
    assert _from_command(owner, typed, monkeypatch) == service[0]
    assert ExchangeAccount.objects.filter(label="New account").count() == 0


def test_a_taken_team_name_reads_the_same_in_the_admin_and_the_service(personas: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        teams.team_create(actor=personas.superuser, name="desk a")  # Desk A exists; case does not count
    form = TeamAdminForm({"name": "desk a"})
    assert not form.is_valid()
    assert form.errors["name"] == refused.value.message_dict["name"] == ["A team called “desk a” already exists."]


def test_a_subaccount_id_is_stored_in_its_canonical_form_from_the_page_form(personas: Any) -> None:
    form = AccountForm(
        {**_typed({"subaccount_id": UUID.upper()}), "secret": SECRET}, owner_user=personas.owner, user=personas.owner
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["subaccount_id"] == UUID
