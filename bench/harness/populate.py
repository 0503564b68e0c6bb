"""Fills a site's database; runs inside ``manage.py shell`` with the server's own environment.

Started only by :func:`bench.harness.site.populate` (which parses what it prints); no other process
imports it, since it needs the settings of the site it fills. Each action reads its input as JSON from
``HARNESS_INPUT`` and prints one line ``HARNESS {json}``:

- ``build`` — the people, teams and exchange accounts of a :class:`bench.harness.site.SiteSpec`, through
  the project's own services (as an admin would create them), and a signed-in session for each person
  who needs one;
- ``demo`` — the world of the ``demo`` command (its users, team and four accounts) and a superuser for
  the admin pages;
- ``reenter_keys`` — an admin re-enters accounts' keys (the same secret, newly encrypted): how a person
  clears a rejected key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

from bench.harness.site import PREFIX
from orders.accounts import exchange_accounts, teams
from orders.management.demo_world import build_demo_world
from orders.models import ExchangeAccount, Membership


def signed_in_session(user: Any) -> str:
    """A session of ``user`` as the sign-in form leaves it; its key (the ``sessionid`` cookie)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return session.session_key


def _create_account(actor: Any, item: dict[str, str], url: str, **owner: Any) -> ExchangeAccount:
    return exchange_accounts.account_create(
        actor=actor,
        label=item["label"],
        public_key=item["public_key"],
        secret=item["secret"],
        endpoint=ExchangeAccount.Endpoint.CUSTOM,
        custom_url=url,
        **owner,
    )


def build(spec: dict[str, Any]) -> dict[str, Any]:
    """A :class:`bench.harness.site.SiteSpec` (as a dict): account ids by label, session keys by username."""
    users = get_user_model()
    url = spec["simulator_url"]
    people: dict[str, Any] = {}
    accounts: dict[str, int] = {}
    for person in spec["people"]:
        user = users.objects.create_user(
            person["username"], password=None, is_staff=person["superuser"], is_superuser=person["superuser"]
        )
        people[person["username"]] = user
        for item in person["accounts"]:
            accounts[item["label"]] = _create_account(user, item, url, owner_user=user).pk
    for team_spec in spec["teams"]:
        admin = people[team_spec["admin"]]
        team = teams.team_create(actor=admin, name=team_spec["name"])
        for item in team_spec["accounts"]:
            accounts[item["label"]] = _create_account(admin, item, url, owner_team=team).pk
        for username in team_spec["viewers"]:
            teams.membership_add(actor=admin, team=team, user=people[username], role=Membership.Role.VIEWER)
    signed_in = [person["username"] for person in spec["people"] if person["signed_in"]]
    return {"accounts": accounts, "sessions": {name: signed_in_session(people[name]) for name in signed_in}}


def demo(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``demo`` command's world and a superuser; account ids by label."""
    password = payload["password"]
    build_demo_world(simulator_url=payload["simulator_url"], password=password)
    get_user_model().objects.create_superuser(payload["superuser"], email="root@example.test", password=password)
    return {"accounts": {account.label: account.pk for account in ExchangeAccount.objects.all()}}


def reenter_keys(payload: dict[str, Any]) -> dict[str, Any]:
    """``admin`` gives each account (id → secret) its secret again, through the services."""
    admin = get_user_model().objects.get(username=payload["admin"])
    for pk, secret in payload["secrets"].items():
        account = ExchangeAccount.objects.get(pk=int(pk))
        exchange_accounts.account_set_secret(actor=admin, account=account, secret=secret)
    return {"reentered": len(payload["secrets"])}


ACTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "build": build,
    "demo": demo,
    "reenter_keys": reenter_keys,
}


def main(action: str) -> None:
    result = ACTIONS[action](json.loads(os.environ["HARNESS_INPUT"]))
    print(PREFIX + json.dumps(result), flush=True)
