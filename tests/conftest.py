"""Test-wide fixtures. The environment itself is set in tests/early_env.py (loaded before Django)."""

from tests.early_env import TEST_ENCRYPTION_KEY

__all__ = ["TEST_ENCRYPTION_KEY"]
