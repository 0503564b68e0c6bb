"""Server-rendered pages: the accounts list, the live pages, "My accounts" and the audit trail (sign-in is
:mod:`orders.signin`).

Views stay thin: who may see or change what is answered by ``orders.accounts.access`` and every write goes
through the services of ``orders.accounts``. Outsiders get 404 (the same page as for an id that does not exist); a
team member whose role may not act gets a plain 403 page.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orders.accounts import access, display, exchange_accounts, preferences, verify
from orders.accounts.audit_filters import AuditFilterForm
from orders.accounts.audit_text import describe
from orders.accounts.people import signed_in
from orders.forms import AccountForm, add_service_errors
from orders.live.feed import AccountOverview, account_overviews
from orders.models import ExchangeAccount

AUDIT_EVENTS_PER_PAGE = 50


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe for the reverse proxy: the process answers HTTP."""
    return JsonResponse({"ok": True})


# --- helpers -----------------------------------------------------------------------------------


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HttpResponse:
    """Render a page with what ``base.html`` needs for its navigation."""
    page_context = {"can_view_audit": access.may_read_audit(request.user), **(context or {})}
    return render(request, template, page_context, status=status)


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render_page(request, "orders/forbidden.html", {"message": message}, status=403)


def refuse_with_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn ``PermissionDenied`` from the access rules into a plain 403 page saying why."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            return forbidden(request, str(exc) or "You can't change this.")

    return wrapper


@dataclass(frozen=True)
class LiveState:
    """What the live feed says about an account right now, in words for the accounts list."""

    code: str  # live | stale | error | connecting | idle
    label: str
    detail: str
    as_of: datetime.datetime | None
    orders: int | None = None  # rows in this process's feed; None when not known here
    twaps: int | None = None


_LIVE_LABELS = {"live": "Live", "stale": "Stale", "error": "Error", "connecting": "Connecting"}


def _live_state(overview: AccountOverview | None) -> LiveState:
    status = overview.status if overview is not None else None
    if overview is None or status is None or status.state not in _LIVE_LABELS:
        return LiveState("idle", "Idle", "Nobody has this account open; it is read when someone does.", None)
    as_of = datetime.datetime.fromtimestamp(status.as_of, tz=datetime.UTC) if status.as_of is not None else None
    detail = " ".join(part for part in (status.reason, status.action) if part)
    return LiveState(status.state, _LIVE_LABELS[status.state], detail, as_of, overview.orders, overview.twaps)


@dataclass(frozen=True)
class AccountRow:
    account: ExchangeAccount
    state: display.KeyStatus
    can_manage: bool
    live: LiveState


def _rows(request: HttpRequest, accounts: Any) -> list[AccountRow]:
    managed = set(access.accounts_managed_by(request.user).values_list("pk", flat=True))
    overviews = account_overviews()
    return [
        AccountRow(
            account, display.account_key_status(account), account.pk in managed, _live_state(overviews.get(account.pk))
        )
        for account in accounts
    ]


def _after_change_url(request: HttpRequest, account: ExchangeAccount) -> str:
    """Personal accounts go back to "My accounts"; team accounts (edited by an admin) to the list."""
    return "my_accounts" if account.owner_user_id == request.user.pk else "account_list"


def _verify_and_report(request: HttpRequest, account: ExchangeAccount, saved: str) -> None:
    """Authenticate against QFEX once and tell the user, in words, whether the key works."""
    result = verify.account_verify(actor=signed_in(request), account=account)
    _report(request, result, saved)


def _report(request: HttpRequest, result: verify.VerifyResult, saved: str) -> None:
    if result.ok:
        messages.success(request, f"{saved} QFEX accepted the API key.")
    else:
        messages.warning(request, f"{saved} But the key could not be verified: {result.message}")


