"""Forms for personal exchange accounts and the admin (the sign-in forms are :mod:`orders.signin.forms`).

Forms only validate and collect input; saving goes through the services of ``orders.accounts``. Every form lists its
fields explicitly, so extra POST fields (``owner_user``, ``secret_ciphertext``, ``binding``…) are
never read. Secret fields are write-only: rendered empty, never echoed back after an error.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from orders.accounts import rules
from orders.accounts.endpoints import CUSTOM_URL_SUPERUSERS_ONLY, may_set_custom_url
from orders.accounts.people import User, Visitor
from orders.models import ExchangeAccount, Membership, Team

# Fields a user may edit on an account from the pages (enabling has its own buttons); owner, ciphertext and
# binding are never among them.
ACCOUNT_EDITABLE_FIELDS = tuple(name for name in rules.ACCOUNT_FIELDS if name != "enabled")


# --- shared account validation -----------------------------------------------------------------


def _clean_endpoint(
    form: forms.BaseForm, cleaned: dict[str, Any], user: Visitor | None, account: ExchangeAccount | None
) -> None:
    """The custom address is required (and checked) with a custom endpoint, and dropped otherwise.

    Only a superuser may enter or change a custom address (S22); anyone who manages the account may
    keep the one it has, even when ``QFEXDASH_CUSTOM_ENDPOINTS`` no longer lists it.
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
        try:
            cleaned["custom_url"] = rules.clean_custom_url(custom_url, check_policy=not unchanged)
        except ValidationError as exc:
            form.add_error("custom_url", exc)
    elif endpoint:
        # A leftover custom address would be misleading on a production or UAT account.
        cleaned["custom_url"] = ""


def _require_secret_for_new_destination(
    form: forms.BaseForm, cleaned: dict[str, Any], account: ExchangeAccount | None
) -> None:
    """S21: pointing a stored key somewhere else (key, endpoint, URL, subaccount) needs its secret again."""
    if account is None or account.pk is None or cleaned.get("secret") or form.has_error("secret"):
        return
    changed = {name for name in rules.DESTINATION_FIELDS if name in cleaned and cleaned[name] != getattr(account, name)}
    if changed:
        form.add_error("secret", rules.DESTINATION_CHANGE_MESSAGE)


class _AccountFieldRules:
    """The account fields' rules (:mod:`orders.accounts.rules`), for the pages' form and the admin's."""

    cleaned_data: dict[str, Any]

    def clean_public_key(self) -> str:
        return rules.clean_public_key(self.cleaned_data["public_key"])

    def clean_subaccount_id(self) -> str:
        return rules.clean_subaccount_id(self.cleaned_data["subaccount_id"])


# --- "My accounts" page ------------------------------------------------------------------------


class AccountForm(_AccountFieldRules, forms.Form):
    """Add or edit an exchange account from the pages.

    ``account`` is the account being edited (None when adding); ``owner_user`` / ``owner_team`` say
    whose account a new one will be, so a label can be checked for uniqueness per owner.
    """

    label = forms.CharField(
        max_length=rules.LABEL_MAX_LENGTH,
        help_text="A name you will recognise, for example “Main account”.",
        error_messages=rules.FIELD_MESSAGES["label"],
    )
    public_key = forms.CharField(
        label="Public API key",
        max_length=rules.PUBLIC_KEY_MAX_LENGTH,
        help_text="The public part of the API key pair, as QFEX shows it.",
        error_messages=rules.FIELD_MESSAGES["public_key"],
    )
    secret = forms.CharField(
        label="Secret API key",
        max_length=rules.SECRET_MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Shown once by QFEX when you made the key. It is stored encrypted and never shown again.",
        error_messages=rules.FIELD_MESSAGES["secret"],
    )
    endpoint = forms.ChoiceField(
        label="Exchange",
        choices=ExchangeAccount.Endpoint.choices,
        initial=ExchangeAccount.Endpoint.PRODUCTION,
        error_messages=rules.FIELD_MESSAGES["endpoint"],
    )
    custom_url = forms.CharField(
        label="Custom address",
        required=False,
        max_length=rules.CUSTOM_URL_MAX_LENGTH,
        help_text="Only for “Custom URL”: a ws:// or wss:// address, such as a simulator's.",
        error_messages=rules.FIELD_MESSAGES["custom_url"],
    )
    subaccount_id = forms.CharField(
        label="Subaccount id",
        required=False,
        max_length=rules.SUBACCOUNT_ID_MAX_LENGTH,
        help_text="Optional: a QFEX subaccount to view instead of the main account.",
        error_messages=rules.FIELD_MESSAGES["subaccount_id"],
    )

    def __init__(
        self,
        *args: Any,
        account: ExchangeAccount | None = None,
        owner_user: User | None = None,
        owner_team: Team | None = None,
        user: Visitor | None = None,
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
        label = rules.clean_label(self.cleaned_data["label"])
        exclude_pk = self.account.pk if self.account is not None else None
        rules.check_label_free(label, owner_user=self.owner_user, owner_team=self.owner_team, exclude_pk=exclude_pk)
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


class ExchangeAccountAdminForm(_AccountFieldRules, forms.ModelForm):
    """The admin's account form: the secret is a write-only field that is never rendered back.

    ``acting_user`` is set by the admin (``ExchangeAccountAdmin.get_form``) to the signed-in user: only a
    superuser may enter or change a custom address, and pointing the key anywhere else needs its secret.
    """

    acting_user: Visitor | None = None

    secret = forms.CharField(
        label="Secret API key",
        required=False,
        max_length=rules.SECRET_MAX_LENGTH,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        error_messages=rules.FIELD_MESSAGES["secret"],
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
        error_messages = rules.FIELD_MESSAGES

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
            rules.check_label_free(label, owner_user=owner_user, owner_team=owner_team, exclude_pk=self.instance.pk)
        except ValidationError as exc:
            self.add_error("label", exc)


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]
        error_messages = rules.FIELD_MESSAGES

    def clean_name(self) -> str:
        return rules.clean_team_name(self.cleaned_data["name"], exclude_pk=self.instance.pk)


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
        error_messages = rules.FIELD_MESSAGES

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Django's clean() returns cleaned_data (the stubs allow None)
        user = cleaned.get("user")
        if user is not None and not user.is_active and user.pk != self.instance.user_id:
            self.add_error("user", f"{user.get_username()}'s sign-in is deactivated; they can't be added.")
            return cleaned
        # The formset checks duplicates among its own rows; this catches a member already stored.
        if user is not None and self.instance.team_id is not None:
            try:
                rules.check_not_member(self.instance.team, user, exclude_pk=self.instance.pk)
            except ValidationError as exc:
                self.add_error("user", exc)
        return cleaned
