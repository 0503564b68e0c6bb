"""Adding and editing personal accounts: write-only secret, verification before saving, readable errors,
S20, S21 (a key's secret is typed again to send it anywhere else) and S22 (custom URLs: superusers only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from orders.accounts.encryption import Destination, decrypt_secret
from orders.models import AuditEvent, ExchangeAccount
from orders.simulator import SimAccount, Simulator
from tests.personas import KEYS, point_at

pytestmark = pytest.mark.django_db

SIM_PUBLIC = "qfex_pub_page_tests"
SIM_SECRET = "qfex_secret_page_tests_5d1e9b7c2a"


@pytest.fixture
def sim(settings: Any) -> Iterator[Simulator]:
    """A simulator standing in for QFEX production (custom URLs are for superusers only, S22)."""
    desk_a_public, desk_a_secret = KEYS["Desk A main"]
    accounts = [
        SimAccount(public_key=SIM_PUBLIC, secret=SIM_SECRET, user_id=str(uuid.uuid4()), orders=3, twaps=1),
        SimAccount(public_key=desk_a_public, secret=desk_a_secret, orders=2),
    ]
    with Simulator(accounts=accounts, seed=3) as simulator:
        settings.QFEX_TRADE_URL = simulator.url
        yield simulator


def _form(**overrides: str) -> dict[str, str]:
    # Production is a closed loopback port in tests (tests/early_env.py) unless the ``sim`` fixture runs.
    data = {
        "label": "My sim account",
        "public_key": SIM_PUBLIC,
        "secret": SIM_SECRET,
        "endpoint": "prod",
        "custom_url": "",
        "subaccount_id": "",
    }
    data.update(overrides)
    return data


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- add ---------------------------------------------------------------------------------------


def test_add_page_has_a_write_only_secret_field(owner: Any, client_for: Any) -> None:
    body = client_for(owner).get(reverse("my_account_add")).content.decode()
    assert 'type="password" name="secret"' in body
    assert '<label for="id_secret">' in body


def test_add_verifies_against_the_exchange(owner: Any, client_for: Any, sim: Simulator) -> None:
    response = client_for(owner).post(reverse("my_account_add"), _form(), follow=True)
    assert response.redirect_chain[-1][0] == reverse("my_accounts")
    account = ExchangeAccount.objects.get(label="My sim account")
    assert account.owner_user == owner
    assert account.owner_team is None
    assert account.last_verified_at is not None
    assert account.last_error == ""
    assert any("QFEX accepted the API key." in m for m in _messages(response))
    assert "state-verified" in response.content.decode()
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == SIM_SECRET
    assert AuditEvent.objects.filter(account=account, action=AuditEvent.Action.ACCOUNT_VERIFIED).exists()


def test_a_rejected_key_is_not_saved_and_the_form_stays_open(owner: Any, client_for: Any, sim: Simulator) -> None:
    response = client_for(owner).post(reverse("my_account_add"), _form(secret="not-the-right-secret-at-all"))
    assert response.status_code == 200
    assert not ExchangeAccount.objects.filter(label="My sim account").exists()
    errors = response.context["form"].errors["secret"]
    assert any("QFEX did not accept this key, so nothing was saved" in e for e in errors)
    assert any("QFEX rejected the API key" in e for e in errors)  # the exchange's reason, in words
    body = response.content.decode()
    assert 'value="My sim account"' in body  # the rest of the input is kept
    assert "not-the-right-secret-at-all" not in body  # the secret field is empty again
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ACCOUNT_ADDED).exists()
    assert sim.request_count("auth") == 1  # it was really asked


def test_a_rejected_new_secret_is_not_saved(owner_account: Any, owner: Any, client_for: Any, sim: Simulator) -> None:
    before = owner_account.secret_ciphertext
    data = _form(label=owner_account.label, secret="wrong-secret-for-the-sim-key")
    response = client_for(owner).post(reverse("my_account_edit", args=[owner_account.pk]), data)
    assert response.status_code == 200
    assert any("QFEX did not accept" in e for e in response.context["form"].errors["secret"])
    owner_account.refresh_from_db()
    assert (owner_account.secret_ciphertext, owner_account.public_key) == (before, "qfex_pub_owner_personal")


def test_add_with_unreachable_endpoint_is_saved_with_a_message(owner: Any, client_for: Any) -> None:
    response = client_for(owner).post(reverse("my_account_add"), _form(), follow=True)
    account = ExchangeAccount.objects.get(label="My sim account")
    assert account.last_error
    assert any("could not be verified" in m for m in _messages(response))


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"label": ""}, "label", "Give the account a name."),
        ({"secret": ""}, "secret", "Enter the secret API key."),
        ({"public_key": ""}, "public_key", "Enter the public API key."),
        ({"endpoint": "custom", "custom_url": "ws://127.0.0.1:9"}, "custom_url", "Only a superuser"),
        ({"subaccount_id": "not-a-uuid"}, "subaccount_id", "exactly as QFEX shows it"),
        ({"public_key": "has spaces in it"}, "public_key", "must not contain spaces"),
        ({"endpoint": "mainnet"}, "endpoint", "Choose QFEX production, QFEX UAT or a custom URL."),
        ({"label": "Owner personal"}, "label", "olivia_owner already has an account called “Owner personal”"),
    ],
)
def test_validation_errors_are_shown_by_the_field_and_keep_input(
    owner_account: Any, owner: Any, client_for: Any, overrides: dict[str, str], field: str, words: str
) -> None:
    data = _form(label="Typed label", public_key="typed_public_key")
    data.update(overrides)
    response = client_for(owner).post(reverse("my_account_add"), data)
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors
    assert any(words in e for e in form.errors[field])
    body = response.content.decode()
    assert f'id="id_{field}_error"' in body
    assert 'aria-invalid="true"' in body
    if field not in ("label", "public_key"):
        assert 'value="Typed label"' in body
        assert 'value="typed_public_key"' in body
    # The secret is never echoed back, even though the form is shown again.
    if data["secret"]:
        assert data["secret"] not in body
    assert ExchangeAccount.objects.filter(owner_user=owner).count() == 1


@pytest.mark.parametrize(
    ("custom_url", "words"),
    [
        ("https://example.com/ws", "ws:// or wss://"),
        ("", "Enter the WebSocket address"),
        ("ws://10.1.2.3:8765", "not on this server's list of allowed QFEX endpoints"),
        ("wss://qfex.example.net", "not on this server's list of allowed QFEX endpoints"),
    ],
)
def test_custom_urls_are_checked_for_superusers(superuser: Any, client_for: Any, custom_url: str, words: str) -> None:
    response = client_for(superuser).post(reverse("my_account_add"), _form(endpoint="custom", custom_url=custom_url))
    assert response.status_code == 200
    assert any(words in e for e in response.context["form"].errors["custom_url"])
    assert not ExchangeAccount.objects.exists()


def test_a_superuser_may_add_an_allowed_custom_url(superuser: Any, client_for: Any, settings: Any) -> None:
    with Simulator(accounts=[SimAccount(public_key=SIM_PUBLIC, secret=SIM_SECRET, orders=1)], seed=1) as other:
        data = _form(endpoint="custom", custom_url=other.url)
        response = client_for(superuser).post(reverse("my_account_add"), data, follow=True)
    account = ExchangeAccount.objects.get(label="My sim account")
    assert (account.endpoint, account.custom_url, account.owner_user) == ("custom", other.url, superuser)
    assert any("QFEX accepted the API key." in m for m in _messages(response))


def test_no_custom_url_at_all_when_the_policy_is_empty(superuser: Any, client_for: Any, settings: Any) -> None:
    settings.QFEXDASH_CUSTOM_ENDPOINTS = []
    response = client_for(superuser).post(
        reverse("my_account_add"), _form(endpoint="custom", custom_url="ws://127.0.0.1:9")
    )
    assert any("switched off on this server" in e for e in response.context["form"].errors["custom_url"])


def test_prod_endpoint_drops_a_leftover_custom_url(owner: Any, client_for: Any, settings: Any) -> None:
    settings.QFEX_TRADE_URL = "ws://127.0.0.1:9"  # never the real exchange from a test
    client_for(owner).post(reverse("my_account_add"), _form(endpoint="prod", custom_url="garbage"))
    account = ExchangeAccount.objects.get(label="My sim account")
    assert account.endpoint == "prod"
    assert account.custom_url == ""


# --- edit --------------------------------------------------------------------------------------


def test_edit_page_shows_public_key_and_masked_hint_only(owner_account: Any, owner: Any, client_for: Any) -> None:
    body = client_for(owner).get(reverse("my_account_edit", args=[owner_account.pk])).content.decode()
    public_key, secret = KEYS["Owner personal"]
    assert f'value="{public_key}"' in body
    assert owner_account.masked_secret in body
    assert secret not in body
    assert 'name="secret"' in body
    assert 'name="secret" value' not in body


def test_edit_with_blank_secret_keeps_the_stored_secret(owner_account: Any, owner: Any, client_for: Any) -> None:
    before = owner_account.secret_ciphertext
    data = _form(
        label="Renamed", public_key=owner_account.public_key, secret="", endpoint="custom",
        custom_url=owner_account.custom_url,
    )  # fmt: skip
    response = client_for(owner).post(reverse("my_account_edit", args=[owner_account.pk]), data)
    assert response.status_code == 302
    owner_account.refresh_from_db()
    assert owner_account.label == "Renamed"
    assert owner_account.secret_ciphertext == before
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ACCOUNT_SECRET_CHANGED).exists()
    changed = AuditEvent.objects.get(action=AuditEvent.Action.ACCOUNT_CHANGED)
    assert changed.detail["changed"]["label"] == ["Owner personal", "Renamed"]


def test_edit_with_new_secret_replaces_it_and_verifies(
    owner_account: Any, owner: Any, client_for: Any, sim: Simulator
) -> None:
    data = _form(label=owner_account.label)  # to production (the simulator here), with the new key pair
    response = client_for(owner).post(reverse("my_account_edit", args=[owner_account.pk]), data, follow=True)
    owner_account.refresh_from_db()
    assert (
        decrypt_secret(owner_account.secret_ciphertext, owner_account.binding, Destination.of(owner_account))
        == SIM_SECRET
    )
    assert owner_account.public_key == SIM_PUBLIC
    assert owner_account.last_verified_at is not None
    assert any("Saved “Owner personal”. QFEX accepted the API key." in m for m in _messages(response))
    assert AuditEvent.objects.filter(account=owner_account, action=AuditEvent.Action.ACCOUNT_SECRET_CHANGED).exists()


def test_edit_errors_keep_input_but_not_the_secret(owner_account: Any, owner: Any, client_for: Any) -> None:
    data = _form(label="Still typed", endpoint="custom", custom_url="http://wrong", secret="typed-new-secret-value-123")
    response = client_for(owner).post(reverse("my_account_edit", args=[owner_account.pk]), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="Still typed"' in body
    assert "typed-new-secret-value-123" not in body
    owner_account.refresh_from_db()
    assert owner_account.label == "Owner personal"


# --- S21: the secret goes where it was entered for, nowhere else -----------------------------------


@pytest.fixture
def team_account_on_sim(personas: Any, sim: Simulator) -> ExchangeAccount:
    """Desk A's account on the simulator, which knows its key (a superuser set this up)."""
    return point_at(personas.team_account, sim.url)


