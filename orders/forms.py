"""Forms for sign-in, personal exchange accounts and the admin.

Forms only validate and collect input; saving goes through ``orders.accounts.services``. Every form lists its
fields explicitly, so extra POST fields (``owner_user``, ``secret_ciphertext``, ``binding``…) are
never read. Secret fields are write-only: rendered empty, never echoed back after an error.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from orders.accounts.endpoints import CUSTOM_URL_SUPERUSERS_ONLY, custom_url_problem, may_set_custom_url
from orders.accounts.services import DESTINATION_CHANGE_MESSAGE, DESTINATION_FIELDS
from orders.models import ExchangeAccount, Membership, Team

# Fields a user may edit on an account; owner, ciphertext and binding are never among them.
ACCOUNT_EDITABLE_FIELDS = ("label", "public_key", "endpoint", "custom_url", "subaccount_id")

SECRET_MAX_LENGTH = 500


# --- sign-in ---------------------------------------------------------------------------------


class SignInForm(AuthenticationForm):
    """The sign-in form. Failed attempts are counted and locked out by django-axes (orders.signin.throttle, S25)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password don't match. Both are case-sensitive.",
        "inactive": "That username and password don't match. Both are case-sensitive.",
    }


class AdminSignInForm(AdminAuthenticationForm):
    """The admin site's sign-in, throttled by django-axes with the same counters as the main sign-in page."""


# --- shared account validation -----------------------------------------------------------------


def validate_custom_url(value: str) -> None:
    """A trade WebSocket address: ws:// or wss:// with a host name, nothing else."""
    not_websocket = ValidationError(
        "Enter a WebSocket address starting with ws:// or wss://, for example wss://trade.example.com.",
        code="invalid_url",
    )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number from 0 to 65535)
    except ValueError:
        raise not_websocket from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise not_websocket
    if parts.username or parts.password:
        raise ValidationError("The address must not contain a user name or password.", code="invalid_url")


def validate_public_key(value: str) -> None:
    if any(ch.isspace() for ch in value.strip()):
        raise ValidationError(
            "That does not look like a QFEX public key: it must not contain spaces.", code="invalid_public_key"
        )


