"""Each person's display preferences: one time rule, a theme, and the columns of the live tables.

The time rule, everywhere (live pages, audit trail, admin, CSV): times in the person's chosen zone (UTC
unless they chose their browser's), labelled, ISO-like and 24-hour — ``2026-12-06 21:49:03 UTC``. The
zone is an IANA name stored in :class:`~orders.models.UserPreference`; :class:`orders.middleware.PreferenceMiddleware`
activates it for every request, so Django's own formatting (templates, the admin through
``qfexdash/formats``) uses it too, and the live pages get it with the zone's abbreviations
(:func:`zone_labels`) so the browser labels times exactly as the server does.
"""

from __future__ import annotations

import datetime
import zoneinfo
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone

from orders.accounts.people import User, Visitor
from orders.models import UserPreference

UTC = "UTC"
TABLES = ("orders", "twaps", "closed")
_MAX_COLUMN_IDS = 40
_MAX_ID_LENGTH = 40


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def clean_zone(name: Any) -> str:
    """An IANA zone name the server knows, or ``ValidationError``."""
    if not isinstance(name, str) or name not in _zone_names() | {UTC}:
        raise ValidationError("That is not a time zone this server knows; choose UTC or your browser's zone.")
    return name


def clean_theme(value: Any) -> str:
    if value not in UserPreference.Theme.values:
        raise ValidationError("Choose a theme: as the system, light or dark.")
    return str(value)


def clean_columns(value: Any) -> dict[str, dict[str, list[str]]]:
    """``{"orders": {"hidden": [...], "shown": [...]}, ...}`` with short ids only; anything else is refused."""
    if not isinstance(value, dict) or not set(value) <= set(TABLES):
        raise ValidationError("Columns must be given per table (orders, twaps, closed).")
    cleaned: dict[str, dict[str, list[str]]] = {}
    for table, choice in value.items():
        if not isinstance(choice, dict) or not set(choice) <= {"hidden", "shown"}:
            raise ValidationError("Each table's columns are a list of hidden and a list of shown column ids.")
        cleaned[table] = {}
        for key in ("hidden", "shown"):
            ids = choice.get(key, [])
            if (
                not isinstance(ids, list)
                or len(ids) > _MAX_COLUMN_IDS
                or not all(isinstance(i, str) and 0 < len(i) <= _MAX_ID_LENGTH and i.isidentifier() for i in ids)
            ):
                raise ValidationError("A column id list is too long or holds something that is not a column id.")
            cleaned[table][key] = list(dict.fromkeys(ids))
    return cleaned


def preference_of(user: Visitor | None) -> UserPreference:
    """The person's preferences (defaults, unsaved, when they never chose anything or are signed out)."""
    if user is None or not user.is_authenticated:
        return UserPreference()
    try:
        return user.preference
    except UserPreference.DoesNotExist:
        return UserPreference(user=user)


def save_preference(user: User, **fields: Any) -> UserPreference:
    """Store the given, already cleaned fields (time_zone, theme, columns) of the person's preferences."""
    preference, _ = UserPreference.objects.get_or_create(user=user)
    for name, value in fields.items():
        setattr(preference, name, value)
    preference.save(update_fields=[*fields, "updated_at"])
    return preference


@lru_cache(maxsize=256)
def zone_labels(zone: str) -> dict[int, str]:
    """The zone's abbreviation for each UTC offset (minutes) it uses within a year either side of now.

    ``{60: "CET", 120: "CEST"}`` for Europe/Berlin; the browser labels a time with the entry of its offset,
    exactly as the server's ``tzname()`` would. Cached per zone (offsets change only with tz data).
    """
    if zone == UTC:
        return {}
    tz = zoneinfo.ZoneInfo(zone)
    now = datetime.datetime.now(datetime.UTC)
    labels: dict[int, str] = {}
    for day in range(-366, 367, 7):
        moment = (now + datetime.timedelta(days=day)).astimezone(tz)
        offset = moment.utcoffset()
        if offset is not None:
            labels.setdefault(int(offset.total_seconds() // 60), moment.tzname() or "")
    return {offset: label for offset, label in labels.items() if label}


def time_text(value: datetime.datetime) -> str:
    """``2026-12-06 21:49:03 UTC`` in the active zone (the person's, during a request)."""
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "")


def display(request: HttpRequest) -> dict[str, Any]:
    """Template context: the preferences, and what the header's display menu offers."""
    preference = getattr(request, "preference", None) or UserPreference()
    return {
        "preference": preference,
        "theme": preference.theme if preference.theme != UserPreference.Theme.SYSTEM else "",
        "theme_choices": UserPreference.Theme.choices,
        "time_zone": preference.time_zone,
    }
