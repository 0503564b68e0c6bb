"""The Django admin as the back office for teams, memberships, exchange accounts and the audit trail.

Who sees and changes what is answered by ``orders.accounts.access``, not by Django's model permissions: a
staff user needs no permission rows; they see the teams they belong to and those teams' accounts,
and change only what they manage (superusers: everything). Every write goes through the services of
``orders.accounts`` (one module per entity) so the audit trail is written. Secrets are write-only: the
secret field is never rendered back, and only a masked hint is shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Model, QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from orders.accounts import access, audit, display, exchange_accounts, rules, teams, verify
from orders.accounts.audit_text import isolated
from orders.accounts.people import signed_in
from orders.admin import member_search as _member_search  # noqa: F401  (registers the user admin's member search)
from orders.admin.people import end_sessions_on_device_delete
from orders.admin.safety import protect_site
from orders.forms import ExchangeAccountAdminForm, MembershipInlineForm, TeamAdminForm
from orders.models import AuditEvent, ExchangeAccount, Membership, Team
from orders.signin.forms import AdminSignInForm

# The admin's own sign-in shares the throttle of the main sign-in page.
admin.site.login_form = AdminSignInForm
admin.site.site_header = "qfexdash administration"
admin.site.site_title = "qfexdash admin"
admin.site.index_title = "Teams, accounts and audit trail"


def _is_staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff)


def _isolated_html(text: str) -> str:
    """Free text (a label, a name) in a ``<bdi>``: a right-to-left override in it ends where it ends (S39)."""
    return format_html("<bdi>{}</bdi>", text)


def _adopt(target: Model, source: Model) -> None:
    """Copy a row saved by a service into the instance the admin holds (it logs and redirects with it)."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


# --- teams and memberships ---------------------------------------------------------------------


