"""Environment for the test run, loaded with ``-p tests.early_env`` before pytest-django reads settings.

A fixed test encryption key, a throwaway state folder, and QFEX URLs pointing at a closed loopback
port so that no test can ever reach the real exchange.
"""

from __future__ import annotations

import os
import tempfile

# A fixed, test-only key (32 bytes, URL-safe base64) so encrypted fixtures are reproducible.
TEST_ENCRYPTION_KEY = "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM="
CLOSED_LOOPBACK_URL = "ws://127.0.0.1:9"

os.environ["QFEXDASH_ENCRYPTION_KEYS"] = TEST_ENCRYPTION_KEY
os.environ["QFEXDASH_STATE_DIR"] = tempfile.mkdtemp(prefix="qfexdash-test-state-")
os.environ["QFEX_TRADE_URL"] = CLOSED_LOOPBACK_URL
os.environ["QFEX_UAT_TRADE_URL"] = CLOSED_LOOPBACK_URL
# The simulators and the closed port all listen on 127.0.0.1: allow it (every port) as a custom endpoint.
os.environ["QFEXDASH_CUSTOM_ENDPOINTS"] = "127.0.0.1"
# Sign-in without a second factor, except in the tests of two-factor sign-in, which switch it on (S30).
os.environ["QFEXDASH_REQUIRE_2FA"] = "false"
# No persistent database connections in tests: asgiref's long-lived worker thread would keep one open
# past the run, and PostgreSQL then refuses to drop the test database ("being accessed by other users").
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
