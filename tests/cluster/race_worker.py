"""One side of a race, run as its own process: ``python -m tests.cluster.race_worker ROLE ARGS…``.

The environment names the database (``DATABASE_URL``) and a start file (``RACE_GO``): every racer sets Django
up, prints ``READY`` and waits for the file, so the two processes act at the same moment. Inside the critical
section each racer holds the window open for ``RACE_HOLD`` seconds (between the check and the write it
guards), so without a lock both would pass the check — with one, the second waits and then sees the first's
write. Each prints one ``RESULT {json}`` line.

Roles: ``setup`` (the people, the team, the devices and two half-signed-in sessions), ``demote USERNAME`` (the
last-admin rule, S31) and ``code SESSION_KEY TOKEN`` (the token step of two-step sign-in, through the site's
own middleware and view with Django's test client).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import django

RECOVERY_CODE = "racecode"
TOTP_KEY = "3132333435363738393031323334353637383930"  # hex, RFC 6238's test key


def _result(value: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(value), flush=True)


def _wait_for_go() -> None:
    go = Path(os.environ["RACE_GO"])
    print("READY", flush=True)
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the start file never appeared")
        time.sleep(0.005)


def _hold(function: Any, *, before: bool) -> Any:
    """``function`` with the race window held open before or after it runs."""
    hold = float(os.environ.get("RACE_HOLD", "1"))

    def held(*args: Any, **kwargs: Any) -> Any:
        if before:
            time.sleep(hold)
        result = function(*args, **kwargs)
        if not before:
            time.sleep(hold)
        return result

    return held


def setup() -> None:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from orders.accounts import teams
    from orders.models import Membership

    users = get_user_model().objects
    team = teams.team_create(actor=None, name="Race desk")
    for name in ("alice", "bob"):
        user = users.create_user(name, password="race-Passw0rd-not-used")
        teams.membership_add(actor=None, team=team, user=user, role=Membership.Role.ADMIN)
    carol = users.create_user("carol", password="race-Passw0rd-not-used", is_superuser=True, is_staff=True)
    recovery = StaticDevice.objects.create(user=carol, name="Recovery codes", confirmed=True)
    StaticToken.objects.create(device=recovery, token=RECOVERY_CODE)
    TOTPDevice.objects.create(user=carol, name="Authenticator app", key=TOTP_KEY, confirmed=True)
    sessions = []
    for _ in range(2):  # the password step done, the second factor still owed
        session = SessionStore()
        session[SESSION_KEY] = str(carol.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = carol.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    _result({"sessions": sessions, "totp_key": TOTP_KEY})


def demote(username: str) -> None:
    from django.core.exceptions import ValidationError

    from orders.accounts import teams
    from orders.models import Membership

    teams._refuse_losing_last_admin = _hold(teams._refuse_losing_last_admin, before=False)
    membership = Membership.objects.select_related("user", "team").get(user__username=username)
    _wait_for_go()
    try:
        teams.membership_change_role(actor=membership.user, membership=membership, role=Membership.Role.VIEWER)
    except ValidationError as exc:
        _result({"refused": " ".join(exc.messages)})
        return
    _result({"demoted": username})


def code(session_key: str, token: str) -> None:
    from django.test import Client
    from django.urls import reverse
    from django_otp.plugins.otp_static.models import StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    StaticToken.delete = _hold(StaticToken.delete, before=True)  # between finding the code and using it up
    TOTPDevice.save = _hold(TOTPDevice.save, before=True)  # between checking the code and recording its step
    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = session_key
    _wait_for_go()
    response = client.post(reverse("two_factor_verify"), {"token": token, "next": "/"})
    signed_in = response.status_code == 302 and not response["Location"].startswith(reverse("two_factor_verify"))
    _result({"status": response.status_code, "signed_in": signed_in, "page": response.content.decode()[-3000:]})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qfexdash.settings")
    django.setup()
    role, *args = sys.argv[1:]
    roles: dict[str, Any] = {"setup": setup, "demote": demote, "code": code}
    roles[role](*args)


if __name__ == "__main__":
    main()
