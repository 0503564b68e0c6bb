"""Encryption at rest: token format, key ids, row binding, rotation lists and key validation (S8, S9, S11)."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from orders.accounts import encryption
from orders.accounts.encryption import (
    Destination,
    EncryptionKeyError,
    SecretUnreadable,
    configured_keys,
    decrypt_secret,
    encrypt_secret,
    ensure_local_key_file,
    token_key_id,
    validate_encryption_keys,
)
from tests.accounts.conftest import KEY_NEW, KEY_OLD, KEY_OTHER

SECRET = "qfex_secret_unit_test_5d1c7b9a"
WHERE = Destination(public_key="qfex_pub_unit_test", endpoint="prod")


def _flip_byte(token: str, index: int) -> str:
    version, key_id, payload = token.split(".")
    blob = bytearray(base64.urlsafe_b64decode(payload))
    blob[index] ^= 0x01
    return f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(blob)).decode()}"


def _key_id(key: str) -> str:
    return hashlib.sha256(base64.urlsafe_b64decode(key)).hexdigest()[:12]


def test_round_trip_and_token_format() -> None:
    binding = uuid.uuid4()
    token = encrypt_secret(SECRET, binding, WHERE)
    assert re.fullmatch(r"v2\.[0-9a-f]{12}\.[A-Za-z0-9_\-]+=*", token)
    assert token_key_id(token) == _key_id(KEY_OLD)
    assert SECRET not in token
    assert decrypt_secret(token, binding, WHERE) == SECRET
    assert decrypt_secret(token, str(binding), WHERE) == SECRET  # a UUID's text binds the same row
    # A fresh nonce each time: the same secret never gives the same token.
    assert encrypt_secret(SECRET, binding, WHERE) != token


def test_unicode_secret_round_trips() -> None:
    binding = uuid.uuid4()
    assert decrypt_secret(encrypt_secret("sécret-ключ-🔑", binding, WHERE), binding, WHERE) == "sécret-ключ-🔑"


def test_first_key_encrypts_and_every_key_decrypts(use_keys) -> None:
    binding = uuid.uuid4()
    use_keys(KEY_OLD)
    old_token = encrypt_secret(SECRET, binding, WHERE)
    use_keys(KEY_NEW, KEY_OLD)
    new_token = encrypt_secret(SECRET, binding, WHERE)
    assert token_key_id(new_token) == _key_id(KEY_NEW)
    assert decrypt_secret(old_token, binding, WHERE) == SECRET
    assert decrypt_secret(new_token, binding, WHERE) == SECRET
    assert [key.key_id for key in configured_keys()] == [_key_id(KEY_NEW), _key_id(KEY_OLD)]


def test_wrong_key_is_secret_unreadable_with_the_user_message(use_keys) -> None:
    binding = uuid.uuid4()
    token = encrypt_secret(SECRET, binding, WHERE)
    use_keys(KEY_OTHER)
    with pytest.raises(SecretUnreadable) as caught:
        decrypt_secret(token, binding, WHERE)
    assert caught.value.user_message == "The stored secret can't be decrypted — re-enter it."
    assert _key_id(KEY_OLD) in str(caught.value)  # tells the operator which key is missing
    assert KEY_OLD not in str(caught.value)


def test_ciphertext_copied_to_another_row_does_not_decrypt() -> None:
    """S11: the row's binding is authenticated, so a token moved to another row fails."""
    token = encrypt_secret(SECRET, uuid.uuid4(), WHERE)
    with pytest.raises(SecretUnreadable):
        decrypt_secret(token, uuid.uuid4(), WHERE)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: _flip_byte(t, 20),  # a ciphertext byte
        lambda t: _flip_byte(t, 3),  # a nonce byte
        lambda t: _flip_byte(t, -1),  # a tag byte
        lambda t: "v3" + t[2:],  # unknown format version
        lambda t: t.split(".", 2)[0] + "." + t.split(".", 2)[1] + ".AAAA",  # truncated
        lambda t: "not a token",
        lambda t: "",
        lambda t: t + ".extra",
    ],
)
def test_tampered_or_malformed_tokens_are_unreadable(mangle) -> None:
    binding = uuid.uuid4()
    with pytest.raises(SecretUnreadable):
        decrypt_secret(mangle(encrypt_secret(SECRET, binding, WHERE)), binding, WHERE)


def test_token_key_id_of_garbage_is_none() -> None:
    assert token_key_id("garbage") is None
    assert token_key_id("v1.short.AAAA") is None


def test_key_repr_never_shows_key_material() -> None:
    key = configured_keys()[0]
    assert repr(key) == f"EncryptionKey(key_id='{_key_id(KEY_OLD)}')"
    raw = base64.urlsafe_b64decode(KEY_OLD)
    assert KEY_OLD not in repr(key)
    assert repr(raw) not in repr(key)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["zz%not*a*key%zz"], "not URL-safe base64"),
        (["c2hvcnQta2V5LW9ubHk="], "decodes to 14 bytes"),  # valid base64, 14 bytes
        ([KEY_NEW, KEY_NEW], "repeats an earlier key"),
        ([KEY_NEW, "zz%not*a*key%zz"], "key #2"),
    ],
)
def test_malformed_keys_raise_a_clear_error_without_key_material(use_keys, keys, expected) -> None:
    use_keys(*keys)
    with pytest.raises(EncryptionKeyError) as caught:
        validate_encryption_keys()
    message = str(caught.value)
    assert isinstance(caught.value, ImproperlyConfigured)
    assert "QFEXDASH_ENCRYPTION_KEYS" in message
    assert expected in message
    assert "Fernet.generate_key()" in message
    for key in keys:
        assert key not in message
    # Everything that needs a key fails the same way rather than encrypting with something half-read.
    with pytest.raises(EncryptionKeyError):
        encrypt_secret(SECRET, uuid.uuid4(), WHERE)


