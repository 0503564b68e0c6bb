"""Filters of the audit trail page: by account, actor, action and date (dates in the person's time zone)."""

from __future__ import annotations

import datetime
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from orders.models import AuditEvent


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
        choice_fields["account"].choices = [("", "Any account"), *((str(pk), label) for pk, label in accounts)]
        actors = events.order_by("actor_name").values_list("actor_name", flat=True).distinct()
        choice_fields["actor"].choices = [("", "Anyone"), *((name or "-", name or "system") for name in actors)]
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
        if data.get("since"):
            start = datetime.datetime.combine(data["since"], datetime.time.min, tzinfo=zone)
            events = events.filter(created_at__gte=start)
        if data.get("until"):
            end = datetime.datetime.combine(data["until"] + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
            events = events.filter(created_at__lt=end)
        return events

    def active(self) -> bool:
        return self.is_valid() and any(self.cleaned_data.get(name) for name in self.fields)