def validate_subaccount_id(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValidationError(
            "Enter the subaccount id exactly as QFEX shows it, for example 1b4e28ba-2fa1-11d2-883f-0016d3cca427.",
            code="invalid_subaccount",
        ) from None


def _clean_endpoint(form: forms.BaseForm, cleaned: dict[str, Any], user: Any, account: ExchangeAccount | None) -> None:
    """The custom address is required (and checked) with a custom endpoint, and dropped otherwise.

    Only a superuser may enter or change a custom address (S22); anyone who manages the account may
    keep the one it has. The address must be allowed by ``QFEXDASH_CUSTOM_ENDPOINTS``.
    """
    endpoint = cleaned.get("endpoint")
    if "custom_url" not in cleaned:
        return  # already has a field error (too long)
    custom_url = cleaned["custom_url"].strip()
    if endpoint == ExchangeAccount.Endpoint.CUSTOM:
        unchanged = (
            account is not None
            and account.pk is not None
            and account.endpoint == ExchangeAccount.Endpoint.CUSTOM
            and account.custom_url == custom_url
        )
        if not unchanged and not may_set_custom_url(user):
            form.add_error("custom_url", CUSTOM_URL_SUPERUSERS_ONLY)
            return
        if not custom_url:
            form.add_error("custom_url", "Enter the WebSocket address to use with a custom endpoint.")
            return
        try:
            validate_custom_url(custom_url)
        except ValidationError as exc:
            form.add_error("custom_url", exc)
            return
        problem = None if unchanged else custom_url_problem(custom_url)
        if problem:
            form.add_error("custom_url", problem)
            return
        cleaned["custom_url"] = custom_url
    elif endpoint:
        # A leftover custom address would be misleading on a production or UAT account.
        cleaned["custom_url"] = ""


def _require_secret_for_new_destination(
    form: forms.BaseForm, cleaned: dict[str, Any], account: ExchangeAccount | None
) -> None:
    """S21: pointing a stored key somewhere else (key, endpoint, URL, subaccount) needs its secret again."""
    if account is None or account.pk is None or cleaned.get("secret") or form.has_error("secret"):
        return
    changed = {name for name in DESTINATION_FIELDS if name in cleaned and cleaned[name] != getattr(account, name)}
    if changed:
        form.add_error("secret", DESTINATION_CHANGE_MESSAGE)


def check_label_free(
    label: str,
    owner_user: Any,
    owner_team: Any,
    account: ExchangeAccount | None,
    *,
    personal_owner_has: str = "This person already has",
) -> None:
    """Raise a readable error when the owner already has another account with this label.

    ``personal_owner_has`` starts the message for a personal account ("You already have" on the pages).
    """
    siblings = ExchangeAccount.objects.filter(label=label)
    if owner_team is not None:
        siblings = siblings.filter(owner_team=owner_team)
    else:
        siblings = siblings.filter(owner_user=owner_user)
    if account is not None and account.pk is not None:
        siblings = siblings.exclude(pk=account.pk)
    if siblings.exists():
        who = "This team already has" if owner_team is not None else personal_owner_has
        raise ValidationError(f"{who} an account called “{label}”. Choose another name.", code="duplicate")


def _model_field(name: str) -> Any:
    return ExchangeAccount._meta.get_field(name)


# --- "My accounts" page ------------------------------------------------------------------------


class AccountForm(forms.Form):
    """Add or edit an exchange account from the pages.

    ``account`` is the account being edited (None when adding); ``owner_user`` / ``owner_team`` say
    whose account a new one will be, so a label can be checked for uniqueness per owner.
    """

    label = forms.CharField(
        max_length=_model_field("label").max_length,
        help_text="A name you will recognise, for example “Main account”.",
        error_messages={"required": "Give the account a name."},
    )
    public_key = forms.CharField(
        label="Public API key",
        max_length=_model_field("public_key").max_length,
        validators=[validate_public_key],
        help_text="The public part of the API key pair, as QFEX shows it.",
        error_messages={"required": "Enter the public API key."},
    )
    secret = forms.CharField(
        label="Secret API key",
        max_length=SECRET_MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Shown once by QFEX when you made the key. It is stored encrypted and never shown again.",
        error_messages={"required": "Enter the secret API key."},
    )
    endpoint = forms.ChoiceField(
        label="Exchange",
        choices=ExchangeAccount.Endpoint.choices,
        initial=ExchangeAccount.Endpoint.PRODUCTION,
    )
    custom_url = forms.CharField(
        label="Custom address",
        required=False,
        max_length=_model_field("custom_url").max_length,
        help_text="Only for “Custom URL”: a ws:// or wss:// address, such as a simulator's.",
    )
    subaccount_id = forms.CharField(
        label="Subaccount id",
        required=False,
        max_length=_model_field("subaccount_id").max_length,
        validators=[validate_subaccount_id],
        help_text="Optional: a QFEX subaccount to view instead of the main account.",
    )

    def __init__(
        self,
        *args: Any,
        account: ExchangeAccount | None = None,
        owner_user: Any = None,
        owner_team: Any = None,
        user: Any = None,
        **kwargs: Any,
    ) -> None:
        self.account = account
        # Who is filling the form in: only a superuser may enter or change a custom address.
        self.user = user
        if account is not None:
            owner_user, owner_team = account.owner_user, account.owner_team
            kwargs.setdefault("initial", {name: getattr(account, name) for name in ACCOUNT_EDITABLE_FIELDS})
        self.owner_user = owner_user
        self.owner_team = owner_team
        super().__init__(*args, **kwargs)
        if account is not None:
            secret = self.fields["secret"]
            secret.required = False
            secret.label = "New secret API key"
            # format_html escapes the hint: help texts are rendered unescaped by some templates (the admin's).
            secret.help_text = format_html(
                "Stored secret: {}. Leave this blank to keep it; type a new secret only to replace it. "
                "Changing the public key, exchange, address or subaccount needs the secret typed again.",
                account.masked_secret,
            )
        if not may_set_custom_url(user):
            self.fields["custom_url"].help_text = "Only a superuser can enter or change a custom address."

    def clean_label(self) -> str:
        label = self.cleaned_data["label"].strip()
        if not label:
            raise ValidationError("Give the account a name.", code="required")
        check_label_free(label, self.owner_user, self.owner_team, self.account, personal_owner_has="You already have")
        return label

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Django's clean() returns cleaned_data (the stubs allow None)
        _clean_endpoint(self, cleaned, self.user, self.account)
        _require_secret_for_new_destination(self, cleaned, self.account)
        return cleaned

    def changed_account_fields(self) -> dict[str, Any]:
        """The editable fields whose cleaned value differs from the stored account."""
        assert self.account is not None
        return {
            name: self.cleaned_data[name]
            for name in ACCOUNT_EDITABLE_FIELDS
            if self.cleaned_data[name] != getattr(self.account, name)
        }


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a ``ValidationError`` raised by a service next to the fields it names (or above the form)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


# --- admin -------------------------------------------------------------------------------------


class ExchangeAccountAdminForm(forms.ModelForm):
    """The admin's account form: the secret is a write-only field that is never rendered back.

    ``acting_user`` is set by the admin (``ExchangeAccountAdmin.get_form``) to the signed-in user: only a
    superuser may enter or change a custom address, and pointing the key anywhere else needs its secret.
    """

    acting_user: Any = None

    secret = forms.CharField(
        label="Secret API key",
        required=False,
        max_length=SECRET_MAX_LENGTH,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = ExchangeAccount
        fields = [
            "label",
            "owner_user",
            "owner_team",
            "public_key",
            "secret",
            "endpoint",
            "custom_url",
            "subaccount_id",
            "enabled",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        secret = self.fields["secret"]
        if self.instance.pk is None:
            secret.required = True
            secret.help_text = "Stored encrypted; it is never shown again."
        else:
            secret.label = "New secret API key"
            # format_html escapes the hint: the admin renders help texts without escaping them.
            secret.help_text = format_html(
                "Stored secret: {}. Leave blank to keep it; type a new one to replace it. Changing the public "
                "key, endpoint, custom URL or subaccount needs the secret typed again.",
                self.instance.masked_secret,
            )
        if "public_key" in self.fields:
            self.fields["public_key"].validators.append(validate_public_key)
        if "subaccount_id" in self.fields:
            self.fields["subaccount_id"].validators.append(validate_subaccount_id)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Django's clean() returns cleaned_data (the stubs allow None)
        if "owner_user" in self.fields and "owner_team" in self.fields:
            has_user = cleaned.get("owner_user") is not None
            has_team = cleaned.get("owner_team") is not None
            if has_user == has_team and not self.has_error("owner_user") and not self.has_error("owner_team"):
                # Reported on both owner fields, which also keeps the model's owner constraint from
                # adding its own, less readable, message.
                if has_user:
                    message = "Choose either a user or a team as the owner, not both."
                else:
                    message = "Choose the user or the team that owns this account."
                self.add_error("owner_user", message)
                self.add_error("owner_team", message)
        # Compared with the row as stored, whatever the form does with its instance.
        stored = ExchangeAccount.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        if "endpoint" in self.fields:
            _clean_endpoint(self, cleaned, self.acting_user, stored)
        _require_secret_for_new_destination(self, cleaned, stored)
        self._check_label(cleaned)
        return cleaned

    def _check_label(self, cleaned: dict[str, Any]) -> None:
        # The owner fields are read-only on change, so the model's unique constraints cannot check this.
        label = (cleaned.get("label") or "").strip()
        if not label:
            return
        if self.instance.pk is not None:
            owner_user, owner_team = self.instance.owner_user, self.instance.owner_team
        else:
            owner_user, owner_team = cleaned.get("owner_user"), cleaned.get("owner_team")
            if (owner_user is None) == (owner_team is None):
                return  # the owner error is already shown
        try:
            check_label_free(label, owner_user, owner_team, self.instance)
        except ValidationError as exc:
            self.add_error("label", exc)


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Give the team a name.", code="required")
        # Names differing only in case would be confused with each other (the service refuses them too).
        if Team.objects.filter(name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise ValidationError(f"A team called “{name}” already exists.", code="duplicate")
        return name


class MembershipInlineForm(forms.ModelForm):
    """A membership row. The member is picked by searching usernames (the admin's autocomplete, see
    ``orders.admin.member_search``), so the page never lists every user."""

    class Meta:
        model = Membership
        fields = ["user", "role"]
        help_texts = {
            "role": "Admin: manages the team's members and accounts and reads its audit trail. "
            "Trader and Viewer: see the team's accounts live (qfexdash never trades).",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Django's clean() returns cleaned_data (the stubs allow None)
        user = cleaned.get("user")
        if user is not None and not user.is_active and user.pk != self.instance.user_id:
            self.add_error("user", f"{user.get_username()}'s sign-in is deactivated; they can't be added.")
            return cleaned
        # The formset checks duplicates among its own rows; this catches a member already stored.
        team_id = self.instance.team_id
        if user is not None and team_id is not None:
            others = Membership.objects.filter(team_id=team_id, user=user).exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("user", f"{user.get_username()} is already a member of this team.")
        return cleaned
