"""An account's key status in words (S9): a clear state for every case, never an exception, never a decryption."""

from __future__ import annotations

import pytest
from django.utils import timezone

from orders.accounts import display, encryption, exchange_accounts
from orders.accounts.encryption import Destination, SecretUnreadable, token_key_id
from tests.accounts.conftest import KEY_NEW, KEY_OTHER
from tests.personas import KEYS

UNREADABLE = "The stored secret can't be decrypted — re-enter it."


def test_state_codes(personas) -> None:
    account = personas.owner_account
    assert display.account_key_status(account).code == "unverified"
    account.last_verified_at = timezone.now()
    assert display.account_key_status(account).code == "verified"
    account.last_error = "QFEX rejected the API key."
    state = display.account_key_status(account)
    assert (state.code, state.detail) == ("error", "QFEX rejected the API key.")
    account.enabled = False
    assert display.account_key_status(account).code == "disabled"


def test_wrong_key_gives_a_clear_state_not_an_exception(personas, use_keys) -> None:
    use_keys(KEY_OTHER)  # the key that encrypted the personas' secrets is gone
    for account in (personas.owner_account, personas.team_account):
        state = display.account_key_status(account)
        assert (state.code, state.detail) == ("secret_unreadable", UNREADABLE)
        with pytest.raises(SecretUnreadable):
            exchange_accounts.account_credentials(account)


def test_state_never_raises(personas, use_keys) -> None:
    account = personas.owner_account
    account.secret_ciphertext = "garbage"
    assert display.account_key_status(account).code == "secret_unreadable"
    use_keys()  # no keys at all, and no key file in the test state folder
    state = display.account_key_status(personas.team_account)
    assert state.code == "secret_unreadable"
    assert "QFEXDASH_ENCRYPTION_KEYS" in state.detail


def test_state_does_not_need_the_secret_decrypted(personas, use_keys) -> None:
    """Listing accounts reads only the key id: a valid configuration with the key listed is "readable"."""
    use_keys(KEY_NEW, "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM=")
    assert token_key_id(personas.owner_account.secret_ciphertext) != token_key_id(
        encryption.encrypt_secret("x", personas.owner_account.binding, Destination.of(personas.owner_account))
    )
    assert display.account_key_status(personas.owner_account).code == "unverified"
    assert KEYS["Owner personal"][1] not in repr(display.account_key_status(personas.owner_account))
