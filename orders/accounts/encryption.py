"""Encryption at rest for stored QFEX API secrets.

AES-GCM with 32-byte keys listed in ``settings.QFEXDASH_ENCRYPTION_KEYS`` (the URL-safe base64 form
``Fernet.generate_key()`` prints). The first key encrypts; every listed key decrypts, so keys can be
rotated without downtime (see the ``rotate_encryption_keys`` command). Keys are never derived from
``SECRET_KEY``.

A token looks like ``v2.<key id>.<urlsafe base64 of nonce + ciphertext>``. The key id (first 12 hex
characters of the key's SHA-256) says which key made it, without revealing the key. The associated
data is the row's ``binding`` UUID *and* the secret's :class:`Destination` — its public key, the
endpoint it may be sent to (production, UAT or the exact custom URL) and the subaccount (S21). A token
copied into another row does not decrypt, and neither does one whose row was pointed somewhere else:
whoever changes where a key goes has to type its secret again.

``v1`` tokens (bound to the row only) were made before S21. They are never decrypted for use; the
migration ``0002_bind_secrets_to_destination`` re-encrypts them as ``v2`` through
:func:`decrypt_legacy_secret`.

Nothing in this module puts key material or plaintext into messages, logs or reprs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "QFEXDASH_ENCRYPTION_KEYS"
KEY_FILE_NAME = "encryption_key"
TOKEN_VERSION = "v2"  # noqa: S105  (a format tag, not a password)
LEGACY_TOKEN_VERSION = "v1"  # noqa: S105  (bound to the row only; re-encrypted by migration 0002)
KEY_ID_LENGTH = 12
_NONCE_BYTES = 12
_KEY_BYTES = 32
_AAD_PREFIX = b"qfexdash.exchangeaccount:"
_AAD_PREFIX_V2 = b"qfexdash.exchangeaccount.v2:"
_CUSTOM_ENDPOINT = "custom"
_URLSAFE_B64 = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
GENERATE_KEY_HINT = (
    'Generate a key with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class EncryptionKeyError(ImproperlyConfigured):
    """The encryption keys are missing or malformed. The message never contains key material."""


# What a person managing an account reads when the server has no keys (the operator's message is the exception's).
KEYS_NOT_CONFIGURED_MESSAGE = (
    "The server's encryption keys are not configured (QFEXDASH_ENCRYPTION_KEYS); ask an administrator."
)


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys (wrong key, tampered or copied token).

    ``str(exc)`` says why in operator terms (never the plaintext or a key); ``user_message`` is what
    a person managing the account should read.
    """

    user_message = "The stored secret can't be decrypted — re-enter it."

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(f"{self.user_message} ({reason})" if reason else self.user_message)


@dataclass(frozen=True)
class Destination:
    """Where a stored secret may be used: part of its ciphertext's associated data (S21).

    ``endpoint`` is ``prod``, ``uat`` or ``custom``; ``custom_url`` is the exact URL for ``custom`` and
    empty otherwise (production and UAT are bound by name: their URLs are the operator's settings).
    """

    public_key: str
    endpoint: str
    custom_url: str = ""
    subaccount_id: str = ""

    @classmethod
    def of(cls, account: Any) -> Destination:
        """The destination an ``ExchangeAccount`` (or any object with its fields) points at now."""
        endpoint = str(account.endpoint or "")
        return cls(
            public_key=str(account.public_key or ""),
            endpoint=endpoint,
            custom_url=str(account.custom_url or "") if endpoint == _CUSTOM_ENDPOINT else "",
            subaccount_id=str(account.subaccount_id or ""),
        )

    def associated_data(self, binding: uuid.UUID | str) -> bytes:
        canonical = binding if isinstance(binding, uuid.UUID) else uuid.UUID(str(binding))
        fields = [str(canonical), self.public_key, self.endpoint, self.custom_url, self.subaccount_id]
        # A JSON array: no choice of field values can make two different destinations encode the same.
        return _AAD_PREFIX_V2 + json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode("ascii")


# The account fields a secret is bound to (S21): changing any of them needs the secret typed again, and the
# last verification then says nothing about the account. The one list of them, used by services and forms.
DESTINATION_FIELDS: tuple[str, ...] = tuple(item.name for item in dataclass_fields(Destination))


