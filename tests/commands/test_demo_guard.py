"""S36: ``manage.py demo`` runs only where it cannot hurt: DEBUG on, and a database that is empty or its own.

The findings: it started against any database, created the staff user ``demo`` (a team admin) and
``teammate`` with the printed default password, and reset and re-activated existing users of those names —
a deactivated ``teammate`` came back with ``qfexdash-demo``.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.management.demo_world import DEMO_USERNAME, TEAMMATE_USERNAME, build_demo_world, demo_refusal
from orders.models import DemoMarker, ExchangeAccount
from tests.personas import *  # noqa: F403

pytestmark = pytest.mark.django_db

SIM_URL = "ws://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _test_key(settings: Any) -> None:
    from tests.personas import TEST_ENCRYPTION_KEY

    settings.QFEXDASH_ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _demo() -> str:
    out = StringIO()
    call_command("demo", "--port", "1", stdout=out)
    return out.getvalue()


def test_the_demo_refuses_without_debug(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError) as caught:
        _demo()
    assert "DEBUG" in str(caught.value)
    assert "never on a real site" in str(caught.value)
    assert not get_user_model().objects.exists()  # nothing was created, not even migrated into


def test_the_demo_refuses_a_database_it_did_not_create(settings: Any, personas: Any) -> None:
    settings.DEBUG = True
    before = list(get_user_model().objects.order_by("pk").values_list("username", "password", "is_active"))
    with pytest.raises(CommandError) as caught:
        _demo()
    assert "already has users or accounts" in str(caught.value)
    assert "DATABASE_URL" in str(caught.value)
    assert list(get_user_model().objects.order_by("pk").values_list("username", "password", "is_active")) == before


def test_an_empty_database_or_the_demos_own_is_accepted(settings: Any) -> None:
    settings.DEBUG = True
    assert demo_refusal() is None  # empty
    build_demo_world(simulator_url=SIM_URL, password="first-Passw0rd")
    assert DemoMarker.objects.exists()
    assert demo_refusal() is None  # its own, with users in it


def test_the_demo_never_changes_an_existing_user(settings: Any) -> None:
    """A second run on its own database keeps the people as they are: a deactivated teammate stays out."""
    settings.DEBUG = True
    users = build_demo_world(simulator_url=SIM_URL, password="first-Passw0rd")
    teammate = users["teammate"]
    teammate.is_active = False
    teammate.set_password("changed-by-its-owner")
    teammate.save()
    build_demo_world(simulator_url="ws://127.0.0.1:10", password="qfexdash-demo")
    teammate.refresh_from_db()
    assert not teammate.is_active
    assert teammate.check_password("changed-by-its-owner")
    assert get_user_model().objects.get(username=DEMO_USERNAME).check_password("first-Passw0rd")
    # The accounts follow the simulator's new address: they are the demo's, not a person's.
    assert set(ExchangeAccount.objects.values_list("custom_url", flat=True)) == {"ws://127.0.0.1:10"}


def test_existing_users_of_the_demo_names_without_the_marker_are_refused(settings: Any) -> None:
    settings.DEBUG = True
    get_user_model().objects.create_user(username=TEAMMATE_USERNAME, password="their-own-Passw0rd", is_active=False)
    refusal = demo_refusal()
    assert refusal is not None
    assert "already has users or accounts" in refusal
