"""Finding a stored account from a management command's arguments (shared by the commands)."""

from __future__ import annotations

from django.core.management.base import CommandError

from orders.models import ExchangeAccount


def find_account(label: str | None, pk: int | None) -> ExchangeAccount:
    """The account named by ``--id`` or by label (labels are unique per owner only); one-line errors."""
    accounts = ExchangeAccount.objects.select_related("owner_user", "owner_team")
    if pk is not None:
        account = accounts.filter(pk=pk).first()
        if account is None:
            raise CommandError(f"No account with id {pk}.")
        return account
    if not label:
        raise CommandError("Name the account: a label, or --id ID.")
    matches = list(accounts.filter(label=label).order_by("pk"))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        which = ", ".join(f"id {account.pk} ({account.owner_display})" for account in matches)
        raise CommandError(f"{len(matches)} accounts are labelled {label!r}: {which}. Choose one with --id ID.")
    if label.isdigit():
        account = accounts.filter(pk=int(label)).first()
        if account is not None:
            return account
    raise CommandError(f"No account labelled {label!r}. See: manage.py qfex_account list")