@dataclass(frozen=True)
class EncryptionKey:
    """One configured key. Its repr shows only the key id."""

    key_id: str
    _cipher: AESGCM = field(repr=False, compare=False)

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, blob: bytes, associated_data: bytes) -> bytes:
        nonce, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        return self._cipher.decrypt(nonce, ciphertext, associated_data)


def key_id_for(key_bytes: bytes) -> str:
    return hashlib.sha256(key_bytes).hexdigest()[:KEY_ID_LENGTH]


def _decode_key(text: str, position: int, source: str) -> bytes:
    """Key bytes from one configured entry; the error names the entry's position, never its value."""
    if not _URLSAFE_B64.match(text):
        raise EncryptionKeyError(
            f"{SETTING_NAME}: key #{position} {source} is not URL-safe base64. "
            f"Each key must be 32 random bytes in URL-safe base64 (44 characters). {GENERATE_KEY_HINT}"
        )
    try:
        key_bytes = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(
            f"{SETTING_NAME}: key #{position} {source} is not valid URL-safe base64. {GENERATE_KEY_HINT}"
        ) from None
    if len(key_bytes) != _KEY_BYTES:
        raise EncryptionKeyError(
            f"{SETTING_NAME}: key #{position} {source} decodes to {len(key_bytes)} bytes; it must be exactly "
            f"{_KEY_BYTES}. {GENERATE_KEY_HINT}"
        )
    return key_bytes


def _parse_keys(entries: list[str], source: str) -> list[EncryptionKey]:
    keys: list[EncryptionKey] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        key_bytes = _decode_key(entry, position, source)
        key_id = key_id_for(key_bytes)
        if key_id in seen:
            raise EncryptionKeyError(
                f"{SETTING_NAME}: key #{position} {source} repeats an earlier key (key id {key_id}). "
                "List each key once: the new key first, then the older ones still needed to decrypt. "
                f"{GENERATE_KEY_HINT}"
            )
        seen.add(key_id)
        keys.append(EncryptionKey(key_id=key_id, _cipher=AESGCM(key_bytes)))
    return keys


def _setting_entries() -> list[str]:
    value = settings.QFEXDASH_ENCRYPTION_KEYS or []
    if isinstance(value, str):  # tolerate a comma-separated string in the setting itself
        value = value.split(",")
    return [str(entry).strip() for entry in value if str(entry).strip()]


def local_key_file() -> Path:
    return Path(settings.STATE_DIR) / KEY_FILE_NAME


def keys_come_from_local_file() -> bool:
    """True when no key is configured in the setting, so the local key file (state folder) is what is used."""
    return not _setting_entries()


def _load_keys() -> list[EncryptionKey]:
    entries = _setting_entries()
    if entries:
        return _parse_keys(entries, "in the environment")
    path = local_key_file()
    try:
        file_text = path.read_text()
    except FileNotFoundError:
        raise EncryptionKeyError(
            f"{SETTING_NAME} is not set, so stored QFEX secrets cannot be encrypted or decrypted. "
            f"Set it to one or more comma-separated keys (the first encrypts, all decrypt). {GENERATE_KEY_HINT} "
            f"(A local demo may instead keep one key in {path}.)"
        ) from None
    except OSError as exc:
        raise EncryptionKeyError(
            f"{SETTING_NAME} is not set and the local key file {path} cannot be read ({exc.strerror}). "
            f"{GENERATE_KEY_HINT}"
        ) from None
    file_entries = [item.strip() for item in re.split(r"[,\s]+", file_text) if item.strip()]
    if not file_entries:
        raise EncryptionKeyError(
            f"{SETTING_NAME} is not set and the local key file {path} is empty. {GENERATE_KEY_HINT}"
        )
    return _parse_keys(file_entries, f"in {path}")


_cache_lock = threading.Lock()
_cached_keys: list[EncryptionKey] | None = None


def configured_keys() -> list[EncryptionKey]:
    """The configured keys, first (encrypting) key first. Raises ``EncryptionKeyError``.

    Cached after the first successful read; ``clear_key_cache()`` (called automatically when the
    setting changes in tests) forces a re-read.
    """
    global _cached_keys
    keys = _cached_keys
    if keys is None:
        with _cache_lock:
            if _cached_keys is None:
                _cached_keys = _load_keys()
            keys = _cached_keys
    return list(keys)


def clear_key_cache() -> None:
    global _cached_keys
    with _cache_lock:
        _cached_keys = None