def _check_typed_key(form: AccountForm, data: dict[str, Any]) -> verify.KeyCheck | None:
    """Sign in once with the key as typed; None (and an error on the form) when QFEX rejected it.

    A rejected key is not saved: the form is shown again with QFEX's reason and an empty secret field.
    When QFEX cannot be reached the account is saved as "not verified" (docs/deployment.md says why).
    """
    check = verify.key_check(
        public_key=data["public_key"],
        secret=data["secret"],
        endpoint=data["endpoint"],
        custom_url=data["custom_url"],
        subaccount_id=data["subaccount_id"],
    )
    if check.outcome == verify.REJECTED:
        form.add_error("secret", f"QFEX did not accept this key, so nothing was saved: {check.message}")
        return None
    return check


# --- accounts ----------------------------------------------------------------------------------


@login_required
@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    """Every account the user may see, with its owner, exchange and state."""
    accounts = access.accounts_visible_to(request.user).order_by("label", "pk")
    return render_page(request, "orders/account_list.html", {"rows": _rows(request, accounts), "nav": "accounts"})


def _live_config(request: HttpRequest, **config: Any) -> dict[str, Any]:
    """The live page's configuration (static/js/live/page.js), with the person's time zone and columns."""
    preference = preferences.preference_of(request.user)
    return {
        **config,
        "time_zone": preference.time_zone,
        "zone_labels": preferences.zone_labels(preference.time_zone),
        "preferences": {"columns": preference.columns},
        "preferences_url": reverse("preferences_columns"),
        "csrf_token": get_token(request),
    }


@login_required
@require_GET
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The live page of one account: its open orders and active TWAPs, updated over a WebSocket."""
    account = access.get_visible_account(request.user, pk)
    page_config = _live_config(
        request, ws_path=f"/ws/accounts/{account.pk}/", mode="account", account=account.pk, account_label=account.label
    )
    context = {"title": account.label, "page_config": page_config, "account": account, "nav": "accounts"}
    return render_page(request, "orders/live.html", context)


@login_required
@require_GET
def all_accounts_live(request: HttpRequest) -> HttpResponse:
    """One live page for every account the user may see."""
    page_config = _live_config(request, ws_path="/ws/accounts/all/", mode="all", account=None, account_label="")
    context = {"title": "All accounts", "page_config": page_config, "nav": "all_accounts"}
    return render_page(request, "orders/live.html", context)


# --- display preferences -------------------------------------------------------------------------


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("account_list")


@login_required
@require_POST
def preferences_display(request: HttpRequest) -> HttpResponse:
    """The header's display menu: theme and time zone (UTC or the browser's), then back where the person was."""
    try:
        theme = preferences.clean_theme(request.POST.get("theme"))
        zone = preferences.clean_zone(request.POST.get("time_zone"))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        preferences.save_preference(signed_in(request), theme=theme, time_zone=zone)
    return redirect(_back(request))


@login_required
@require_POST
def preferences_columns(request: HttpRequest) -> HttpResponse:
    """The live tables' column choices, saved by the page as JSON: ``{"columns": {"orders": {...}, ...}}``."""
    try:
        body = json.loads(request.body or b"{}")
        columns = preferences.clean_columns(body.get("columns") if isinstance(body, dict) else None)
    except (ValueError, ValidationError) as exc:
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else "That is not JSON."
        return JsonResponse({"ok": False, "error": message}, status=400)
    saved = preferences.preference_of(request.user).columns or {}
    preferences.save_preference(signed_in(request), columns={**saved, **columns})
    return JsonResponse({"ok": True})


# --- "My accounts" -----------------------------------------------------------------------------


@login_required
@require_GET
def my_accounts(request: HttpRequest) -> HttpResponse:
    person = signed_in(request)
    mine = access.accounts_visible_to(person).filter(owner_user=person)
    accounts = mine.order_by("label", "pk")
    return render_page(request, "orders/my_accounts.html", {"rows": _rows(request, accounts), "nav": "my_accounts"})


