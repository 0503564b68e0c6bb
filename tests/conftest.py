"""Test-wide setup: a fixed encryption key and a throwaway state folder, set before Django starts."""

from __future__ import annotations

import os
import tempfile

# A fixed, test-only key (32 bytes, URL-safe base64) so encrypted fixtures are reproducible.
TEST_ENCRYPTION_KEY = "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM="

os.environ.setdefault("QFEXDASH_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEY)
os.environ.setdefault("QFEXDASH_STATE_DIR", tempfile.mkdtemp(prefix="qfexdash-test-state-"))
