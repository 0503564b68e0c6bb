"""Every page for every persona: happy path, anonymous, outsider (404), read-only role (403), wrong method."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from orders.models import AuditEvent, ExchangeAccount

pytestmark = pytest.mark.django_db

MISSING_PK = 999_999
ALL_LABELS = ("Owner personal", "Desk A main", "Desk B main")


def _login_redirect(url: str) -> str:
    return f"{reverse('signin')}?next={url}"


# --- anonymous ---------------------------------------------------------------------------------


def _all_urls(p: Any) -> list[tuple[str, str]]:
    pk = p.owner_account.pk
    return [
        ("get", reverse("account_list")),
        ("get", reverse("account_detail", args=[pk])),
        ("get", reverse("my_accounts")),
        ("get", reverse("my_account_add")),
        ("post", reverse("my_account_add")),
        ("get", reverse("my_account_edit", args=[pk])),
        ("post", reverse("my_account_edit", args=[pk])),
        ("post", reverse("my_account_disable", args=[pk])),
        ("post", reverse("my_account_enable", args=[pk])),
        ("get", reverse("my_account_delete", args=[pk])),
        ("post", reverse("my_account_delete", args=[pk])),
        ("get", reverse("audit_trail")),
    ]


def test_anonymous_is_sent_to_sign_in_everywhere(personas: Any, client: Any) -> None:
    for method, url in _all_urls(personas):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"] == _login_redirect(url), (method, url)
    assert ExchangeAccount.objects.filter(pk=personas.owner_account.pk, enabled=True).exists()


# --- account list --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        ("owner", {"Owner personal"}),
        ("team_admin", {"Desk A main"}),
        ("trader", {"Desk A main"}),
        ("viewer", {"Desk A main"}),
        ("outsider", {"Desk B main"}),
        ("superuser", set(ALL_LABELS)),
    ],
)
def test_account_list_shows_exactly_what_the_persona_may_see(
    personas: Any, client_for: Any, persona: str, visible: set[str]
) -> None:
    response = client_for(getattr(personas, persona)).get(reverse("account_list"))
    assert response.status_code == 200
    body = response.content.decode()
    for label in ALL_LABELS:
        assert (label in body) == (label in visible), label
    assert "<caption>" in body


def test_account_list_shows_owner_endpoint_and_state(personas: Any, client_for: Any) -> None:
    account = personas.team_account
    account.last_error = "QFEX rejected the API key."
    account.save(update_fields=["last_error"])
    body = client_for(personas.viewer).get(reverse("account_list")).content.decode()
    assert "Team <bdi>Desk A</bdi>" in body
    assert "Custom URL" in body
    assert account.custom_url in body
    assert "QFEX rejected the API key." in body
    assert reverse("account_detail", args=[account.pk]) in body
    # A viewer gets no edit link for the team's account.
    assert reverse("my_account_edit", args=[account.pk]) not in body


def test_account_list_states_disabled_and_unreadable(personas: Any, client_for: Any) -> None:
    disabled = personas.owner_account
    disabled.enabled = False
    disabled.save(update_fields=["enabled"])
    team_account = personas.team_account
    # A ciphertext made with a key this server does not have: the page says "re-enter it", no 500.
    team_account.secret_ciphertext = "v1.000000000000.AAAA"
    team_account.save(update_fields=["secret_ciphertext"])
    response = client_for(personas.superuser).get(reverse("account_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "state-disabled" in body
    assert "state-secret_unreadable" in body
    assert "re-enter it" in body


def test_account_list_refuses_post(personas: Any, client_for: Any) -> None:
    assert client_for(personas.owner).post(reverse("account_list")).status_code == 405


# --- account detail (placeholder for the live page) -----------------------------------------------


@pytest.mark.parametrize("persona", ["team_admin", "trader", "viewer", "superuser"])
def test_team_members_open_the_team_account(personas: Any, client_for: Any, persona: str) -> None:
    response = client_for(getattr(personas, persona)).get(reverse("account_detail", args=[personas.team_account.pk]))
    assert response.status_code == 200
    assert "Desk A main" in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "account"),
    [
        ("outsider", "team_account"),
        ("outsider", "owner_account"),
        ("viewer", "owner_account"),
        ("owner", "team_account"),
    ],
)
def test_outsiders_get_the_same_404_as_a_missing_account(
    personas: Any, client_for: Any, persona: str, account: str
) -> None:
    client = client_for(getattr(personas, persona))
    hidden = client.get(reverse("account_detail", args=[getattr(personas, account).pk]))
    missing = client.get(reverse("account_detail", args=[MISSING_PK]))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content


def test_account_detail_refuses_post(personas: Any, client_for: Any) -> None:
    url = reverse("account_detail", args=[personas.owner_account.pk])
    assert client_for(personas.owner).post(url).status_code == 405


# --- my accounts ---------------------------------------------------------------------------------


def test_my_accounts_lists_only_personal_accounts(personas: Any, client_for: Any) -> None:
    body = client_for(personas.owner).get(reverse("my_accounts")).content.decode()
    assert "Owner personal" in body
    assert personas.owner_account.public_key in body
    assert personas.owner_account.masked_secret in body
    admin_body = client_for(personas.team_admin).get(reverse("my_accounts")).content.decode()
    assert "Desk A main" not in admin_body
    assert "no personal accounts" in admin_body


def test_my_accounts_refuses_post(personas: Any, client_for: Any) -> None:
    assert client_for(personas.owner).post(reverse("my_accounts")).status_code == 405


@pytest.mark.parametrize("name", ["my_account_edit", "my_account_delete"])
@pytest.mark.parametrize(("persona", "account"), [("owner", "owner_account"), ("team_admin", "team_account")])
def test_managers_open_edit_and_delete_pages(
    personas: Any, client_for: Any, name: str, persona: str, account: str
) -> None:
    target = getattr(personas, account)
    response = client_for(getattr(personas, persona)).get(reverse(name, args=[target.pk]))
    assert response.status_code == 200
    assert target.label in response.content.decode()


def test_superuser_opens_anyones_edit_page(personas: Any, client_for: Any) -> None:
    url = reverse("my_account_edit", args=[personas.other_team_account.pk])
    assert client_for(personas.superuser).get(url).status_code == 200


ACTIONS = [
    ("get", "my_account_edit"),
    ("post", "my_account_edit"),
    ("post", "my_account_disable"),
    ("post", "my_account_enable"),
    ("get", "my_account_delete"),
    ("post", "my_account_delete"),
]


@pytest.mark.parametrize(("method", "name"), ACTIONS)
@pytest.mark.parametrize("persona", ["trader", "viewer"])
def test_read_only_roles_are_refused_with_403(
    personas: Any, client_for: Any, method: str, name: str, persona: str
) -> None:
    account = personas.team_account
    before = ExchangeAccount.objects.get(pk=account.pk)
    data = {"label": "Renamed", "public_key": "k", "endpoint": "prod"}
    response = getattr(client_for(getattr(personas, persona)), method)(reverse(name, args=[account.pk]), data)
    assert response.status_code == 403
    assert "team admin" in response.content.decode()
    after = ExchangeAccount.objects.get(pk=account.pk)
    assert (after.label, after.enabled, after.endpoint) == (before.label, before.enabled, before.endpoint)


@pytest.mark.parametrize(("method", "name"), ACTIONS)
@pytest.mark.parametrize(("persona", "account"), [("outsider", "owner_account"), ("team_admin", "owner_account")])
def test_outsiders_get_404_on_actions_same_as_missing(
    personas: Any, client_for: Any, method: str, name: str, persona: str, account: str
) -> None:
    client = client_for(getattr(personas, persona))
    target = getattr(personas, account)
    hidden = getattr(client, method)(reverse(name, args=[target.pk]))
    missing = getattr(client, method)(reverse(name, args=[MISSING_PK]))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    assert ExchangeAccount.objects.filter(pk=target.pk, enabled=True).exists()


@pytest.mark.parametrize("name", ["my_account_disable", "my_account_enable"])
def test_enable_and_disable_refuse_get(personas: Any, client_for: Any, name: str) -> None:
    response = client_for(personas.owner).get(reverse(name, args=[personas.owner_account.pk]))
    assert response.status_code == 405


@pytest.mark.parametrize("name", ["my_account_add", "my_account_edit", "my_account_delete"])
def test_forms_refuse_other_methods(personas: Any, client_for: Any, name: str) -> None:
    args = [] if name == "my_account_add" else [personas.owner_account.pk]
    client = client_for(personas.owner)
    assert client.put(reverse(name, args=args)).status_code == 405
    assert client.delete(reverse(name, args=args)).status_code == 405


def test_disable_then_enable(personas: Any, client_for: Any) -> None:
    client = client_for(personas.owner)
    account = personas.owner_account
    response = client.post(reverse("my_account_disable", args=[account.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("my_accounts")
    account.refresh_from_db()
    assert account.enabled is False
    assert AuditEvent.objects.filter(account=account, action=AuditEvent.Action.ACCOUNT_DISABLED).count() == 1
    page = client.get(reverse("my_accounts")).content.decode()
    assert "Disabled “Owner personal”." in page
    client.post(reverse("my_account_enable", args=[account.pk]))
    account.refresh_from_db()
    assert account.enabled is True
    assert AuditEvent.objects.filter(account=account, action=AuditEvent.Action.ACCOUNT_ENABLED).count() == 1


def test_team_admin_disables_team_account_and_returns_to_list(personas: Any, client_for: Any) -> None:
    response = client_for(personas.team_admin).post(reverse("my_account_disable", args=[personas.team_account.pk]))
    assert response["Location"] == reverse("account_list")
    personas.team_account.refresh_from_db()
    assert personas.team_account.enabled is False


def test_delete_asks_then_removes(personas: Any, client_for: Any) -> None:
    client = client_for(personas.owner)
    account = personas.owner_account
    confirm = client.get(reverse("my_account_delete", args=[account.pk]))
    assert confirm.status_code == 200
    assert "Remove account" in confirm.content.decode()
    assert ExchangeAccount.objects.filter(pk=account.pk).exists()
    response = client.post(reverse("my_account_delete", args=[account.pk]))
    assert response.status_code == 302
    assert not ExchangeAccount.objects.filter(pk=account.pk).exists()
    removed = AuditEvent.objects.get(action=AuditEvent.Action.ACCOUNT_REMOVED)
    assert removed.actor == personas.owner
    assert client.get(reverse("account_detail", args=[account.pk])).status_code == 404


# --- audit trail ---------------------------------------------------------------------------------


def test_team_admin_reads_own_teams_trail_only(personas: Any, client_for: Any) -> None:
    response = client_for(personas.team_admin).get(reverse("audit_trail"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Desk A main" in body
    assert "Desk B main" not in body
    assert "Owner personal" not in body
    assert "<caption>" in body


def test_superuser_reads_the_whole_trail(personas: Any, client_for: Any) -> None:
    body = client_for(personas.superuser).get(reverse("audit_trail")).content.decode()
    for label in ALL_LABELS:
        assert label in body


@pytest.mark.parametrize("persona", ["owner", "trader", "viewer"])
def test_audit_trail_is_refused_to_non_admins(personas: Any, client_for: Any, persona: str) -> None:
    response = client_for(getattr(personas, persona)).get(reverse("audit_trail"))
    assert response.status_code == 403
    assert "team admins" in response.content.decode()
    assert "Desk A main" not in response.content.decode()


def test_audit_trail_refuses_post(personas: Any, client_for: Any) -> None:
    assert client_for(personas.team_admin).post(reverse("audit_trail")).status_code == 405


def test_audit_link_shown_only_to_those_who_may_read_it(personas: Any, client_for: Any) -> None:
    link = f'href="{reverse("audit_trail")}"'
    assert link in client_for(personas.team_admin).get(reverse("account_list")).content.decode()
    assert link not in client_for(personas.viewer).get(reverse("account_list")).content.decode()


def test_audit_trail_pages(personas: Any, client_for: Any) -> None:
    from orders.accounts import audit

    for n in range(60):
        audit.audit_record(actor=personas.superuser, action=AuditEvent.Action.ACCOUNT_CHANGED, target=f"t{n}")
    client = client_for(personas.superuser)
    first = client.get(reverse("audit_trail")).content.decode()
    assert "t59" in first
    assert "Page 1 of 2" in first
    second = client.get(reverse("audit_trail"), {"page": 2}).content.decode()
    assert "t59" not in second


# --- live feed state on the accounts list ------------------------------------------------------


def test_account_list_shows_the_live_feed_state_in_words(personas: Any, client_for: Any, monkeypatch: Any) -> None:
    from orders import views
    from orders.live.feed import AccountOverview
    from orders.live.protocol import Status

    stale = Status("stale", "QFEX did not answer within 10 s.", as_of=1_790_000_000.0, action="")
    overview = AccountOverview(stale, orders=1234, twaps=3)
    monkeypatch.setattr(views, "account_overviews", lambda: {personas.team_account.pk: overview})
    body = client_for(personas.viewer).get(reverse("account_list")).content.decode()
    row = body.split("Desk A main")[1].split("</tr>")[0]
    assert "Stale" in row
    assert "QFEX did not answer within 10 s." in row
    assert 'datetime="2026-09-21T' in row  # the data's time, from as_of
    assert "2026-09-21 " in row
    assert " UTC</time>" in row
    assert ">1234<" in row.replace(" ", "")  # open orders and TWAPs of the account
    assert ">3<" in row.replace(" ", "")
    assert "Idle" not in row


def test_account_list_says_when_nobody_watches(personas: Any, client_for: Any) -> None:
    body = client_for(personas.viewer).get(reverse("account_list")).content.decode()
    assert "Idle" in body
    assert "Not watched" not in body