def test_missing_keys_raise_a_clear_error(use_keys, settings, tmp_path: Path) -> None:
    settings.STATE_DIR = tmp_path
    use_keys()
    with pytest.raises(EncryptionKeyError) as caught:
        configured_keys()
    assert "QFEXDASH_ENCRYPTION_KEYS is not set" in str(caught.value)
    assert "Fernet.generate_key()" in str(caught.value)


def test_comma_separated_string_setting_is_accepted(settings) -> None:
    settings.QFEXDASH_ENCRYPTION_KEYS = f" {KEY_NEW} , {KEY_OLD} "
    assert [key.key_id for key in configured_keys()] == [_key_id(KEY_NEW), _key_id(KEY_OLD)]


def test_local_key_file_is_created_private_and_used(use_keys, settings, tmp_path: Path) -> None:
    settings.STATE_DIR = tmp_path / "state"
    use_keys()
    path, created = ensure_local_key_file()
    assert created
    assert path == tmp_path / "state" / "encryption_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    file_key = path.read_text().strip()
    assert len(base64.urlsafe_b64decode(file_key)) == 32
    assert [key.key_id for key in configured_keys()] == [_key_id(file_key)]
    binding = uuid.uuid4()
    assert decrypt_secret(encrypt_secret(SECRET, binding, WHERE), binding, WHERE) == SECRET

    again, created_again = ensure_local_key_file()
    assert (again, created_again) == (path, False)
    assert path.read_text().strip() == file_key  # never overwritten


def test_setting_wins_over_the_local_key_file(use_keys, settings, tmp_path: Path) -> None:
    settings.STATE_DIR = tmp_path
    use_keys(KEY_NEW)
    ensure_local_key_file()
    assert [key.key_id for key in configured_keys()] == [_key_id(KEY_NEW)]


def test_malformed_local_key_file_is_an_error(use_keys, settings, tmp_path: Path) -> None:
    settings.STATE_DIR = tmp_path
    (tmp_path / "encryption_key").write_text("too-short\n")
    use_keys()
    with pytest.raises(EncryptionKeyError) as caught:
        configured_keys()
    assert str(tmp_path / "encryption_key") in str(caught.value)
    assert "too-short" not in str(caught.value)


def test_key_cache_follows_setting_changes(use_keys) -> None:
    use_keys(KEY_NEW)
    assert configured_keys()[0].key_id == _key_id(KEY_NEW)
    use_keys(KEY_OTHER)
    assert configured_keys()[0].key_id == _key_id(KEY_OTHER)
    encryption.clear_key_cache()
    assert configured_keys()[0].key_id == _key_id(KEY_OTHER)


# --- S21: the secret is bound to where it may be sent -----------------------------------------------


@pytest.mark.parametrize(
    "moved",
    [
        Destination(public_key="qfex_pub_someone_else", endpoint="prod"),
        Destination(public_key="qfex_pub_unit_test", endpoint="uat"),
        Destination(public_key="qfex_pub_unit_test", endpoint="custom", custom_url="ws://attacker.example:443"),
        Destination(public_key="qfex_pub_unit_test", endpoint="prod", subaccount_id=str(uuid.UUID(int=7))),
    ],
)
def test_a_token_does_not_decrypt_for_another_destination(moved: Destination) -> None:
    binding = uuid.uuid4()
    token = encrypt_secret(SECRET, binding, WHERE)
    with pytest.raises(SecretUnreadable) as caught:
        decrypt_secret(token, binding, moved)
    assert "destination" in str(caught.value)


def test_custom_urls_are_bound_exactly() -> None:
    binding = uuid.uuid4()
    here = Destination(public_key="k", endpoint="custom", custom_url="ws://127.0.0.1:8765")
    token = encrypt_secret(SECRET, binding, here)
    assert decrypt_secret(token, binding, here) == SECRET
    for url in ("ws://127.0.0.1:8766", "wss://127.0.0.1:8765", "ws://127.0.0.1:8765/other"):
        with pytest.raises(SecretUnreadable):
            decrypt_secret(token, binding, Destination(public_key="k", endpoint="custom", custom_url=url))


def test_a_v1_token_is_never_decrypted_for_use_but_migrates() -> None:
    binding = uuid.uuid4()
    key = configured_keys()[0]
    blob = key.encrypt(SECRET.encode(), encryption._legacy_associated_data(binding))
    legacy = f"v1.{key.key_id}.{base64.urlsafe_b64encode(blob).decode()}"
    assert encryption.is_legacy_token(legacy)
    assert token_key_id(legacy) == key.key_id
    with pytest.raises(SecretUnreadable, match="migrate"):
        decrypt_secret(legacy, binding, WHERE)
    assert encryption.decrypt_legacy_secret(legacy, binding) == SECRET