def _edit_data(account: ExchangeAccount, **overrides: str) -> dict[str, str]:
    data = {
        "label": account.label, "public_key": account.public_key, "secret": "", "endpoint": account.endpoint,
        "custom_url": account.custom_url, "subaccount_id": account.subaccount_id,
    }  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "overrides",
    [
        {"endpoint": "prod", "custom_url": ""},
        {"endpoint": "uat", "custom_url": ""},
        {"public_key": "qfex_pub_attackers_own_key"},
        {"subaccount_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
    ],
)
def test_a_team_admin_cannot_send_the_stored_key_elsewhere_without_its_secret(
    personas: Any, team_account_on_sim: ExchangeAccount, client_for: Any, sim: Simulator, overrides: dict[str, str]
) -> None:
    account = team_account_on_sim
    before = ExchangeAccount.objects.values().get(pk=account.pk)
    handshakes = sim.handshake_count
    data = _edit_data(account, **overrides)
    response = client_for(personas.team_admin).post(reverse("my_account_edit", args=[account.pk]), data)
    assert response.status_code == 200
    assert any("type its secret key again" in e for e in response.context["form"].errors["secret"])
    assert ExchangeAccount.objects.values().get(pk=account.pk) == before  # nothing changed
    assert sim.handshake_count == handshakes  # and nothing was sent anywhere: no verify, no login
    assert not AuditEvent.objects.filter(
        account=account, action=AuditEvent.Action.ACCOUNT_CHANGED, actor=personas.team_admin
    ).exists()


