"""Test personas as pytest fixtures, shared by every test folder.

Use them with ``from tests.personas import *`` in a folder's ``conftest.py``. The cast:

- ``owner`` — has a personal account ``owner_account`` ("Owner personal");
- ``team`` "Desk A" with ``team_admin`` (admin), ``trader`` (trader) and ``viewer`` (viewer), and the team
  account ``team_account`` ("Desk A main");
- ``outsider`` — admin of ``other_team`` "Desk B", whose account is ``other_team_account`` ("Desk B main");
- ``superuser``; ``inactive_user`` (a deactivated member of Desk A);
- ``personas`` — all of the above in one namespace.

Every password is ``PASSWORD``. Each account's key pair is in ``KEYS`` (label → (public key, secret)), so
a test can serve the same keys from the simulator. Accounts point at ``UNREACHABLE_URL`` (a closed
loopback port) so nothing can ever reach a real exchange; ``point_at(account, url)`` re-targets one.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from orders.accounts import exchange_accounts, teams
from orders.models import ExchangeAccount, Membership, Team

__all__ = [
    "KEYS",
    "PASSWORD",
    "TEST_ENCRYPTION_KEY",
    "UNREACHABLE_URL",
    "inactive_user",
    "other_team",
    "other_team_account",
    "outsider",
    "owner",
    "owner_account",
    "persona_encryption_key",
    "personas",
    "point_at",
    "superuser",
    "team",
    "team_account",
    "team_admin",
    "trader",
    "viewer",
]

PASSWORD = "persona-Passw0rd-for-tests"
# The same fixed test key tests/conftest.py puts in the environment.
TEST_ENCRYPTION_KEY = "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM="
# Port 9 (discard) is not served on loopback here; connecting fails at once and never leaves the machine.
UNREACHABLE_URL = "ws://127.0.0.1:9"
KEYS: dict[str, tuple[str, str]] = {
    "Owner personal": ("qfex_pub_owner_personal", "qfex_secret_owner_personal_7f3a9c2e51d8"),
    "Desk A main": ("qfex_pub_desk_a_main", "qfex_secret_desk_a_main_4b8e1d6f20c9"),
    "Desk B main": ("qfex_pub_desk_b_main", "qfex_secret_desk_b_main_9c2f5a7e13b6"),
}


@functools.cache
def _hash_with(hashers: tuple[str, ...]) -> str:
    return make_password(PASSWORD)


def _password_hash() -> str:
    # Hashing is deliberately slow (PBKDF2): hash the shared password once per process, not per user —
    # once per hasher configuration, since a test folder may switch to a faster hasher.
    return _hash_with(tuple(django_settings.PASSWORD_HASHERS))


def _user(username: str, **extra: Any) -> Any:
    user = get_user_model()(username=username, email=f"{username}@example.test", password=_password_hash(), **extra)
    user.save()
    return user


@pytest.fixture
def persona_encryption_key(settings: Any) -> str:
    """Encrypt persona secrets with the fixed test key, whatever the process environment says.

    pytest-django reads the settings before ``tests/conftest.py`` can set the environment, so the
    key is set here too (restored after each test by the ``settings`` fixture).
    """
    settings.QFEXDASH_ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]
    return TEST_ENCRYPTION_KEY


def _account(label: str, *, actor: Any, owner_user: Any = None, owner_team: Team | None = None) -> ExchangeAccount:
    public_key, secret = KEYS[label]
    return exchange_accounts.account_create(
        actor=actor,
        label=label,
        public_key=public_key,
        secret=secret,
        owner_user=owner_user,
        owner_team=owner_team,
        endpoint=ExchangeAccount.Endpoint.CUSTOM,
        custom_url=UNREACHABLE_URL,
    )


def point_at(account: ExchangeAccount, url: str, secret: str | None = None) -> ExchangeAccount:
    """Point an account at another custom endpoint (e.g. a simulator's URL).

    The secret is bound to where it goes (S21), so it is typed again: ``secret``, or the persona's own.
    """
    secret = secret if secret is not None else KEYS[account.label][1]
    return exchange_accounts.account_update(
        actor=None, account=account, endpoint=ExchangeAccount.Endpoint.CUSTOM, custom_url=url, secret=secret
    )


@pytest.fixture
def superuser(db: None) -> Any:
    return _user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def owner(db: None) -> Any:
    return _user("olivia_owner")


@pytest.fixture
def owner_account(owner: Any, persona_encryption_key: str) -> ExchangeAccount:
    return _account("Owner personal", actor=owner, owner_user=owner)


@pytest.fixture
def team(db: None) -> Team:
    return teams.team_create(actor=None, name="Desk A")


def _member(username: str, team: Team, role: str, **extra: Any) -> Any:
    user = _user(username, **extra)
    teams.membership_add(actor=None, team=team, user=user, role=role)
    return user


@pytest.fixture
def team_admin(team: Team) -> Any:
    return _member("adam_admin", team, Membership.Role.ADMIN)


@pytest.fixture
def trader(team: Team) -> Any:
    return _member("tina_trader", team, Membership.Role.TRADER)


@pytest.fixture
def viewer(team: Team) -> Any:
    return _member("victor_viewer", team, Membership.Role.VIEWER)


@pytest.fixture
def inactive_user(team: Team) -> Any:
    return _member("ingrid_inactive", team, Membership.Role.ADMIN, is_active=False)


@pytest.fixture
def team_account(team: Team, team_admin: Any, persona_encryption_key: str) -> ExchangeAccount:
    return _account("Desk A main", actor=team_admin, owner_team=team)


@pytest.fixture
def other_team(db: None) -> Team:
    return teams.team_create(actor=None, name="Desk B")


@pytest.fixture
def outsider(other_team: Team) -> Any:
    return _member("oscar_outsider", other_team, Membership.Role.ADMIN)


@pytest.fixture
def other_team_account(other_team: Team, outsider: Any, persona_encryption_key: str) -> ExchangeAccount:
    return _account("Desk B main", actor=outsider, owner_team=other_team)


@pytest.fixture
def personas(
    owner: Any,
    owner_account: ExchangeAccount,
    team: Team,
    team_admin: Any,
    trader: Any,
    viewer: Any,
    inactive_user: Any,
    team_account: ExchangeAccount,
    other_team: Team,
    outsider: Any,
    other_team_account: ExchangeAccount,
    superuser: Any,
) -> SimpleNamespace:
    return SimpleNamespace(**{name: value for name, value in locals().items()})
