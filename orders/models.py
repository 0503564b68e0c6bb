"""Teams, memberships, exchange accounts with encrypted secrets, and the audit trail.

Business rules live in the services of ``orders.accounts`` (writes, one module per entity) and
``orders.accounts.access`` (who may see what); the models hold data, constraints and small derived values only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        TRADER = "trader", "Trader"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_user_and_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.get_role_display()})"


class ExchangeAccount(models.Model):
    """A QFEX account (or subaccount) whose orders qfexdash shows, with its API key pair.

    The secret is stored only as ciphertext made by ``orders.accounts.encryption``, bound to ``binding`` so
    that a ciphertext copied into another row does not decrypt.
    """

    class Endpoint(models.TextChoices):
        PRODUCTION = "prod", "QFEX production"
        UAT = "uat", "QFEX UAT (test exchange)"
        CUSTOM = "custom", "Custom URL"

    label = models.CharField(max_length=100)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="exchange_accounts"
    )
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="exchange_accounts"
    )
    public_key = models.CharField(max_length=200)
    secret_ciphertext = models.TextField(editable=False)
    # Last four characters of the secret, so people can tell keys apart without seeing them.
    secret_hint = models.CharField(max_length=4, editable=False, blank=True)
    binding = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subaccount_id = models.CharField(
        "subaccount id",
        max_length=64,
        blank=True,
        help_text="Optional QFEX subaccount UUID to view instead of the main account.",
    )
    endpoint = models.CharField(max_length=10, choices=Endpoint.choices, default=Endpoint.PRODUCTION)
    custom_url = models.CharField("custom URL", max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    last_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(owner_user__isnull=False) & Q(owner_team__isnull=True))
                | (Q(owner_user__isnull=True) & Q(owner_team__isnull=False)),
                name="account_owned_by_one_user_or_one_team",
            ),
            models.UniqueConstraint(fields=["owner_user", "label"], name="unique_label_per_user"),
            models.UniqueConstraint(fields=["owner_team", "label"], name="unique_label_per_team"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def owner_display(self) -> str:
        return f"team {self.owner_team}" if self.owner_team_id else f"user {self.owner_user}"

    @property
    def masked_secret(self) -> str:
        return f"••••{self.secret_hint}" if self.secret_hint else "••••"

    def trade_url(self) -> str:
        """The trade WebSocket URL this account connects to."""
        if self.endpoint == self.Endpoint.CUSTOM:
            return self.custom_url
        if self.endpoint == self.Endpoint.UAT:
            return settings.QFEX_UAT_TRADE_URL
        return settings.QFEX_TRADE_URL


class AuditEvent(models.Model):
    """Append-only record of who changed accounts and memberships. Never holds a secret."""

    class Action(models.TextChoices):
        ACCOUNT_ADDED = "account_added", "Account added"
        ACCOUNT_CHANGED = "account_changed", "Account changed"
        ACCOUNT_SECRET_CHANGED = "account_secret_changed", "Account secret replaced"
        ACCOUNT_VERIFIED = "account_verified", "Account credentials verified"
        ACCOUNT_VERIFY_FAILED = "account_verify_failed", "Account verification failed"
        ACCOUNT_DISABLED = "account_disabled", "Account disabled"
        ACCOUNT_ENABLED = "account_enabled", "Account enabled"
        ACCOUNT_REMOVED = "account_removed", "Account removed"
        SECRETS_ROTATED = "secrets_rotated", "Encryption keys rotated"
        MEMBER_ADDED = "member_added", "Member added"
        MEMBER_ROLE_CHANGED = "member_role_changed", "Member role changed"
        MEMBER_REMOVED = "member_removed", "Member removed"
        TEAM_ADDED = "team_added", "Team added"
        TEAM_REMOVED = "team_removed", "Team removed"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the trail still says who it was after the user is deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    account = models.ForeignKey(
        ExchangeAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    target = models.CharField(max_length=200, help_text="What was acted on, in words (kept after deletion).")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        who = self.actor_name or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.get_action_display()} {self.target}"


class UserPreference(models.Model):
    """How one person wants pages shown: time zone, theme, and the columns of each live table.

    Kept on the server, not in the browser, so the choices follow the person to another machine and
    two traders sharing a desk machine keep their own. Written only by ``orders.accounts.preferences``.
    """

    class Theme(models.TextChoices):
        SYSTEM = "system", "As the system"
        LIGHT = "light", "Light"
        DARK = "dark", "Dark"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="preference"
    )
    # An IANA zone name ("UTC", "Europe/Berlin"): every time on every page is shown in it.
    time_zone = models.CharField(max_length=64, default="UTC")
    theme = models.CharField(max_length=8, choices=Theme.choices, default=Theme.SYSTEM)
    # {"orders" | "twaps" | "closed": {"hidden": [column ids], "shown": [column ids]}}: departures from the
    # default columns of each live table.
    columns = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"display preferences of {self.user}"


class BrowserSession(models.Model):
    """One signed-in browser of a person, for "Your sessions" (written only by ``orders.accounts.sign_ins``).

    Django's session row holds the sign-in itself; this row says whose it is, when it began, from where and
    with which second factor, so a person (or a superuser for them) can end every other one. The session key
    is as sensitive as the session cookie: it is never shown, and never filtered on in the admin.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="browser_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    signed_in_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    # The device that gave the second factor ("Authenticator app", "Recovery codes"), empty for password only.
    second_factor = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-pk"]

    def __str__(self) -> str:
        return f"session of {self.user} since {self.signed_in_at:%Y-%m-%d %H:%M}"


class DemoMarker(models.Model):
    """Written by ``manage.py demo`` into a database it created: only such a database (or an empty one) may be
    filled with the demo's users and printed password again (S36)."""

    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"demo database since {self.created_at:%Y-%m-%d}"
