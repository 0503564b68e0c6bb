"""S28: a strict Content-Security-Policy, no caching of signed-in pages, and an idle session limit.

The real headers through the Django test client and the real live socket through the ASGI app; the
browser side (no CSP violation on any page, the live tables working) is
``tests/web/browser/test_csp.py`` in Chromium.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.live import protocol as lp
from orders.models import ExchangeAccount
from orders.simulator import Simulator
from tests.live.consumers.conftest import Browser, shows_truth

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _directives(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_every_page_has_a_strict_policy(personas: Any, client_for: Any) -> None:
    signed_in = client_for(personas.superuser)
    pages = [
        Client().get(reverse("signin")),
        signed_in.get(reverse("account_list")),
        signed_in.get(reverse("account_detail", args=[personas.team_account.pk])),
        signed_in.get(reverse("my_account_add")),
        signed_in.get(reverse("admin:index")),
    ]
    for response in pages:
        assert response.status_code == 200
        csp = _directives(response)
        assert csp["script-src"] == ["'self'"]
        assert csp["style-src"] == ["'self'"]
        assert csp["object-src"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["base-uri"] == ["'none'"]
        assert csp["connect-src"] == ["'self'", "ws://testserver"]  # the live page's own socket origin
        assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_the_socket_origin_follows_the_scheme(personas: Any, client_for: Any) -> None:
    response = client_for(personas.owner).get(reverse("account_list"), secure=True)
    assert "wss://testserver" in _directives(response)["connect-src"]


def test_templates_have_no_inline_script_or_style() -> None:
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"\sstyle\s*=", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path  # no inline event handlers
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, (path, tag)


def test_signed_in_pages_are_never_cached_but_static_files_are(personas: Any, client_for: Any) -> None:
    client = client_for(personas.owner)
    for url in (
        reverse("account_list"),
        reverse("my_accounts"),
        reverse("account_detail", args=[personas.owner_account.pk]),
    ):
        assert client.get(url)["Cache-Control"] == "no-store", url
    static = client.get("/static/css/site.css")
    assert static.status_code == 200
    assert "no-store" not in static.get("Cache-Control", "")


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime.datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_a_request_after_the_idle_limit_signs_out(
    personas: Any, client_for: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.QFEXDASH_SESSION_IDLE_MINUTES == 480
    idle = datetime.timedelta(minutes=480)
    start = timezone.now()
    client = client_for(personas.owner)
    assert client.get(reverse("account_list")).status_code == 200
    _at(monkeypatch, start + idle - datetime.timedelta(minutes=1))  # active just in time: renewed
    assert client.get(reverse("account_list")).status_code == 200
    _at(monkeypatch, start + 2 * idle - datetime.timedelta(minutes=3))  # within the limit of the last request
    assert client.get(reverse("account_list")).status_code == 200
    _at(monkeypatch, start + 3 * idle)  # idle for longer than the limit
    response = client.get(reverse("account_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin"))


async def test_an_idle_expired_session_closes_its_live_sockets(
    application: Any, personas: Any, live_team_account: ExchangeAccount, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    await sync_to_async(client.force_login)(personas.trader)
    await sync_to_async(client.get)(reverse("account_list"))  # a page request: the idle clock starts now
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", client.cookies["sessionid"].value)
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    start = timezone.now()
    # Socket traffic is not activity: hours of refreshes later, the session still expires on time.
    _at(monkeypatch, start + datetime.timedelta(minutes=470))
    await browser.send({"type": "refresh"})
    await browser.send({"type": "resync"})
    _at(monkeypatch, start + datetime.timedelta(minutes=481))
    assert await browser.close_code() == lp.CLOSE_NOT_AUTHENTICATED
