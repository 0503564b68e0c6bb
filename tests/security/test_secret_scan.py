"""S12's scan really works: a pytest run that leaks a secret through each channel fails, naming each leak
without printing the secret; the same run without leaks passes. Each run is a real pytest subprocess with
the project's configuration and ``QFEXDASH_SECRET_SCAN=1``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.secret_scan import REPORT_ENV_VAR, digest, scanning

ROOT = Path(__file__).resolve().parents[2]

SECRETS = {
    "LOGGED": "selftest-registered-secret-0001",
    "EARLY": "selftest-credentials-secret-0002",
    "FRAME": "selftest-simulator-secret-0003",
    "PAGE": "selftest-stored-secret-0004",
    "LAYER": "selftest-layer-secret-0005",
    "PRINTED": "selftest-printed-secret-0006",
}

COMMON = """
import logging
import uuid

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from orders.accounts.encryption import Destination, encrypt_secret
from orders.qfex.signing import Credentials, auth_message
from orders.simulator import SimAccount
from tests.secret_scan import register_secret

{constants}
LEAK = {leak}


def shown(value):
    return value if LEAK else "nothing to see"


def test_debug_log_of_a_registered_secret():
    register_secret(LOGGED)
    logging.getLogger("selftest.deep").debug("debug line with %s", shown(LOGGED))


def test_log_before_the_secret_is_known():
    logging.getLogger("selftest").info("early mention %s", shown(EARLY))


def test_credentials_and_signatures_are_learnt():
    message = auth_message(Credentials("selftest_pub", EARLY), now=1_700_000_000, nonce="ab" * 16)
    logging.getLogger("selftest").warning("auth frame %s", shown(message["params"]["hmac"]["signature"]))


class Echo(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send(text_data='{{"text": "%s"}}' % shown(FRAME))


async def test_frame():
    SimAccount(public_key="selftest_pub", secret=FRAME)
    communicator = WebsocketCommunicator(Echo.as_asgi(), "/ws/selftest/")
    assert (await communicator.connect())[0]
    await communicator.receive_from()
    await communicator.disconnect()


def page(request):
    return HttpResponse("<p>%s</p>" % shown(PAGE))


urlpatterns = [path("selftest/", page)]


def test_page(settings):
    encrypt_secret(PAGE, uuid.uuid4(), Destination(public_key="pub", endpoint="prod"))
    settings.ROOT_URLCONF = __name__
    assert Client().get("/selftest/").status_code == 200


async def test_channel_layer():
    register_secret(LAYER)
    await get_channel_layer().send("selftest.channel", {{"type": "selftest", "text": shown(LAYER)}})


def test_output():
    register_secret(PRINTED)
    print("printed", shown(PRINTED))
"""


def _run_pytest(tmp_path: Path, leak: bool) -> subprocess.CompletedProcess[str]:
    constants = "\n".join(f"{name} = {value!r}" for name, value in SECRETS.items())
    test_file = tmp_path / "test_selftest_scan.py"
    test_file.write_text(COMMON.format(constants=constants, leak=leak))
    env = {k: v for k, v in os.environ.items() if k != REPORT_ENV_VAR}  # the outer run's report stays its own
    env.update({"QFEXDASH_SECRET_SCAN": "1", "PYTHONPATH": str(ROOT)})
    command = [sys.executable, "-m", "pytest", str(test_file), "-c", str(ROOT / "pyproject.toml")]
    command += ["--rootdir", str(ROOT), "-p", "tests.secret_scan", "-p", "no:cacheprovider", "-q"]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_a_run_that_leaks_fails_and_names_every_leak_without_the_secret(tmp_path: Path) -> None:
    result = _run_pytest(tmp_path, leak=True)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "7 passed" in output  # the tests themselves pass: the scan alone fails the run
    assert "SECRET SCAN FAILED" in output
    for secret in SECRETS.values():
        assert secret not in output
        assert digest(secret) in output, secret
    findings = [line for line in output.splitlines() if " found in " in line]
    for channel in ("log", "frame", "page", "layer", "output"):
        assert any(f" found in {channel} [" in line for line in findings), channel
    # A secret logged before anything registered it is still caught, in the test that logged it.
    assert any(digest(SECRETS["EARLY"]) in line and "test_log_before_the_secret_is_known" in line for line in findings)
    assert any(line.lstrip().startswith("signature ") for line in findings)  # the logged HMAC signature
    assert "selftest.deep DEBUG" in output  # debug records were captured


def test_the_same_run_without_leaks_passes(tmp_path: Path) -> None:
    result = _run_pytest(tmp_path, leak=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no secret or signature found" in output
    assert "looked for 6 secrets and 1 signatures" in output


async def test_scanning_a_block_inside_a_test() -> None:
    """The in-test form (used by the S12 check in test_s_checks.py) finds a secret sent over the channel layer."""
    from channels.layers import InMemoryChannelLayer

    from orders.qfex import Credentials

    secret = "in-test-scan-secret-12345"
    with scanning(exclusive=True) as scan:  # exclusive: the session-wide scan must not see this deliberate leak
        Credentials("pub", secret)
        await InMemoryChannelLayer().send("selftest.channel", {"type": "selftest", "text": f"oops {secret}"})
    assert [finding.channel for finding in scan.findings] == ["layer"]
    assert secret not in scan.findings[0].describe()
    assert digest(secret) in scan.findings[0].describe()
