"""The admin's user search, for picking a team member: team admins may search usernames, nothing more.

Django's autocomplete widget (``MembershipInline.autocomplete_fields``) asks the *user* admin for
matches and checks that the person may view users. A team admin has no permission rows (``orders.accounts.access``
decides), so the user admin here lets them through for exactly that search: only active users, only
usernames, at least two characters typed, a short list. Every other page of the user admin stays
superuser-only, as before.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.accounts import access
from orders.accounts.people import User
from orders.admin.people import remove_second_factor, sign_out_everywhere

MIN_SEARCH = 2
MAX_RESULTS = 20


def _member_search(request: HttpRequest) -> bool:
    """Whether this request is the admin's autocomplete for a membership's user field."""
    match = getattr(request, "resolver_match", None)
    return (
        match is not None
        and match.url_name == "autocomplete"
        and request.GET.get("app_label") == "orders"
        and request.GET.get("model_name") == "membership"
        and request.GET.get("field_name") == "user"
    )


class MemberSearchUserAdmin(UserAdmin):
    search_fields = ["username"]
    # Superusers only (every page of the user admin but the member search is): S35.
    actions = [sign_out_everywhere, remove_second_factor]

    def has_view_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if super().has_view_permission(request, obj):
            return True
        user = request.user
        return obj is None and _member_search(request) and user.is_staff and access.is_team_admin(user)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not _member_search(request) or request.user.is_superuser:
            return super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if len(term) < MIN_SEARCH:
            return queryset.none(), False
        matches = queryset.filter(is_active=True, username__icontains=term).order_by("username")
        return queryset.filter(pk__in=matches.values("pk")[:MAX_RESULTS]), False


user_model = get_user_model()
if admin.site.is_registered(user_model):
    admin.site.unregister(user_model)
admin.site.register(user_model, MemberSearchUserAdmin)