class MembershipFormSet(BaseInlineFormSet):
    """The team's members as saved: refused, with the reason, if no active admin would be left."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors) or not self.instance.pk:
            return
        admins = 0
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            user = data.get("user")
            if not data or data.get("DELETE") or user is None:
                continue
            if data.get("role") == Membership.Role.ADMIN and user.is_active:
                admins += 1
        if admins == 0:
            raise ValidationError(teams.LAST_ADMIN_MESSAGE.format(team=self.instance.name), code="last_admin")


class MembershipInline(admin.StackedInline):
    """Stacked, not tabular: each member's fields have their own labels (screen readers, axe)."""

    model = Membership
    form = MembershipInlineForm
    formset = MembershipFormSet
    fields = ["user", "role"]
    autocomplete_fields = ["user"]
    extra = 1
    verbose_name = "member"
    verbose_name_plural = "Members: type part of a username to find someone"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field: Any = super().formfield_for_foreignkey(db_field, request, **kwargs)  # a choice field for "user"
        if db_field.name == "user":
            field.error_messages["invalid_choice"] = "There is no such user; pick one from the search."
            # The search box's words, which also name it for screen readers while nobody is picked.
            widget = getattr(field.widget, "widget", field.widget)  # the admin may wrap it
            widget.attrs["data-placeholder"] = "Type part of a username"
        return field

    # ``obj`` is the team being edited (None on the "add team" page, which only superusers reach).
    def _may_manage(self, request: HttpRequest, obj: Team | None) -> bool:
        if obj is None:
            return bool(request.user.is_superuser)
        return access.can_manage_team(request.user, obj)

    def has_view_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return _is_staff(request) and (obj is None or access.teams_visible_to(request.user).filter(pk=obj.pk).exists())

    # An inline's takes the parent object; django-stubs' InlineModelAdmin overrides it the same way.
    def has_add_permission(self, request: HttpRequest, obj: Team | None) -> bool:  # type: ignore[override]
        return _is_staff(request) and self._may_manage(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return _is_staff(request) and self._may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return _is_staff(request) and self._may_manage(request, obj)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ["team_name", "member_count", "account_count", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]
    # Explains the roles above the form (templates/admin/orders/team/change_form.html).
    change_form_template = "admin/orders/team/change_form.html"

    # (title, options) pairs, as the stubs' private _FieldsetSpec describes them.
    def get_fieldsets(self, request: HttpRequest, obj: Team | None = None) -> list[tuple[Any, dict]]:  # type: ignore[override]
        fieldsets: list[tuple[Any, dict]] = [(None, {"fields": ["name"]})]
        if obj is not None:
            # Shown, not a form: the team's members and its accounts are on one page without another formset.
            fieldsets.append(("Exchange accounts of the team", {"fields": ["team_accounts"]}))
        return fieldsets

    @admin.display(description="Accounts")
    def team_accounts(self, obj: Team) -> str:
        accounts = list(obj.exchange_accounts.order_by("label", "pk"))
        if not accounts:
            return "None yet."
        rows = format_html_join(
            "",
            '<tr><th scope="row"><bdi>{}</bdi></th><td>{}</td><td>{}</td><td><a href="{}">Live orders</a></td>'
            '<td><a href="{}">Settings</a></td></tr>',
            (
                (
                    account.label,
                    "enabled" if account.enabled else "disabled",
                    display.account_key_status(account).label,
                    reverse("account_detail", args=[account.pk]),
                    reverse("admin:orders_exchangeaccount_change", args=[account.pk]),
                )
                for account in accounts
            ),
        )
        head = format_html(
            "<thead><tr>{}</tr></thead>",
            format_html_join("", '<th scope="col">{}</th>', ((h,) for h in ("Account", "", "Key", "", ""))),
        )
        return format_html('<table class="team-accounts">{}<tbody>{}</tbody></table>', head, rows)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return access.teams_visible_to(request.user).annotate(
            _members=Count("memberships", distinct=True), _accounts=Count("exchange_accounts", distinct=True)
        )

    @admin.display(description="Name", ordering="name")
    def team_name(self, obj: Team) -> str:
        return _isolated_html(obj.name)

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj: Team) -> int:
        return obj._members  # type: ignore[attr-defined]

    @admin.display(description="Accounts", ordering="_accounts")
    def account_count(self, obj: Team) -> int:
        return obj._accounts  # type: ignore[attr-defined]

    def get_readonly_fields(self, request: HttpRequest, obj: Team | None = None) -> list[str]:
        # Renaming has no audited service, so only superusers may do it.
        return ["team_accounts"] if request.user.is_superuser else ["name", "team_accounts"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_staff(request) and access.teams_visible_to(request.user).exists()

    def has_view_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        if not _is_staff(request):
            return False
        visible = access.teams_visible_to(request.user)
        return visible.exists() if obj is None else visible.filter(pk=obj.pk).exists()

    def has_change_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        if not _is_staff(request):
            return False
        if obj is None:
            return access.teams_managed_by(request.user).exists()
        return access.can_manage_team(request.user, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_staff(request) and bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return _is_staff(request) and bool(request.user.is_superuser)

    def save_model(self, request: HttpRequest, obj: Team, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            _adopt(obj, teams.team_create(actor=signed_in(request), name=form.cleaned_data["name"]))

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        team, actor = form.instance, signed_in(request)
        formset.save(commit=False)  # fills deleted_objects / changed_objects / new_objects without writing
        # Gains before losses, so "make B admin, demote A" in one save never passes through "no admin" (the
        # services refuse that; the formset's clean() already said so for the end state).
        for membership in formset.new_objects:
            created = teams.membership_add(actor=actor, team=team, user=membership.user, role=membership.role)
            _adopt(membership, created)
        changed_rows = sorted(formset.changed_objects, key=lambda item: item[0].role != Membership.Role.ADMIN)
        for membership, changed in changed_rows:
            # The formset already wrote the new values into its instance; the services need the stored row.
            stored = Membership.objects.select_related("user", "team").get(pk=membership.pk)
            if "user" in changed:
                teams.membership_add(actor=actor, team=team, user=membership.user, role=membership.role)
                teams.membership_remove(actor=actor, membership=stored)
            elif "role" in changed:
                teams.membership_change_role(actor=actor, membership=stored, role=membership.role)
        for membership in formset.deleted_objects:
            teams.membership_remove(actor=actor, membership=Membership.objects.get(pk=membership.pk))

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        """Remove the team's accounts and memberships one by one (each audited), then the team."""
        actor = signed_in(request)
        for account in obj.exchange_accounts.select_related("owner_team", "owner_user"):
            exchange_accounts.account_delete(actor=actor, account=account)
        for membership in obj.memberships.select_related("user", "team"):
            teams.membership_remove(actor=actor, membership=membership, team_deleted=True)
        audit.audit_record(
            actor=request.user, action=AuditEvent.Action.TEAM_REMOVED, target=f"team {isolated(obj.name)}"
        )
        obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        for team in queryset:
            self.delete_model(request, team)


# --- exchange accounts -------------------------------------------------------------------------


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    form = ExchangeAccountAdminForm
    list_display = ["account_label", "owner", "exchange", "enabled", "state", "last_verified_at", "live_page"]
    list_filter = ["endpoint", "enabled", ("owner_team", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["label", "public_key", "owner_user__username", "owner_team__name"]
    list_select_related = ["owner_user", "owner_team"]
    actions = ["verify_credentials"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExchangeAccount]:
        return access.accounts_visible_to(request.user)

    def get_form(
        self, request: HttpRequest, obj: ExchangeAccount | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # The form needs the signed-in user: only a superuser may enter or change a custom URL (S22).
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    # (title, options) pairs, as the stubs' private _FieldsetSpec describes them.
    def get_fieldsets(  # type: ignore[override]
        self, request: HttpRequest, obj: ExchangeAccount | None = None
    ) -> list[tuple[Any, dict]]:
        key_fields = ["public_key", "secret"] if obj is None else ["public_key", "stored_secret", "secret"]
        fieldsets: list[tuple[Any, dict]] = [
            (None, {"fields": ["label", "owner_user", "owner_team", "enabled"]}),
            ("API key", {"fields": key_fields}),
            ("Exchange", {"fields": ["endpoint", "custom_url", "subaccount_id"]}),
        ]
        if obj is not None:
            fieldsets.append(("Status", {"fields": ["state", "last_verified_at", "last_error"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: ExchangeAccount | None = None) -> list[str]:
        if obj is None:
            return []
        return ["owner_user", "owner_team", "stored_secret", "state", "last_verified_at", "last_error"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Only owners this admin may create accounts for are offered (and accepted: a forged id fails
        # the choice validation).
        if db_field.name == "owner_team":
            kwargs["queryset"] = access.teams_managed_by(request.user)
        elif db_field.name == "owner_user":
            users = get_user_model().objects.filter(is_active=True)
            mine = users.filter(pk=request.user.pk)  # type: ignore[misc]  # the admin's user is signed in
            kwargs["queryset"] = users if request.user.is_superuser else mine
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Label", ordering="label")
    def account_label(self, obj: ExchangeAccount) -> str:
        return _isolated_html(obj.label)

    @admin.display(description="Owner")
    def owner(self, obj: ExchangeAccount) -> str:
        return _isolated_html(obj.owner_display)

    @admin.display(description="Exchange", ordering="endpoint")
    def exchange(self, obj: ExchangeAccount) -> str:
        if obj.endpoint == ExchangeAccount.Endpoint.CUSTOM:
            return f"{obj.get_endpoint_display()}: {obj.custom_url}"
        return obj.get_endpoint_display()

    @admin.display(description="Status")
    def state(self, obj: ExchangeAccount) -> str:
        state = display.account_key_status(obj)
        if state.code in ("error", "secret_unreadable") and state.detail:
            return f"{state.label}: {state.detail}"
        return state.label

    @admin.display(description="Live")
    def live_page(self, obj: ExchangeAccount) -> str:
        return format_html('<a href="{}">Live orders</a>', reverse("account_detail", args=[obj.pk]))

    @admin.display(description="Stored secret")
    def stored_secret(self, obj: ExchangeAccount) -> str:
        return obj.masked_secret

    def view_on_site(self, obj: ExchangeAccount) -> str:
        return reverse("account_detail", args=[obj.pk])

    # Permissions follow orders.accounts.access: see what you may see, change what you manage.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: ExchangeAccount | None = None) -> bool:
        if not _is_staff(request):
            return False
        return obj is None or access.accounts_visible_to(request.user).filter(pk=obj.pk).exists()

    def has_change_permission(self, request: HttpRequest, obj: ExchangeAccount | None = None) -> bool:
        if not _is_staff(request):
            return False
        managed = access.accounts_managed_by(request.user)
        return managed.exists() if obj is None else managed.filter(pk=obj.pk).exists()

    def has_delete_permission(self, request: HttpRequest, obj: ExchangeAccount | None = None) -> bool:
        return self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Any staff user may add a personal account; team accounts only for teams they administer.
        return _is_staff(request)

    def save_model(self, request: HttpRequest, obj: ExchangeAccount, form: ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = exchange_accounts.account_create(
                actor=signed_in(request),
                label=data["label"],
                public_key=data["public_key"],
                secret=data["secret"],
                owner_user=data.get("owner_user"),
                owner_team=data.get("owner_team"),
                endpoint=data["endpoint"],
                custom_url=data["custom_url"],
                subaccount_id=data["subaccount_id"],
                enabled=data["enabled"],
            )
            _adopt(obj, created)
            return
        # The form already copied the new values into ``obj``; the service compares with the stored row.
        stored = ExchangeAccount.objects.select_related("owner_user", "owner_team").get(pk=obj.pk)
        # Every field but the owner may change (the owner is fixed once the account exists).
        changes = {
            name: data[name] for name in rules.ACCOUNT_FIELDS if name in data and data[name] != getattr(stored, name)
        }
        # A changed destination needs the secret typed again (S21): the form refuses it without one, and
        # the service re-encrypts the secret for the new destination.
        if changes or data.get("secret"):
            stored = exchange_accounts.account_update(
                actor=signed_in(request), account=stored, secret=data.get("secret") or None, **changes
            )
        _adopt(obj, stored)

    def delete_model(self, request: HttpRequest, obj: ExchangeAccount) -> None:
        exchange_accounts.account_delete(actor=signed_in(request), account=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset.filter(pk__in=access.accounts_managed_by(request.user).values("pk")):
            exchange_accounts.account_delete(actor=signed_in(request), account=account)

    @admin.action(description="Verify credentials with QFEX", permissions=["change"])
    def verify_credentials(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        """Authenticate each selected account once against its endpoint and report each outcome."""
        managed = queryset.filter(pk__in=access.accounts_managed_by(request.user).values("pk"))
        skipped = queryset.count() - managed.count()
        for account in managed:
            result = verify.account_verify(actor=signed_in(request), account=account)
            if result.ok:
                self.message_user(request, f"“{account.label}”: {result.message}", messages.SUCCESS)
            else:
                self.message_user(request, f"“{account.label}” was not verified: {result.message}", messages.ERROR)
        if skipped:
            self.message_user(request, f"Skipped {skipped} account(s) you can view but not manage.", messages.WARNING)


# --- audit trail -------------------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is written by ``orders.accounts.audit`` and never edited."""

    list_display = ["created_at", "actor", "action", "on", "team", "account"]
    list_filter = ["action", ("team", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["target", "actor_name"]
    date_hierarchy = "created_at"
    fields = ["created_at", "actor_name", "action", "target", "team", "account", "detail"]
    readonly_fields = fields  # type: ignore[assignment]  # plain field names only

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        return access.audit_events_visible_to(request.user)

    @admin.display(description="Who", ordering="actor_name")
    def actor(self, obj: AuditEvent) -> str:
        return _isolated_html(obj.actor_name or "system")

    @admin.display(description="On", ordering="target")
    def on(self, obj: AuditEvent) -> str:
        return _isolated_html(obj.target)

    def _may_read(self, request: HttpRequest) -> bool:
        return _is_staff(request) and access.may_read_audit(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may_read(request)

    def has_view_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        if not self._may_read(request):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


# S26: no admin list may be filtered or searched by a secret-bearing field, and bad filters are a 400.
protect_site(admin.site)
# S35: deleting a person's second-factor device signs them out everywhere.
end_sessions_on_device_delete(admin.site)
