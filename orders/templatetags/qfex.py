"""Template filters of the site's one time rule (see :mod:`orders.accounts.preferences`)."""

from __future__ import annotations

import datetime

from django import template
from django.utils.html import format_html

from orders.accounts.preferences import time_text

register = template.Library()


@register.filter
def when(value: datetime.datetime | None) -> str:
    """``<time datetime="…">2026-12-06 21:49:03 UTC</time>`` in the person's zone, or "" for no time."""
    if not isinstance(value, datetime.datetime):
        return ""
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), time_text(value))
