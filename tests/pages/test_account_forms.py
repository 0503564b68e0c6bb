"""Adding and editing personal accounts: write-only secret, verification on save, readable errors, S20."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from orders.encryption import decrypt_secret
from orders.models import AuditEvent, ExchangeAccount
from orders.simulator import SimAccount, Simulator

pytestmark = pytest.mark.django_db

SIM_PUBLIC = "qfex_pub_page_tests"
SIM_SECRET = "qfex_secret_page_tests_5d1e9b7c2a"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        accounts=[SimAccount(public_key=SIM_PUBLIC, secret=SIM_SECRET, user_id=str(uuid.uuid4()), orders=3, twaps=1)],
        seed=3,
    ) as simulator:
        yield simulator


def _form(**overrides: str) -> dict[str, str]:
    data = {
        "label": "My sim account",
        "public_key": SIM_PUBLIC,
        "secret": SIM_SECRET,
        "endpoint": "custom",
        "custom_url": "ws://127.0.0.1:9",
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
    response = client_for(owner).post(reverse("my_account_add"), _form(custom_url=sim.url), follow=True)
    assert response.redirect_chain[-1][0] == reverse("my_accounts")
    account = ExchangeAccount.objects.get(label="My sim account")
    assert account.owner_user == owner
    assert account.owner_team is None
    assert account.last_verified_at is not None
    assert account.last_error == ""
    assert any("QFEX accepted the API key." in m for m in _messages(response))
    assert "state-verified" in response.content.decode()
    assert decrypt_secret(account.secret_ciphertext, account.binding) == SIM_SECRET
    assert AuditEvent.objects.filter(account=account, action=AuditEvent.Action.ACCOUNT_VERIFIED).exists()


def test_add_keeps_a_rejected_account_and_says_why(owner: Any, client_for: Any, sim: Simulator) -> None:
    response = client_for(owner).post(
        reverse("my_account_add"), _form(custom_url=sim.url, secret="not-the-right-secret-at-all"), follow=True
    )
    account = ExchangeAccount.objects.get(label="My sim account")
    assert account.last_verified_at is None
    assert account.last_error
    warning = [m for m in _messages(response) if "could not be verified" in m]
    assert warning
    assert account.last_error in warning[0]
    body = response.content.decode()
    assert "state-error" in body
    assert "not-the-right-secret-at-all" not in body


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
        ({"custom_url": "https://example.com/ws"}, "custom_url", "ws:// or wss://"),
        ({"custom_url": ""}, "custom_url", "Enter the WebSocket address"),
        ({"subaccount_id": "not-a-uuid"}, "subaccount_id", "exactly as QFEX shows it"),
        ({"public_key": "has spaces in it"}, "public_key", "must not contain spaces"),
        ({"endpoint": "mainnet"}, "endpoint", "Select a valid choice"),
        ({"label": "Owner personal"}, "label", "You already have an account called"),
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


def test_prod_endpoint_drops_a_leftover_custom_url(owner: Any, client_for: Any, settings: Any) -> None:
    settings.QFEX_TRADE_URL = "ws://127.0.0.1:9"  # never the real exchange from a test
    client_for(owner).post(reverse("my_account_add"), _form(endpoint="prod", custom_url="garbage"))
    account = ExchangeAccount.objects.get(label="My sim account")
    assert account.endpoint == "prod"
    assert account.custom_url == ""


# --- edit --------------------------------------------------------------------------------------


def test_edit_page_shows_public_key_and_masked_hint_only(owner_account: Any, owner: Any, client_for: Any) -> None:
    from tests.personas import KEYS

    body = client_for(owner).get(reverse("my_account_edit", args=[owner_account.pk])).content.decode()
    public_key, secret = KEYS["Owner personal"]
    assert f'value="{public_key}"' in body
    assert owner_account.masked_secret in body
    assert secret not in body
    assert 'name="secret"' in body
    assert 'name="secret" value' not in body


def test_edit_with_blank_secret_keeps_the_stored_secret(owner_account: Any, owner: Any, client_for: Any) -> None:
    before = owner_account.secret_ciphertext
    data = _form(label="Renamed", public_key=owner_account.public_key, secret="", custom_url=owner_account.custom_url)
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
    data = _form(label=owner_account.label, custom_url=sim.url)
    response = client_for(owner).post(reverse("my_account_edit", args=[owner_account.pk]), data, follow=True)
    owner_account.refresh_from_db()
    assert decrypt_secret(owner_account.secret_ciphertext, owner_account.binding) == SIM_SECRET
    assert owner_account.public_key == SIM_PUBLIC
    assert owner_account.last_verified_at is not None
    assert any("Saved “Owner personal”. QFEX accepted the API key." in m for m in _messages(response))
    assert AuditEvent.objects.filter(account=owner_account, action=AuditEvent.Action.ACCOUNT_SECRET_CHANGED).exists()


def test_edit_errors_keep_input_but_not_the_secret(owner_account: Any, owner: Any, client_for: Any) -> None:
    data = _form(label="Still typed", custom_url="http://wrong", secret="typed-new-secret-value-123")
    response = client_for(owner).post(reverse("my_account_edit", args=[owner_account.pk]), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="Still typed"' in body
    assert "typed-new-secret-value-123" not in body
    owner_account.refresh_from_db()
    assert owner_account.label == "Owner personal"


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
    assert decrypt_secret(account.secret_ciphertext, account.binding) == SIM_SECRET


def test_extra_fields_ignored_on_edit(owner_account: Any, owner: Any, outsider: Any, client_for: Any) -> None:
    binding = owner_account.binding
    ciphertext = owner_account.secret_ciphertext
    data = _form(
        label=owner_account.label,
        public_key=owner_account.public_key,
        secret="",
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
        reverse("logout"),
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
    response = client.post(reverse("login"), {"username": owner.username, "password": PASSWORD})
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