@login_required
@require_http_methods(["GET", "POST"])
def my_account_add(request: HttpRequest) -> HttpResponse:
    person = signed_in(request)
    form = AccountForm(request.POST or None, owner_user=person, user=person)
    if request.method == "POST" and form.is_valid() and (check := _check_typed_key(form, form.cleaned_data)):
        data = form.cleaned_data
        try:
            account = exchange_accounts.account_create(
                actor=person,
                owner_user=person,
                label=data["label"],
                public_key=data["public_key"],
                secret=data["secret"],
                endpoint=data["endpoint"],
                custom_url=data["custom_url"],
                subaccount_id=data["subaccount_id"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            result = verify.account_record_check(actor=person, account=account, check=check)
            _report(request, result, f"Added “{account.label}”.")
            return redirect("my_accounts")
    return render_page(request, "orders/account_form.html", {"form": form, "account": None, "nav": "my_accounts"})


@login_required
@require_http_methods(["GET", "POST"])
@refuse_with_page
def my_account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    person = signed_in(request)
    account = access.get_managed_account(person, pk)
    form = AccountForm(request.POST or None, account=account, user=person)
    if request.method == "POST" and form.is_valid():
        changes = form.changed_account_fields()
        new_secret = form.cleaned_data["secret"]
        # A new secret is checked with QFEX before it replaces the stored one (a rejected one is not saved).
        check = _check_typed_key(form, form.cleaned_data) if new_secret else None
        if check is not None or not new_secret:
            try:
                with transaction.atomic():
                    account = exchange_accounts.account_update(
                        actor=person, account=account, secret=new_secret or None, **changes
                    )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                account.refresh_from_db()
                saved = f"Saved “{account.label}”."
                if check is not None:
                    result = verify.account_record_check(actor=person, account=account, check=check)
                    _report(request, result, saved)
                elif changes:
                    _verify_and_report(request, account, saved)
                else:
                    messages.success(request, f"{saved} Nothing had changed.")
                return redirect(_after_change_url(request, account))
    context = {"form": form, "account": account, "nav": "my_accounts"}
    return render_page(request, "orders/account_form.html", context)


@login_required
@require_POST
@refuse_with_page
def my_account_set_enabled(request: HttpRequest, pk: int, enabled: bool) -> HttpResponse:
    """Disable or enable an account (POST only); a disabled account is kept but not connected to."""
    account = access.get_managed_account(request.user, pk)
    if account.enabled != enabled:
        account = exchange_accounts.account_update(actor=signed_in(request), account=account, enabled=enabled)
    verb = "Enabled" if enabled else "Disabled"
    messages.success(request, f"{verb} “{account.label}”.")
    return redirect(_after_change_url(request, account))


@login_required
@require_http_methods(["GET", "POST"])
@refuse_with_page
def my_account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST removes the account and its stored key."""
    account = access.get_managed_account(request.user, pk)
    if request.method == "POST":
        label = account.label
        back = _after_change_url(request, account)
        exchange_accounts.account_delete(actor=signed_in(request), account=account)
        messages.success(request, f"Removed “{label}” and its stored API key.")
        return redirect(back)
    return render_page(request, "orders/account_confirm_delete.html", {"account": account, "nav": "my_accounts"})


# --- audit trail -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    event: Any
    lines: list[Any]


@login_required
@require_GET
def audit_trail(request: HttpRequest) -> HttpResponse:
    """Read-only list of changes to accounts and memberships, for team admins and superusers; filterable."""
    if not access.may_read_audit(request.user):
        return forbidden(request, "The audit trail is open to team admins only.")
    events = access.audit_events_visible_to(request.user)
    form = AuditFilterForm(request.GET or None, events)
    page = Paginator(form.filter(events), AUDIT_EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [AuditRow(event, describe(event.detail)) for event in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {"page": page, "rows": rows, "form": form, "query": query.urlencode(), "nav": "audit"}
    return render_page(request, "orders/audit_trail.html", context)
