"""The Django admin: who sees and changes what, writes through services (audited), write-only secrets, S20."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from orders.accounts import exchange_accounts
from orders.accounts.encryption import Destination, decrypt_secret
from orders.models import AuditEvent, ExchangeAccount, Membership, Team
from tests.personas import KEYS

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action
MISSING_PK = 999_999
NEW_SECRET = "admin-typed-secret-3e8d1f0a9b7c"


def _staff(user: Any) -> Any:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def _url(name: str, *args: Any) -> str:
    return reverse(f"admin:orders_{name}", args=args)


def _account_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "label": "Admin added",
        "owner_user": "",
        "owner_team": "",
        "public_key": "qfex_pub_admin_added",
        "secret": NEW_SECRET,
        "endpoint": "prod",  # a closed loopback port in tests; custom URLs are for superusers (S22)
        "custom_url": "",
        "subaccount_id": "",
        "enabled": "on",
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _change_form(account: ExchangeAccount, **overrides: Any) -> dict[str, Any]:
    data = {
        "label": account.label,
        "public_key": account.public_key,
        "secret": "",
        "endpoint": account.endpoint,
        "custom_url": account.custom_url,
        "subaccount_id": account.subaccount_id,
        "enabled": "on" if account.enabled else None,
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _team_form(team: Team, rows: list[dict[str, Any]], name: str | None = None) -> dict[str, Any]:
    """The team change form's POST: existing memberships first (with their ids), then new rows."""
    data: dict[str, Any] = {"name": name or team.name}
    existing = list(team.memberships.select_related("user").order_by("pk")) if team.pk else []
    prefix = "memberships"
    for i, row in enumerate(rows):
        data[f"{prefix}-{i}-team"] = str(team.pk)
        data[f"{prefix}-{i}-id"] = str(row["id"]) if row.get("id") else ""
        # The member is picked by search and posted by id; a username nobody has posts an id nobody has.
        user = get_user_model().objects.filter(username=row["user"]).first()
        data[f"{prefix}-{i}-user"] = str(user.pk) if user else str(MISSING_PK)
        data[f"{prefix}-{i}-role"] = row["role"]
        if row.get("delete"):
            data[f"{prefix}-{i}-DELETE"] = "on"
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": str(len(rows)),
            f"{prefix}-INITIAL_FORMS": str(len(existing)),
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
            "_save": "Save",
        }
    )
    return data


def _existing_rows(team: Team) -> list[dict[str, Any]]:
    return [
        {"id": m.pk, "user": m.user.username, "role": m.role}
        for m in team.memberships.select_related("user").order_by("pk")
    ]


# --- who sees what -----------------------------------------------------------------------------


