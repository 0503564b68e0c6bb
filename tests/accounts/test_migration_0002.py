"""S21 migration: secrets stored before destination binding (v1) keep working after ``migrate``."""

from __future__ import annotations

import base64
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps

from orders.accounts import encryption
from orders.accounts.encryption import Destination, SecretUnreadable

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "qfex_secret_stored_before_s21_8d1f"


def _v1_token(secret: str, binding: uuid.UUID, key: encryption.EncryptionKey | None = None) -> str:
    key = key or encryption.configured_keys()[0]
    blob = key.encrypt(secret.encode(), encryption._legacy_associated_data(binding))
    return f"v1.{key.key_id}.{base64.urlsafe_b64encode(blob).decode()}"


def _migrate(target: str) -> StateApps:
    executor = MigrationExecutor(connection)
    executor.migrate([("orders", target)])
    executor.loader.build_graph()
    return executor.loader.project_state([("orders", target)]).apps


def _migrate_to_latest() -> None:
    """Back to the newest migration, so the tests after these find every table (0003 and later too)."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("orders"))


def test_v1_rows_are_re_encrypted_bound_to_their_destination() -> None:
    try:
        old_apps = _migrate("0001_initial")
        Account = old_apps.get_model("orders", "ExchangeAccount")
        binding, other_binding = uuid.uuid4(), uuid.uuid4()
        readable = Account.objects.create(
            label="Old", public_key="qfex_pub_old", secret_ciphertext=_v1_token(SECRET, binding), binding=binding,
            endpoint="custom", custom_url="ws://127.0.0.1:9", owner_team=old_apps.get_model("orders", "Team")
            .objects.create(name="Old desk"),
        )  # fmt: skip
        unreadable_token = "v1.000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        unreadable = Account.objects.create(
            label="Lost", public_key="k", secret_ciphertext=unreadable_token, binding=other_binding,
            owner_team_id=readable.owner_team_id,
        )  # fmt: skip
        _migrate("0002_bind_secrets_to_destination")
    finally:
        _migrate_to_latest()

    from orders.accounts import display, exchange_accounts
    from orders.models import ExchangeAccount

    account = ExchangeAccount.objects.get(pk=readable.pk)
    assert account.secret_ciphertext.startswith("v2.")
    assert exchange_accounts.account_credentials(account).secret == SECRET  # still works after migrating
    ExchangeAccount.objects.filter(pk=account.pk).update(custom_url="ws://127.0.0.1:10")
    account.refresh_from_db()
    with pytest.raises(SecretUnreadable):  # and is now bound to where it goes
        exchange_accounts.account_credentials(account)
    lost = ExchangeAccount.objects.get(pk=unreadable.pk)
    assert lost.secret_ciphertext == unreadable_token  # left alone: it already said "re-enter it"
    assert display.account_key_status(lost).code == "secret_unreadable"


def test_reversing_the_migration_restores_v1_tokens() -> None:
    from orders.accounts import exchange_accounts, teams
    from orders.models import ExchangeAccount, Team

    team = teams.team_create(actor=None, name="Reversible")
    account = exchange_accounts.account_create(
        actor=None, label="R", public_key="qfex_pub_r", secret=SECRET, owner_team=team, endpoint="prod"
    )
    try:
        _migrate("0001_initial")
        token = ExchangeAccount.objects.values_list("secret_ciphertext", flat=True).get(pk=account.pk)
        assert token.startswith("v1.")
        assert encryption.decrypt_legacy_secret(token, account.binding) == SECRET
    finally:
        _migrate_to_latest()
    account.refresh_from_db()
    assert encryption.decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == SECRET
    assert Team.objects.filter(name="Reversible").exists()
