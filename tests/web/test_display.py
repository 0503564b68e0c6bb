"""Display preferences (time zone, theme, columns), the one time rule on server pages, a readable and
filterable audit trail, and the styled error pages."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.template import loader
from django.urls import reverse
from django.utils import timezone

from orders.accounts import audit, exchange_accounts, preferences, teams
from orders.models import AuditEvent, UserPreference
from tests.personas import KEYS

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action


def _choose(client: Any, **data: str) -> Any:
    return client.post(reverse("preferences_display"), {"theme": "system", "time_zone": "UTC", **data})


# --- preferences ------------------------------------------------------------------------------------


def test_theme_and_time_zone_are_remembered_per_person(personas: Any, client_for: Any) -> None:
    client = client_for(personas.viewer)
    page = client.get(reverse("account_list")).content.decode()
    assert '<html lang="en">' in page  # follows the system until chosen
    assert 'Display: <span id="display-zone">UTC</span>' in page

    response = _choose(client, theme="dark", time_zone="Europe/Berlin", next=reverse("my_accounts"))
    assert response.status_code == 302
    assert response["Location"] == reverse("my_accounts")
    page = client.get(reverse("account_list")).content.decode()
    assert '<html lang="en" data-theme="dark">' in page
    assert '<option value="Europe/Berlin" selected>Europe/Berlin</option>' in page
    assert UserPreference.objects.get(user=personas.viewer).time_zone == "Europe/Berlin"
    # Someone else's pages are not affected.
    assert "data-theme" not in client_for(personas.trader).get(reverse("account_list")).content.decode()


def test_bad_choices_and_foreign_next_addresses_are_refused(personas: Any, client_for: Any) -> None:
    client = client_for(personas.viewer)
    response = _choose(client, time_zone="Mars/Olympus", next="https://evil.example/")
    assert response["Location"] == reverse("account_list")  # never off-site
    assert "not a time zone" in client.get(reverse("account_list")).content.decode()
    _choose(client, theme="neon")
    assert not UserPreference.objects.filter(user=personas.viewer).exists()
    assert client.get(reverse("preferences_display")).status_code == 405


def test_columns_are_saved_as_json_and_checked(personas: Any, client_for: Any) -> None:
    client = client_for(personas.viewer)
    url = reverse("preferences_columns")
    good = {"columns": {"orders": {"hidden": ["type"], "shown": ["order_id"]}}}
    assert client.post(url, json.dumps(good), content_type="application/json").status_code == 200
    more = {"columns": {"twaps": {"hidden": [], "shown": ["twap_id"]}}}
    assert client.post(url, json.dumps(more), content_type="application/json").status_code == 200
    assert UserPreference.objects.get(user=personas.viewer).columns == {**good["columns"], **more["columns"]}
    for bad in (
        "not json",
        json.dumps({"columns": {"elsewhere": {}}}),
        json.dumps({"columns": {"orders": {"hidden": ["<script>"]}}}),
        json.dumps({"columns": {"orders": {"hidden": ["x"] * 41}}}),
        json.dumps([1, 2]),
    ):
        assert client.post(url, bad, content_type="application/json").status_code == 400, bad
    # The live page hands the saved columns and the zone to its script.
    page = client.get(reverse("account_detail", args=[personas.team_account.pk])).content.decode()
    config = json.loads(page.split('id="live-config" type="application/json">')[1].split("</script>")[0])
    assert config["preferences"]["columns"]["orders"] == {"hidden": ["type"], "shown": ["order_id"]}
    assert config["time_zone"] == "UTC"
    assert config["preferences_url"] == url


def test_zone_labels_are_the_abbreviations_the_server_uses() -> None:
    assert preferences.zone_labels("UTC") == {}
    assert preferences.zone_labels("Europe/Berlin") == {60: "CET", 120: "CEST"}
    assert preferences.zone_labels("Asia/Kolkata") == {330: "IST"}


# --- one time rule ----------------------------------------------------------------------------------


def test_times_on_server_pages_follow_the_chosen_zone(personas: Any, client_for: Any) -> None:
    moment = datetime.datetime(2026, 12, 6, 21, 49, 3, tzinfo=datetime.UTC)
    AuditEvent.objects.filter(team=personas.team).update(created_at=moment)
    client = client_for(personas.team_admin)
    assert "2026-12-06 21:49:03 UTC" in client.get(reverse("audit_trail")).content.decode()
    _choose(client, time_zone="Europe/Berlin")
    assert "2026-12-06 22:49:03 CET" in client.get(reverse("audit_trail")).content.decode()


def test_admin_dates_follow_the_same_rule(personas: Any, client_for: Any) -> None:
    moment = datetime.datetime(2026, 12, 6, 21, 49, 3, tzinfo=datetime.UTC)
    AuditEvent.objects.update(created_at=moment)
    client = client_for(personas.superuser)
    body = client.get(reverse("admin:orders_auditevent_changelist")).content.decode()
    assert "2026-12-06 21:49:03 UTC" in body
    assert "p.m." not in body
    _choose(client, time_zone="America/New_York")
    assert "2026-12-06 16:49:03 EST" in client.get(reverse("admin:orders_auditevent_changelist")).content.decode()


def test_verified_accounts_say_when(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    account.last_verified_at = datetime.datetime(2026, 12, 6, 21, 49, 3, tzinfo=datetime.UTC)
    account.save(update_fields=["last_verified_at"])
    body = client_for(personas.viewer).get(reverse("account_list")).content.decode()
    row = body.split("Desk A main")[1].split("</tr>")[0]
    assert "Verified" in row
    assert "2026-12-06 21:49:03 UTC" in row


# --- audit trail --------------------------------------------------------------------------------------


def test_audit_details_are_words_not_dicts(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    secret = KEYS[account.label][1]  # a new destination needs the secret typed again (S21)
    exchange_accounts.account_update(
        actor=personas.team_admin, account=account, custom_url="ws://127.0.0.1:9/a", secret=secret
    )
    exchange_accounts.account_update(
        actor=personas.team_admin, account=account, custom_url="ws://127.0.0.1:9/b", secret=secret
    )
    exchange_accounts.account_update(actor=personas.team_admin, account=account, endpoint="uat", secret=secret)
    membership = personas.team.memberships.get(user=personas.viewer)
    teams.membership_change_role(actor=personas.team_admin, membership=membership, role="trader")
    body = client_for(personas.team_admin).get(reverse("audit_trail")).content.decode()
    assert "{" not in body.split("<tbody>")[1].split("</tbody>")[0]
    assert 'Custom URL: <bdi class="old">ws://127.0.0.1:9/a</bdi> → <bdi class="new">ws://127.0.0.1:9/b</bdi>' in body
    assert 'Exchange: <bdi class="old">Custom URL</bdi> → <bdi class="new">QFEX UAT (test exchange)</bdi>' in body
    assert 'Role: <bdi class="old">Viewer</bdi> → <bdi class="new">Trader</bdi>' in body


def test_audit_filters_by_account_actor_action_and_date_and_pages_keep_them(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    for n in range(55):
        audit.audit_record(
            actor=personas.team_admin, action=Action.ACCOUNT_CHANGED, target=f"change {n}", account=account
        )
    audit.audit_record(actor=None, action=Action.ACCOUNT_VERIFIED, target="t-verified", account=account)
    old = audit.audit_record(
        actor=personas.team_admin, action=Action.ACCOUNT_DISABLED, target="t-long-ago", account=account
    )
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=40))
    client = client_for(personas.team_admin)
    url = reverse("audit_trail")

    changed = client.get(url, {"action": "account_changed", "account": account.pk}).content.decode()
    assert "change 54" in changed
    assert "t-verified" not in changed
    assert "t-long-ago" not in changed
    assert "Page 1 of 2" in changed
    assert "action=account_changed&amp;account=" in changed  # the pager keeps the filters
    second = client.get(url, {"action": "account_changed", "account": account.pk, "page": 2}).content.decode()
    assert "change 0" in second
    assert "t-verified" not in second

    system = client.get(url, {"actor": "-"}).content.decode()
    assert "t-verified" in system
    assert "change 1" not in system
    recent = client.get(url, {"since": (timezone.now() - datetime.timedelta(days=7)).date().isoformat()})
    assert "t-long-ago" not in recent.content.decode()
    until = (timezone.now() - datetime.timedelta(days=30)).date().isoformat()
    assert "t-long-ago" in client.get(url, {"until": until}).content.decode()
    nonsense = client.get(url, {"since": "yesterday-ish"})
    assert nonsense.status_code == 200
    assert "not understood" in nonsense.content.decode()


# --- error pages --------------------------------------------------------------------------------------


def test_error_pages_are_styled_and_500_needs_no_request() -> None:
    page = loader.get_template("500.html").render()
    assert "Something went wrong" in page
    assert "css/site.css" in page
    for name, words in (("403.html", "Not allowed"), ("404.html", "Nothing here")):
        assert words in loader.get_template(name).render()


def test_a_missing_page_is_the_styled_404(personas: Any, client_for: Any, settings: Any) -> None:
    settings.DEBUG = False
    response = client_for(personas.viewer).get("/no/such/page/")
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()