def test_superuser_sees_every_account_with_columns(personas: Any, client_for: Any) -> None:
    response = client_for(personas.superuser).get(_url("exchangeaccount_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    for label in KEYS:
        assert label in body
    for column in ("Owner", "Exchange", "Enabled", "Status", "Last verified at"):
        assert column in body
    assert "Not verified" in body


def test_changelist_filters_and_search(personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    body = client.get(_url("exchangeaccount_changelist"), {"q": "qfex_pub_desk_a"}).content.decode()
    assert "Desk A main" in body
    assert "Desk B main" not in body
    body = client.get(_url("exchangeaccount_changelist"), {"q": personas.owner.username}).content.decode()
    assert "Owner personal" in body
    assert "Desk A main" not in body
    by_team = client.get(_url("exchangeaccount_changelist"), {"owner_team__id__exact": personas.other_team.pk})
    assert "Desk B main" in by_team.content.decode()
    assert "Desk A main" not in by_team.content.decode()
    personas.owner_account.enabled = False
    personas.owner_account.save(update_fields=["enabled"])
    disabled = client.get(_url("exchangeaccount_changelist"), {"enabled__exact": "0"}).content.decode()
    assert "Owner personal" in disabled
    assert "Desk A main" not in disabled
    by_endpoint = client.get(_url("exchangeaccount_changelist"), {"endpoint__exact": "prod"}).content.decode()
    assert "Desk A main" not in by_endpoint


def test_staff_team_admin_sees_only_their_teams(personas: Any, client_for: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    accounts = client.get(_url("exchangeaccount_changelist")).content.decode()
    assert "Desk A main" in accounts
    assert "Desk B main" not in accounts
    assert "Owner personal" not in accounts
    # The team filter offers only teams in view, never the other desks' names.
    assert "Desk B" not in accounts
    teams = client.get(_url("team_changelist")).content.decode()
    assert "Desk A" in teams
    assert "Desk B" not in teams
    events = client.get(_url("auditevent_changelist")).content.decode()
    assert "Desk A main" in events
    assert "Desk B" not in events


@pytest.mark.parametrize(
    "page",
    [
        lambda p: _url("exchangeaccount_change", p.other_team_account.pk),
        lambda p: _url("exchangeaccount_history", p.other_team_account.pk),
        lambda p: _url("exchangeaccount_delete", p.other_team_account.pk),
        lambda p: _url("team_change", p.other_team.pk),
    ],
)
def test_other_teams_objects_look_like_missing_ones(personas: Any, client_for: Any, page: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    hidden_url = page(personas)
    missing_url = hidden_url.replace(f"/{personas.other_team_account.pk}/", f"/{MISSING_PK}/").replace(
        f"/{personas.other_team.pk}/", f"/{MISSING_PK}/"
    )
    hidden, missing = client.get(hidden_url), client.get(missing_url)
    assert hidden.status_code == missing.status_code == 302
    assert hidden["Location"] == missing["Location"] == reverse("admin:index")


@pytest.mark.parametrize("persona", ["owner", "trader", "viewer", "outsider"])
def test_non_staff_are_sent_to_the_admin_sign_in(personas: Any, client_for: Any, persona: str) -> None:
    client = client_for(getattr(personas, persona))
    for url in [reverse("admin:index"), _url("exchangeaccount_changelist"), _url("team_change", personas.team.pk)]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    response = client.post(_url("team_change", personas.team.pk), _team_form(personas.team, []))
    assert response.status_code == 302
    assert Membership.objects.filter(team=personas.team).count() == 4


def test_anonymous_is_sent_to_the_admin_sign_in(personas: Any, client: Client) -> None:
    response = client.get(_url("exchangeaccount_change", personas.team_account.pk))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- read-only roles (staff but not team admin) -------------------------------------------------


@pytest.mark.parametrize("persona", ["trader", "viewer"])
def test_read_only_staff_can_view_but_not_change(personas: Any, client_for: Any, persona: str) -> None:
    client = client_for(_staff(getattr(personas, persona)))
    account = personas.team_account
    view = client.get(_url("exchangeaccount_change", account.pk))
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    refused = [
        client.post(_url("exchangeaccount_change", account.pk), _change_form(account, label="Hijacked")),
        client.post(_url("exchangeaccount_delete", account.pk), {"post": "yes"}),
        client.post(_url("team_change", personas.team.pk), _team_form(personas.team, _existing_rows(personas.team))),
        client.get(_url("team_add")),
        client.get(_url("auditevent_changelist")),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    account.refresh_from_db()
    assert account.label == "Desk A main"


def test_team_admin_cannot_add_teams_or_rename_them(personas: Any, client_for: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    assert client.get(_url("team_add")).status_code == 403
    assert client.post(_url("team_add"), {"name": "Sneaky"}).status_code == 403
    client.post(_url("team_change", personas.team.pk), _team_form(personas.team, _existing_rows(personas.team), "New"))
    personas.team.refresh_from_db()
    assert personas.team.name == "Desk A"
    assert not Team.objects.filter(name="Sneaky").exists()


# --- teams and memberships through services -------------------------------------------------------


def test_superuser_creates_a_team_through_the_service(superuser: Any, client_for: Any) -> None:
    client = client_for(superuser)
    data = _team_form(Team(name="Desk C"), [], name="Desk C")
    response = client.post(_url("team_add"), data)
    assert response.status_code == 302
    team = Team.objects.get(name="Desk C")
    assert AuditEvent.objects.filter(action=Action.TEAM_ADDED, team=team, actor=superuser).exists()


def test_team_admin_manages_members_with_audit(personas: Any, client_for: Any) -> None:
    admin_user = _staff(personas.team_admin)
    team = personas.team
    client = client_for(admin_user)
    rows = _existing_rows(team)
    by_name = {row["user"]: row for row in rows}
    by_name[personas.trader.username]["role"] = "viewer"
    by_name[personas.viewer.username]["delete"] = True
    rows.append({"user": personas.owner.username, "role": "trader"})
    response = client.post(_url("team_change", team.pk), _team_form(team, rows))
    assert response.status_code == 302, response.content.decode()[:3000]
    roles = {m.user.username: m.role for m in team.memberships.select_related("user")}
    assert roles == {
        admin_user.username: "admin",
        "ingrid_inactive": "admin",
        personas.trader.username: "viewer",
        personas.owner.username: "trader",
    }
    events = AuditEvent.objects.filter(actor=admin_user, team=team, action__startswith="member_")
    actions = set(events.values_list("action", flat=True))
    assert actions == {Action.MEMBER_ROLE_CHANGED, Action.MEMBER_REMOVED, Action.MEMBER_ADDED}


def test_membership_errors_are_readable(personas: Any, client_for: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    team = personas.team
    rows = [*_existing_rows(team), {"user": "no_such_person", "role": "viewer"}]
    response = client.post(_url("team_change", team.pk), _team_form(team, rows))
    assert response.status_code == 200
    assert "There is no such user; pick one from the search." in response.content.decode()
    rows = [*_existing_rows(team), {"user": personas.trader.username, "role": "viewer"}]
    response = client.post(_url("team_change", team.pk), _team_form(team, rows))
    assert response.status_code == 200
    assert "already a member" in response.content.decode()
    deactivated = get_user_model().objects.create_user("gone", is_active=False)
    rows = [*_existing_rows(team), {"user": deactivated.username, "role": "viewer"}]
    response = client.post(_url("team_change", team.pk), _team_form(team, rows))
    assert response.status_code == 200
    assert "deactivated" in response.content.decode()
    assert Membership.objects.filter(team=team).count() == 4


def test_team_form_never_lists_all_users(personas: Any, client_for: Any) -> None:
    body = client_for(_staff(personas.team_admin)).get(_url("team_change", personas.team.pk)).content.decode()
    assert personas.trader.username in body  # existing members, as typed usernames
    assert personas.outsider.username not in body


def test_superuser_deletes_a_team_with_audit(personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    response = client.post(_url("team_delete", personas.team.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Team.objects.filter(name="Desk A").exists()
    assert not ExchangeAccount.objects.filter(label="Desk A main").exists()
    actions = list(AuditEvent.objects.filter(actor=personas.superuser).values_list("action", flat=True))
    assert Action.TEAM_REMOVED in actions
    assert Action.ACCOUNT_REMOVED in actions
    assert actions.count(Action.MEMBER_REMOVED) == 4  # admin, trader, viewer, inactive member


# --- accounts through services --------------------------------------------------------------------


def test_superuser_adds_account_through_the_service(personas: Any, client_for: Any) -> None:
    response = client_for(personas.superuser).post(
        _url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk))
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    account = ExchangeAccount.objects.get(label="Admin added")
    assert account.owner_team == personas.team
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == NEW_SECRET
    event = AuditEvent.objects.get(action=Action.ACCOUNT_ADDED, account=account)
    assert event.actor == personas.superuser
    log = LogEntry.objects.get(object_id=str(account.pk))
    assert NEW_SECRET not in log.change_message


def test_add_requires_the_secret_and_one_owner(personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    no_secret = client.post(_url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk), secret=""))
    assert no_secret.status_code == 200
    assert "Enter the secret API key." in no_secret.content.decode()
    both = client.post(
        _url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk), owner_user=str(personas.owner.pk))
    )
    assert "Choose either a user or a team as the owner, not both." in both.content.decode()
    neither = client.post(_url("exchangeaccount_add"), _account_form())
    assert "Choose the user or the team that owns this account." in neither.content.decode()
    for response in (no_secret, both, neither):
        assert NEW_SECRET not in response.content.decode()
    assert not ExchangeAccount.objects.filter(label="Admin added").exists()


def test_team_admin_cannot_add_for_another_team(personas: Any, client_for: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    forged = client.post(_url("exchangeaccount_add"), _account_form(owner_team=str(personas.other_team.pk)))
    assert forged.status_code == 200
    assert "Select a valid choice" in forged.content.decode()
    someone_else = client.post(_url("exchangeaccount_add"), _account_form(owner_user=str(personas.owner.pk)))
    assert "Select a valid choice" in someone_else.content.decode()
    assert not ExchangeAccount.objects.filter(label="Admin added").exists()
    ok = client.post(_url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk)))
    assert ok.status_code == 302
    assert ExchangeAccount.objects.get(label="Admin added").owner_team == personas.team


def test_change_with_blank_secret_keeps_it(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    before = account.secret_ciphertext
    client = client_for(_staff(personas.team_admin))
    response = client.post(_url("exchangeaccount_change", account.pk), _change_form(account, label="Desk A renamed"))
    assert response.status_code == 302, response.content.decode()[:3000]
    account.refresh_from_db()
    assert account.label == "Desk A renamed"
    assert account.secret_ciphertext == before
    event = AuditEvent.objects.get(action=Action.ACCOUNT_CHANGED, account=account)
    assert event.detail["changed"]["label"] == ["Desk A main", "Desk A renamed"]
    assert not AuditEvent.objects.filter(action=Action.ACCOUNT_SECRET_CHANGED).exists()


def test_change_with_new_secret_replaces_it_and_log_names_the_field_only(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    client = client_for(_staff(personas.team_admin))
    response = client.post(_url("exchangeaccount_change", account.pk), _change_form(account, secret=NEW_SECRET))
    assert response.status_code == 302
    account.refresh_from_db()
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == NEW_SECRET
    assert AuditEvent.objects.filter(action=Action.ACCOUNT_SECRET_CHANGED, account=account).exists()
    log = LogEntry.objects.get(object_id=str(account.pk))
    assert NEW_SECRET not in log.change_message
    assert "secret" in log.get_change_message().lower()


def test_owner_cannot_be_changed_after_creation(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    client = client_for(personas.superuser)
    data = _change_form(account, owner_team=str(personas.other_team.pk), owner_user=str(personas.owner.pk))
    client.post(_url("exchangeaccount_change", account.pk), data)
    account.refresh_from_db()
    assert account.owner_team == personas.team
    assert account.owner_user is None


def test_delete_goes_through_the_service(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    client = client_for(_staff(personas.team_admin))
    response = client.post(_url("exchangeaccount_delete", account.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not ExchangeAccount.objects.filter(pk=account.pk).exists()
    assert AuditEvent.objects.filter(action=Action.ACCOUNT_REMOVED, actor=personas.team_admin).exists()


def test_bulk_delete_action_goes_through_the_service(personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    pks = [personas.team_account.pk, personas.owner_account.pk]
    data = {"action": "delete_selected", "_selected_action": pks, "post": "yes"}
    response = client.post(_url("exchangeaccount_changelist"), data)
    assert response.status_code == 302
    assert not ExchangeAccount.objects.filter(pk__in=pks).exists()
    assert AuditEvent.objects.filter(action=Action.ACCOUNT_REMOVED).count() == 2


def test_admin_forms_refuse_posts_without_csrf(personas: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.superuser)
    account = personas.team_account
    responses = [
        client.post(_url("exchangeaccount_change", account.pk), _change_form(account, label="No CSRF")),
        client.post(_url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk))),
        client.post(_url("team_change", personas.team.pk), _team_form(personas.team, [])),
        client.post(_url("exchangeaccount_delete", account.pk), {"post": "yes"}),
    ]
    assert [r.status_code for r in responses] == [403] * 4
    account.refresh_from_db()
    assert account.label == "Desk A main"
    assert Membership.objects.filter(team=personas.team).count() == 4
    assert not ExchangeAccount.objects.filter(label="Admin added").exists()


def test_admin_form_ignores_extra_fields(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    binding, ciphertext = account.binding, account.secret_ciphertext
    data = _change_form(
        account,
        secret_ciphertext="v1.aaaaaaaaaaaa.forged",
        binding="00000000-0000-0000-0000-000000000000",
        secret_hint="XXXX",
        last_error="forged",
    )
    client_for(_staff(personas.team_admin)).post(_url("exchangeaccount_change", account.pk), data)
    account.refresh_from_db()
    assert (account.binding, account.secret_ciphertext, account.last_error) == (binding, ciphertext, "")


# --- audit events are read-only -----------------------------------------------------------------


def test_audit_events_cannot_be_added_changed_or_deleted(personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    event = AuditEvent.objects.first()
    assert event is not None
    assert client.get(_url("auditevent_add")).status_code == 403
    view = client.get(_url("auditevent_change", event.pk))
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert client.post(_url("auditevent_change", event.pk), {"target": "rewritten"}).status_code == 403
    assert client.post(_url("auditevent_delete", event.pk), {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.target != "rewritten"


def test_team_admin_reads_only_their_teams_events(personas: Any, client_for: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    foreign = AuditEvent.objects.filter(team=personas.other_team).first()
    assert foreign is not None
    response = client.get(_url("auditevent_change", foreign.pk))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


# --- errors a service would raise are caught by the forms first (no 500) ---------------------------


def test_admin_account_errors_are_form_errors(personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    account = personas.team_account
    count_before = ExchangeAccount.objects.count()
    cases = [
        (_url("exchangeaccount_change", account.pk), _change_form(account, label="Desk A main ")),  # same label: fine
        (_url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk), label="Desk A main")),
        (
            _url("exchangeaccount_add"),
            _account_form(owner_team=str(personas.team.pk), endpoint="custom", custom_url="ws://h:99999"),
        ),
        (
            _url("exchangeaccount_add"),
            _account_form(owner_team=str(personas.team.pk), endpoint="custom", custom_url="ws://[::1"),
        ),
        (_url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk), subaccount_id="nope")),
        (_url("exchangeaccount_add"), _account_form(owner_team=str(personas.team.pk), public_key="a b")),
    ]
    first = client.post(*cases[0])
    assert first.status_code == 302
    for url, data in cases[1:]:
        response = client.post(url, data)
        assert response.status_code == 200, data
        assert "errornote" in response.content.decode()
    assert ExchangeAccount.objects.count() == count_before


def test_admin_rename_to_a_taken_label_is_a_form_error(personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    second = personas.team_account
    exchange_accounts.account_create(
        actor=None, label="Desk A spare", public_key="k2", secret="s" * 20, owner_team=personas.team
    )
    response = client.post(_url("exchangeaccount_change", second.pk), _change_form(second, label="Desk A spare"))
    assert response.status_code == 200
    assert "Team Desk A already has an account called “Desk A spare”." in response.content.decode()
    second.refresh_from_db()
    assert second.label == "Desk A main"


def test_team_names_differing_only_in_case_are_refused(personas: Any, client_for: Any) -> None:
    data = _team_form(Team(name="desk a"), [], name="desk a")
    response = client_for(personas.superuser).post(_url("team_add"), data)
    assert response.status_code == 200
    assert "A team called “desk a” already exists." in response.content.decode()
