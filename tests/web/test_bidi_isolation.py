"""S39 on the pages: a label with a right-to-left override cannot make the text around it read backwards.

Item 7 of issue 20 suspected it: an account named ``"Desk \u202eniam"`` made its audit line read
``account 'Desk (Desk A maet) 'main`` — the override ran on past the label into the owner and beyond. Every
label, team name and recorded value is now shown isolated (``<bdi>``, or the FSI/PDI pair U+2068/U+2069 where
no element can go: titles, and the audit trail's stored sentence), so an override ends where the name ends.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from orders.accounts import exchange_accounts
from orders.models import AuditEvent, ExchangeAccount

pytestmark = pytest.mark.django_db

OVERRIDE = "Desk \u202eniam"  # shows as "Desk main" reversed: an attacker's "niam" reads "main"
FSI, PDI = "\u2068", "\u2069"


def _isolated_everywhere(html: str, text: str) -> None:
    """Every occurrence of ``text`` sits inside a ``<bdi>`` or between FSI and PDI."""
    for match in re.finditer(re.escape(text), html):
        before, after = html[: match.start()], html[match.end() :]
        if before.rfind("<") > before.rfind(">"):
            continue  # an attribute (a form field's value, a spoken label): not laid out among other text
        opened = max(before.rfind("<bdi>"), before.rfind("<bdi "))
        in_bdi = opened > before.rfind("</bdi>") and after.find("</bdi>") > -1
        in_marks = before.endswith(FSI) and after.startswith(PDI)
        assert in_bdi or in_marks, html[max(0, match.start() - 120) : match.end() + 60]


@pytest.fixture
def renamed(personas: Any) -> ExchangeAccount:
    return exchange_accounts.account_update(actor=personas.team_admin, account=personas.team_account, label=OVERRIDE)


def test_pages_isolate_account_labels(renamed: ExchangeAccount, personas: Any, client_for: Any) -> None:
    admin_client = client_for(personas.team_admin)
    for url in (
        reverse("account_list"),
        reverse("my_account_edit", args=[renamed.pk]),
        reverse("my_account_delete", args=[renamed.pk]),
    ):
        html = admin_client.get(url).content.decode()
        assert OVERRIDE in html, url
        _isolated_everywhere(html, OVERRIDE)
    personal = exchange_accounts.account_update(actor=personas.owner, account=personas.owner_account, label=OVERRIDE)
    html = client_for(personas.owner).get(reverse("my_accounts")).content.decode()
    assert personal.label in html
    _isolated_everywhere(html, OVERRIDE)


def test_the_audit_trail_isolates_labels_in_its_sentence_and_its_details(
    renamed: ExchangeAccount, personas: Any, client_for: Any
) -> None:
    event = AuditEvent.objects.filter(account=renamed).latest("pk")
    assert "\u202e" not in event.target  # the stored sentence quotes the label with its override escaped
    html = client_for(personas.team_admin).get(reverse("audit_trail")).content.decode()
    assert OVERRIDE in html
    _isolated_everywhere(html, OVERRIDE)
    assert "<bdi>Desk A</bdi>" in html  # the team's name too
    from orders.accounts import teams

    team = teams.team_create(actor=personas.superuser, name="\u05d3\u05e1\u05e7 B")  # a Hebrew name
    assert AuditEvent.objects.filter(team=team).latest("pk").target == f"team {FSI}{team.name}{PDI}"


def test_the_admin_isolates_labels(renamed: ExchangeAccount, personas: Any, client_for: Any) -> None:
    client = client_for(personas.superuser)
    for url in (
        reverse("admin:orders_team_change", args=[personas.team.pk]),
        reverse("admin:orders_exchangeaccount_changelist"),
    ):
        html = client.get(url).content.decode()
        assert OVERRIDE in html, url
        _isolated_everywhere(html, OVERRIDE)
