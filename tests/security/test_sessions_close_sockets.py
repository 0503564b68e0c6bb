"""S35 and "Your sessions" on the live sockets: ending a session, or removing the device its second factor
was given with, closes its sockets within seconds (the access re-check), through the real consumer."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders.live import protocol as lp
from orders.models import ExchangeAccount
from orders.simulator import Simulator
from tests.live.consumers.conftest import Browser, shows_truth
from tests.personas import PASSWORD
from tests.signin.two_step import enrolled_device, signed_in_with_second_factor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def verified_admin(settings: Any, team_admin: Any) -> Client:
    settings.QFEXDASH_REQUIRE_2FA = True
    return signed_in_with_second_factor(team_admin, enrolled_device(team_admin))


async def _watching(application: Any, client: Client, account: ExchangeAccount, sim: Simulator) -> Browser:
    browser = Browser(application, f"/ws/accounts/{account.pk}/", client.cookies["sessionid"].value)
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, account))
    return browser


async def test_removing_the_device_closes_the_sessions_sockets(
    application: Any, verified_admin: Client, team_admin: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser = await _watching(application, verified_admin, live_team_account, sim)
    await sync_to_async(TOTPDevice.objects.filter(user=team_admin).delete)()
    assert await browser.close_code() == lp.CLOSE_NOT_AUTHENTICATED


def _signed_in_twice(user: Any) -> tuple[Client, Client]:
    clients = (Client(), Client())
    for client in clients:
        assert client.post(reverse("signin"), {"username": user.username, "password": PASSWORD}).status_code == 302
        client.get(reverse("account_list"))
    return clients


async def test_sign_out_everywhere_else_closes_the_other_sessions_sockets(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    desk, phone = await sync_to_async(_signed_in_twice)(trader)
    kept = await _watching(application, desk, live_team_account, sim)
    ended = await _watching(application, phone, live_team_account, sim)
    response = await sync_to_async(desk.post)(reverse("your_sessions"))
    assert response.status_code == 302
    assert await ended.close_code() == lp.CLOSE_NOT_AUTHENTICATED
    sim.step(3)
    await kept.until(shows_truth(kept, sim, live_team_account))  # this browser's socket keeps streaming
    await kept.disconnect()