@receiver(setting_changed)
def _clear_cache_on_setting_change(*, setting: str, **kwargs: object) -> None:
    if setting in (SETTING_NAME, "STATE_DIR"):
        clear_key_cache()


def validate_encryption_keys() -> None:
    """Raise ``EncryptionKeyError`` unless usable keys are configured (always re-reads them)."""
    global _cached_keys
    keys = _load_keys()
    with _cache_lock:
        _cached_keys = keys


def ensure_local_key_file() -> tuple[Path, bool]:
    """Create the local demo key file (mode 0600) if it does not exist. Returns (path, created).

    Only for running without any environment: production sets ``QFEXDASH_ENCRYPTION_KEYS``.
    """
    path = local_key_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two processes starting at once must not overwrite each other's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path, False
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    path.chmod(0o600)
    clear_key_cache()
    return path, True


def _legacy_associated_data(binding: uuid.UUID | str) -> bytes:
    canonical = binding if isinstance(binding, uuid.UUID) else uuid.UUID(str(binding))
    return _AAD_PREFIX + str(canonical).encode()


def encrypt_secret(plaintext: str, binding: uuid.UUID | str, destination: Destination) -> str:
    """Encrypt with the first configured key, bound to the row's ``binding`` and to ``destination``."""
    if not isinstance(destination, Destination):
        raise TypeError("encrypt_secret() needs the Destination the secret is bound to")
    key = configured_keys()[0]
    blob = key.encrypt(plaintext.encode("utf-8"), destination.associated_data(binding))
    return f"{TOKEN_VERSION}.{key.key_id}.{base64.urlsafe_b64encode(blob).decode('ascii')}"


def _split_token(token: str, version: str = TOKEN_VERSION) -> tuple[str, str] | None:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != version or len(parts[1]) != KEY_ID_LENGTH or not parts[2]:
        return None
    return parts[1], parts[2]


def token_key_id(token: str) -> str | None:
    """The id of the key that made ``token``, or None if it is not a token this module made (any version)."""
    split = _split_token(token) or _split_token(token, LEGACY_TOKEN_VERSION)
    return split[0] if split else None


def is_legacy_token(token: str) -> bool:
    """True for a ``v1`` token: bound to its row but not to a destination (made before S21)."""
    return _split_token(token, LEGACY_TOKEN_VERSION) is not None


def _decrypt(split: tuple[str, str], associated_data: Any) -> str:
    key_id, payload = split
    key = next((k for k in configured_keys() if k.key_id == key_id), None)
    if key is None:
        raise SecretUnreadable(f"made with key id {key_id}, which is not among the configured keys")
    try:
        aad = associated_data()
        blob = base64.urlsafe_b64decode(payload.encode("ascii"))
    except (ValueError, binascii.Error):
        raise SecretUnreadable("malformed ciphertext or binding") from None
    if len(blob) <= _NONCE_BYTES:
        raise SecretUnreadable("ciphertext too short")
    try:
        plaintext = key.decrypt(blob, aad)
    except InvalidTag:
        raise SecretUnreadable(
            f"does not authenticate under key id {key_id} for this account and destination"
        ) from None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretUnreadable("decrypted bytes are not text") from None


def decrypt_secret(token: str, binding: uuid.UUID | str, destination: Destination) -> str:
    """Decrypt a token made for this ``binding`` and ``destination``.

    Raises ``SecretUnreadable`` (or ``EncryptionKeyError``): also when the row was pointed at another
    public key, endpoint, custom URL or subaccount since the secret was entered.
    """
    if not isinstance(destination, Destination):
        raise TypeError("decrypt_secret() needs the Destination the secret is bound to")
    split = _split_token(token)
    if split is None:
        if is_legacy_token(token):
            raise SecretUnreadable("made before secrets were bound to their destination (run migrate)")
        raise SecretUnreadable("not a recognised ciphertext")
    return _decrypt(split, lambda: destination.associated_data(binding))


def decrypt_legacy_secret(token: str, binding: uuid.UUID | str) -> str:
    """Decrypt a ``v1`` token (row binding only). Only for migration 0002, which re-encrypts it as ``v2``."""
    split = _split_token(token, LEGACY_TOKEN_VERSION)
    if split is None:
        raise SecretUnreadable("not a v1 ciphertext")
    return _decrypt(split, lambda: _legacy_associated_data(binding))
