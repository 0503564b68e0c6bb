"""The URL vocabulary: sign-in has its own words (/signin/, /signout/, /signin/two-step/), and accounts/ means
exchange accounts only (pages and their /ws/accounts/… sockets)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> list[tuple[str, str | None]]:
    routes = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            routes.append((prefix + str(pattern.pattern), pattern.name))
    return routes


def test_sign_in_has_its_own_paths() -> None:
    names = ("signin", "signout", "two_factor_verify", "two_factor_setup")
    assert [reverse(name) for name in names] == [
        "/signin/",
        "/signout/",
        "/signin/two-step/",
        "/signin/two-step/setup/",
    ]
    assert resolve_url(settings.LOGIN_URL) == resolve_url(settings.LOGOUT_REDIRECT_URL) == "/signin/"


def test_accounts_in_a_path_means_exchange_accounts() -> None:
    about_accounts = [
        (path, name) for path, name in _routes(get_resolver().url_patterns) if "account" in path.split("/")[0]
    ]
    assert about_accounts, "no route under accounts/ was found; the test would prove nothing"
    assert {name for _, name in about_accounts} == {"account_detail", "all_accounts_live"}


def test_a_signed_out_visit_is_sent_to_the_sign_in_page(db: None) -> None:
    response = Client().get(reverse("account_list"))
    assert response.status_code == 302
    assert response["Location"] == "/signin/?next=/"
