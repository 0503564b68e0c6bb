"""System checks that refuse an unsafe configuration before the server takes traffic."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from orders.encryption import EncryptionKeyError, validate_encryption_keys

__all__ = ["check_encryption_keys", "validate_encryption_keys"]

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
