"""System checks that refuse an unsafe configuration before the server takes traffic."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from orders.accounts.encryption import (
    EncryptionKeyError,
    keys_come_from_local_file,
    local_key_file,
    validate_encryption_keys,
)

__all__ = ["check_encryption_key_source", "check_encryption_keys", "validate_encryption_keys"]

_HINT = (
    "Set QFEXDASH_ENCRYPTION_KEYS to comma-separated keys made by Fernet.generate_key(); "
    "the first encrypts, all decrypt."
)


def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``orders.E001`` when the encryption keys are missing or malformed (a Warning while DEBUG is on).

    In DEBUG the local demo can still create a key file on first run, so it is only a warning there.
    """
    try:
        validate_encryption_keys()
    except EncryptionKeyError as exc:
        if settings.DEBUG:
            return [Warning(str(exc), hint=_HINT, id="orders.W001")]
        return [Error(str(exc), hint=_HINT, id="orders.E001")]
    return []


def check_encryption_key_source(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``orders.E002`` (``check --deploy``) when DEBUG is off and the only key is the local key file (S27).

    That file lives in the state folder beside the SQLite database: whoever copies or backs up one gets
    the other, and the encryption at rest protects nothing. Production keeps the keys in
    ``QFEXDASH_ENCRYPTION_KEYS`` (the environment or a secret store), away from the data.
    """
    if settings.DEBUG or not keys_come_from_local_file():
        return []
    return [
        Error(
            f"QFEXDASH_ENCRYPTION_KEYS is not set, so the stored QFEX secrets are encrypted with the key in "
            f"{local_key_file()}, kept beside the database: a copy of the state folder holds both.",
            hint="Move the key into QFEXDASH_ENCRYPTION_KEYS (the environment or a secret store) and delete the "
            "file; the local key file is for the demo only.",
            id="orders.E002",
        )
    ]
