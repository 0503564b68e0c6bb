"""Team admin screens that explain themselves: role descriptions, a member picker with search, the team's
accounts on its page with their live pages, and a team that always keeps an admin (a form error, never a
500 or a 403 behind the person's back)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from orders.models import AuditEvent, Membership
from tests.admin.test_admin import _existing_rows, _staff, _team_form, _url

pytestmark = pytest.mark.django_db


def _autocomplete(client: Any, term: str) -> Any:
    return client.get(
        reverse("admin:autocomplete"),
        {"term": term, "app_label": "orders", "model_name": "membership", "field_name": "user"},
    )


def test_team_page_explains_roles_and_lists_its_accounts_with_live_pages(personas: Any, client_for: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    body = client.get(_url("team_change", personas.team.pk)).content.decode()
    assert "Adds and removes members" in body  # what each role may do
    assert "A team always keeps at least one admin" in body
    assert "Exchange accounts of the team" in body
    assert reverse("account_detail", args=[personas.team_account.pk]) in body
    assert "Live orders" in body
    # The members' picker is a search, not a list of every user.
    assert "admin-autocomplete" in body
    assert personas.outsider.username not in body


def test_account_list_in_the_admin_links_to_each_live_page(personas: Any, client_for: Any) -> None:
    body = client_for(personas.superuser).get(_url("exchangeaccount_changelist")).content.decode()
    assert f'href="{reverse("account_detail", args=[personas.team_account.pk])}"' in body


def test_team_admins_find_members_by_searching_usernames_only(personas: Any, client_for: Any) -> None:
    client = client_for(_staff(personas.team_admin))
    found = _autocomplete(client, "osc").json()
    assert [r["text"] for r in found["results"]] == [personas.outsider.username]
    assert _autocomplete(client, "o").json()["results"] == []  # at least two characters
    get_user_model().objects.filter(pk=personas.outsider.pk).update(is_active=False)
    assert _autocomplete(client, "osc").json()["results"] == []  # nobody who cannot sign in
    # Nothing else of the user admin opens up.
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_user_change", args=[personas.outsider.pk])).status_code in (302, 403)
    # Members who administer nothing, and anonymous visitors, get no search at all.
    assert _autocomplete(client_for(_staff(personas.viewer)), "osc").status_code == 403
    assert _autocomplete(client_for(None), "osc").status_code in (302, 403)


def test_the_last_admin_cannot_be_demoted_or_removed_in_the_admin(personas: Any, client_for: Any) -> None:
    admin_user = _staff(personas.team_admin)
    client = client_for(admin_user)
    team = personas.team
    for change in ({"role": "viewer"}, {"delete": True}):
        rows = _existing_rows(team)
        mine = next(r for r in rows if r["user"] == admin_user.username)
        mine.update(change)
        response = client.post(_url("team_change", team.pk), _team_form(team, rows))
        assert response.status_code == 200, change  # the form again, with the reason: not a 403, not a 500
        assert "must keep at least one admin who can sign in" in response.content.decode()
    assert Membership.objects.get(team=team, user=admin_user).role == "admin"
    assert not AuditEvent.objects.filter(team=team, action__in=["member_role_changed", "member_removed"]).exists()


def test_handing_over_admin_in_one_save_works(personas: Any, client_for: Any) -> None:
    """Making someone else admin and stepping down in the same save: the gain is applied before the loss."""
    admin_user = _staff(personas.team_admin)
    client = client_for(admin_user)
    team = personas.team
    rows = _existing_rows(team)
    for row in rows:
        if row["user"] == personas.trader.username:
            row["role"] = "admin"
        if row["user"] == admin_user.username:
            row["role"] = "viewer"
    response = client.post(_url("team_change", team.pk), _team_form(team, rows))
    assert response.status_code == 302, response.content.decode()[:2000]
    roles = {m.user.username: m.role for m in team.memberships.select_related("user")}
    assert roles[personas.trader.username] == "admin"
    assert roles[admin_user.username] == "viewer"
    # Stepping down leads somewhere readable, not to a bare 403.
    follow = client.get(response["Location"])
    assert follow.status_code == 200