def test_a_team_admin_cannot_change_a_custom_url_even_with_the_secret(
    personas: Any, team_account_on_sim: ExchangeAccount, client_for: Any, sim: Simulator
) -> None:
    account = team_account_on_sim
    data = _edit_data(account, custom_url="ws://127.0.0.1:9", secret=KEYS["Desk A main"][1])
    response = client_for(personas.team_admin).post(reverse("my_account_edit", args=[account.pk]), data)
    assert response.status_code == 200
    assert any("Only a superuser" in e for e in response.context["form"].errors["custom_url"])
    account.refresh_from_db()
    assert account.custom_url == sim.url


def test_with_the_secret_typed_again_the_key_moves_and_is_verified(
    personas: Any, team_account_on_sim: ExchangeAccount, client_for: Any, sim: Simulator
) -> None:
    account = team_account_on_sim
    data = _edit_data(account, endpoint="prod", custom_url="", secret=KEYS["Desk A main"][1])
    response = client_for(personas.team_admin).post(reverse("my_account_edit", args=[account.pk]), data, follow=True)
    assert any("QFEX accepted the API key." in m for m in _messages(response))
    account.refresh_from_db()
    assert (account.endpoint, account.custom_url) == ("prod", "")
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == KEYS["Desk A main"][1]


def test_a_destination_changed_under_the_secret_does_not_decrypt(
    personas: Any, team_account_on_sim: ExchangeAccount, sim: Simulator
) -> None:
    """Even a direct database edit (no form) cannot point the stored secret somewhere else."""
    from orders.accounts import exchange_accounts, verify
    from orders.accounts.encryption import SecretUnreadable

    account = team_account_on_sim
    ExchangeAccount.objects.filter(pk=account.pk).update(custom_url="ws://127.0.0.1:9")
    account.refresh_from_db()
    with pytest.raises(SecretUnreadable):
        exchange_accounts.account_credentials(account)
    handshakes = sim.handshake_count
    assert not verify.account_verify(actor=None, account=account).ok
    assert sim.handshake_count == handshakes


