""" "Your sessions": where a person is signed in, and "sign out everywhere else"."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import BrowserSession
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Safari/604.1"


def _signed_in(user: Any, address: str, agent: str) -> Client:
    client = Client(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    assert client.post(reverse("signin"), {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def test_the_page_lists_each_browser_with_when_and_where(trader: Any) -> None:
    desk = _signed_in(trader, "203.0.113.7", FIREFOX)
    phone = _signed_in(trader, "198.51.100.23", SAFARI)
    phone.get(reverse("account_list"))
    page = desk.get(reverse("your_sessions")).content.decode()
    assert "Firefox on Linux</bdi> <strong>(this browser)</strong>" in page
    assert "Safari on iPhone" in page
    assert "203.0.113.7" in page
    assert "198.51.100.23" in page
    assert "password only" in page
    assert page.count("<tr") == 3  # the heading row and two browsers
    assert phone.cookies["sessionid"].value not in page  # a session key is never shown


def test_sign_out_everywhere_else_ends_the_other_sessions_only(trader: Any, viewer: Any) -> None:
    desk = _signed_in(trader, "203.0.113.7", FIREFOX)
    phone = _signed_in(trader, "198.51.100.23", SAFARI)
    bystander = _signed_in(viewer, "198.51.100.23", SAFARI)
    response = desk.post(reverse("your_sessions"))
    assert response.status_code == 302
    assert "Signed out 1 other session" in desk.get(response["Location"]).content.decode()
    assert phone.get(reverse("account_list")).status_code == 302  # to the sign-in page
    assert "_auth_user_id" not in phone.session
    assert desk.get(reverse("account_list")).status_code == 200
    assert bystander.get(reverse("account_list")).status_code == 200  # another person's sessions stay
    assert BrowserSession.objects.filter(user=trader).count() == 1


def test_a_superuser_signs_a_person_out_everywhere(trader: Any, superuser: Any) -> None:
    desk = _signed_in(trader, "203.0.113.7", FIREFOX)
    root = Client()
    root.force_login(superuser)
    response = root.post(
        reverse("admin:auth_user_changelist"), {"action": "sign_out_everywhere", "_selected_action": [trader.pk]}
    )
    assert response.status_code == 302
    assert desk.get(reverse("account_list")).status_code == 302


def test_a_team_admin_cannot_sign_other_people_out(team_admin: Any, trader: Any) -> None:
    team_admin.is_staff = True
    team_admin.save(update_fields=["is_staff"])
    desk = _signed_in(trader, "203.0.113.7", FIREFOX)
    admin_client = Client()
    admin_client.force_login(team_admin)
    response = admin_client.post(
        reverse("admin:auth_user_changelist"), {"action": "sign_out_everywhere", "_selected_action": [trader.pk]}
    )
    assert response.status_code in (302, 403)
    assert desk.get(reverse("account_list")).status_code == 200


def test_a_session_row_is_written_at_most_once_a_minute(trader: Any) -> None:
    desk = _signed_in(trader, "203.0.113.7", FIREFOX)
    desk.get(reverse("account_list"))
    seen = BrowserSession.objects.get(user=trader).last_seen_at
    desk.get(reverse("account_list"))
    assert BrowserSession.objects.get(user=trader).last_seen_at == seen
