"""S37: every filter of every admin list and of the audit trail page, walked with extreme values.

Each value is answered with the list (200: clamped, or ignored with a note on the page) or a 400 page that
says in words what was wrong — never a 500, never a traceback. The walk runs in a zone east of UTC and one
west of it, since a date at the edge of the calendar overflows only once converted to UTC.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from orders.accounts import audit, preferences
from orders.models import AuditEvent

pytestmark = pytest.mark.django_db

# Values chosen to break a date, a number, a choice or the database's own limits.
EXTREMES = [
    "9999-12-31",
    "0001-01-01",
    "9999-12-31 23:59:59",
    "0001-01-01 00:00:00",
    "0000-00-00",
    "2026-02-30",
    "99999999999999999999999",
    "-99999999999999999999999",
    "9223372036854775808",
    "-1",
    "0",
    "1e400",
    "nan",
    "\x00",
    "x" * 3000,
    "\u202e",
]
# The admin's own walk needs fewer: every kind of breakage once (each list has dozens of parameters).
ADMIN_EXTREMES = ["9999-12-31", "0001-01-01 00:00:00", "0000-00-00", "99999999999999999999999", "-1", "1e400",
                  "\x00", "x" * 3000]  # fmt: skip
ZONES = ["Pacific/Kiritimati", "Pacific/Pago_Pago"]  # UTC+14 and UTC-11
DATE_HIERARCHY_EXTREMES = [
    {"year": "9999", "month": "12", "day": "31"},
    {"year": "1", "month": "1", "day": "1"},
    {"year": "9999", "month": "12"},
    {"year": "1", "month": "1"},
    {"year": "9999"},
    {"year": "1"},
    {"year": "0"},
    {"year": "10000"},
    {"year": "2026", "month": "0"},
    {"year": "2026", "month": "2", "day": "30"},
]


@pytest.fixture(params=ZONES)
def walker(request: pytest.FixtureRequest, personas: Any) -> Client:
    """A superuser's client (every admin list is open to them) living in a zone far from UTC."""
    user = personas.superuser
    preferences.save_preference(user, time_zone=request.param)
    audit.audit_record(actor=user, action=AuditEvent.Action.TEAM_ADDED, target="team walk", team=personas.team)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _answered(client: Client, url: str) -> tuple[int, str]:
    response = client.get(url)
    body = response.content.decode(errors="replace")
    assert response.status_code in (200, 400), (url[:200], response.status_code)
    assert "Traceback" not in body
    if response.status_code == 400:
        assert "could not use" in body, body[:500]  # the page says in words what went wrong
    return response.status_code, body


def _filter_parameters(model_admin: Any, request: Any) -> set[str]:
    """Every query parameter the changelist's filters, date hierarchy, sorting and pages read."""
    changelist = model_admin.get_changelist_instance(request)
    names = {"q", "o", "p", "all", "_to_field"}
    for spec in changelist.filter_specs:
        names.update(spec.expected_parameters())
    return names


ADMIN_LISTS = sorted(f"{model._meta.app_label}_{model._meta.model_name}" for model in admin.site._registry)


@pytest.mark.parametrize("name", ADMIN_LISTS)
def test_every_admin_filter_takes_extreme_values(name: str, rf: Any, personas: Any) -> None:
    """Every list the admin has (django-otp's and Django's own included), in a zone east of UTC."""
    model = next(m for m in admin.site._registry if f"{m._meta.app_label}_{m._meta.model_name}" == name)
    user = personas.superuser
    preferences.save_preference(user, time_zone=ZONES[0])
    client = Client(raise_request_exception=False)
    client.force_login(user)
    request = rf.get("/")
    request.user = user
    parameters = _filter_parameters(admin.site._registry[model], request)
    url = reverse(f"admin:{name}_changelist")
    for parameter in sorted(parameters):
        for value in ADMIN_EXTREMES:
            _answered(client, f"{url}?{urlencode({parameter: value})}")
    assert {"q", "o", "p"} <= parameters  # search, sorting and pages at least, and every filter the list has


def test_every_date_hierarchy_takes_the_edges_of_the_calendar(walker: Client) -> None:
    for model, model_admin in admin.site._registry.items():
        field = model_admin.date_hierarchy
        if not field:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for parts in DATE_HIERARCHY_EXTREMES:
            query = urlencode({f"{field}__{part}": value for part, value in parts.items()})
            _answered(walker, f"{url}?{query}")


def test_the_audit_trail_filters_take_extreme_values(walker: Client, personas: Any) -> None:
    url = reverse("audit_trail")
    for name in ("account", "actor", "action", "since", "until", "page"):
        for value in EXTREMES:
            _answered(walker, f"{url}?{urlencode({name: value})}")
    # Both edges of the calendar at once: every event is within them, so all of them are listed.
    status, body = _answered(walker, f"{url}?since=0001-01-01&until=9999-12-31")
    assert status == 200
    assert "team walk" in body


@pytest.mark.parametrize("zone", ZONES)
def test_a_date_at_the_edge_of_the_calendar_is_clamped_not_an_error(personas: Any, zone: str) -> None:
    """The findings: ``until=9999-12-31`` overflowed adding a day; ``since=0001-01-01`` overflowed east of UTC."""
    user = personas.team_admin
    preferences.save_preference(user, time_zone=zone)
    audit.audit_record(actor=user, action=AuditEvent.Action.TEAM_ADDED, target="team edge", team=personas.team)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    for query in ("until=9999-12-31", "since=0001-01-01", "since=9999-12-31", "until=0001-01-01"):
        response = client.get(reverse("audit_trail") + "?" + query)
        assert response.status_code == 200, (query, response.status_code)
    assert "team edge" in client.get(reverse("audit_trail") + "?until=9999-12-31").content.decode()
    assert "team edge" in client.get(reverse("audit_trail") + "?since=0001-01-01").content.decode()
    assert "team edge" not in client.get(reverse("audit_trail") + "?until=0001-01-01").content.decode()
