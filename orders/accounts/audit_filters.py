"""Filters of the audit trail page: by account, actor, action and date (dates in the person's time zone).

A filter the form cannot read is ignored and the page says which (S37). A date at the edge of the calendar
is clamped: "until 9999-12-31" has no day after it and "since 0001-01-01" in a zone east of UTC starts before
the year 1 in UTC, and every event lies within both, so such a bound is simply dropped.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from orders.accounts.audit_text import isolated
from orders.models import AuditEvent


def _midnight(day: datetime.date, zone: datetime.tzinfo, *, days_later: int = 0) -> datetime.datetime | None:
    """The midnight ``days_later`` days after ``day`` began in ``zone``; None when that lies beyond the calendar
    Python and the database know, in the zone or in UTC (the bound is then no bound: every event is inside)."""
    try:
        moment = datetime.datetime.combine(day + datetime.timedelta(days=days_later), datetime.time.min, tzinfo=zone)
        moment.astimezone(datetime.UTC)  # the database compares in UTC
    except OverflowError:
        return None
    return moment


class AuditFilterForm(forms.Form):
    """A GET form; every field is optional and an invalid one is ignored (the page says which)."""

    account = forms.TypedChoiceField(label="Account", required=False, coerce=int, empty_value=None)
    actor = forms.ChoiceField(label="Who", required=False)
    action = forms.ChoiceField(label="What", required=False)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data: Any, events: QuerySet[AuditEvent]) -> None:
        super().__init__(data)
        accounts = (
            events.exclude(account__isnull=True)
            .order_by("account__label", "account_id")
            .values_list("account_id", "account__label")
            .distinct()
        )
        choice_fields = cast(dict[str, forms.ChoiceField], self.fields)  # the three fields set here
        choice_fields["account"].choices = [
            ("", "Any account"),
            *((str(pk), isolated(label)) for pk, label in accounts),
        ]
        actors = events.order_by("actor_name").values_list("actor_name", flat=True).distinct()
        choice_fields["actor"].choices = [
            ("", "Anyone"),
            *((name or "-", isolated(name or "system")) for name in actors),
        ]
        choice_fields["action"].choices = [("", "Any change"), *AuditEvent.Action.choices]

    def filter(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if not self.is_valid():
            return events
        data = self.cleaned_data
        if data.get("account"):
            events = events.filter(account_id=data["account"])
        if data.get("actor"):
            events = events.filter(actor_name="" if data["actor"] == "-" else data["actor"])
        if data.get("action"):
            events = events.filter(action=data["action"])
        zone = timezone.get_current_timezone()
        if data.get("since") and (start := _midnight(data["since"], zone)) is not None:
            events = events.filter(created_at__gte=start)
        if data.get("until") and (end := _midnight(data["until"], zone, days_later=1)) is not None:
            events = events.filter(created_at__lt=end)
        return events

    def active(self) -> bool:
        return self.is_valid() and any(self.cleaned_data.get(name) for name in self.fields)