# --- S20: extra fields and CSRF ----------------------------------------------------------------


def test_extra_fields_cannot_set_owner_ciphertext_or_binding(
    owner: Any, other_team: Any, outsider: Any, client_for: Any
) -> None:
    forged_binding = str(uuid.uuid4())
    data = _form(
        owner_user=str(outsider.pk),
        owner_team=str(other_team.pk),
        secret_ciphertext="v1.aaaaaaaaaaaa.forged",
        secret_hint="XXXX",
        binding=forged_binding,
        last_verified_at="2020-01-01T00:00:00Z",
        last_error="",
        enabled="false",
        id="12345",
    )
    client_for(owner).post(reverse("my_account_add"), data)
    account = ExchangeAccount.objects.get(label="My sim account")
    assert account.owner_user == owner
    assert account.owner_team is None
    assert str(account.binding) != forged_binding
    assert account.pk != 12345
    assert account.enabled is True
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == SIM_SECRET


def test_extra_fields_ignored_on_edit(owner_account: Any, owner: Any, outsider: Any, client_for: Any) -> None:
    binding = owner_account.binding
    ciphertext = owner_account.secret_ciphertext
    data = _form(
        label=owner_account.label,
        public_key=owner_account.public_key,
        secret="",
        endpoint="custom",
        custom_url=owner_account.custom_url,
        owner_user=str(outsider.pk),
        secret_ciphertext="v1.aaaaaaaaaaaa.forged",
        binding=str(uuid.uuid4()),
    )
    client_for(owner).post(reverse("my_account_edit", args=[owner_account.pk]), data)
    owner_account.refresh_from_db()
    assert owner_account.owner_user == owner
    assert owner_account.binding == binding
    assert owner_account.secret_ciphertext == ciphertext


def test_posts_without_csrf_token_are_refused(owner_account: Any, owner: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    pk = owner_account.pk
    for url in [
        reverse("my_account_add"),
        reverse("my_account_edit", args=[pk]),
        reverse("my_account_disable", args=[pk]),
        reverse("my_account_enable", args=[pk]),
        reverse("my_account_delete", args=[pk]),
        reverse("signout"),
    ]:
        response = client.post(url, _form(label="CSRF"))
        assert response.status_code == 403, url
    owner_account.refresh_from_db()
    assert owner_account.label == "Owner personal"
    assert owner_account.enabled is True
    assert not ExchangeAccount.objects.filter(label="CSRF").exists()
    assert "_auth_user_id" in client.session  # the CSRF-less logout did not sign out either


def test_sign_in_without_csrf_token_is_refused(owner: Any) -> None:
    from tests.personas import PASSWORD

    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("signin"), {"username": owner.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_csrf_token_from_the_page_is_accepted(owner_account: Any, owner: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    client.get(reverse("my_accounts"))
    token = client.cookies["csrftoken"].value
    response = client.post(reverse("my_account_disable", args=[owner_account.pk]), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    owner_account.refresh_from_db()
    assert owner_account.enabled is False
