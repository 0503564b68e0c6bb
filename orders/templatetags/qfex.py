"""Template filters: the site's one time rule (see :mod:`orders.accounts.preferences`), and names isolated from
the text around them (S39: a right-to-left override in a label ends where the label ends)."""

from __future__ import annotations

import datetime

from django import template
from django.utils.html import format_html

from orders.accounts.audit_text import isolated as _isolated
from orders.accounts.preferences import time_text

register = template.Library()


@register.filter
def when(value: datetime.datetime | None) -> str:
    """``<time datetime="…">2026-12-06 21:49:03 UTC</time>`` in the person's zone, or "" for no time."""
    if not isinstance(value, datetime.datetime):
        return ""
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), time_text(value))


@register.filter
def isolated(value: object) -> str:
    """Plain text between FSI and PDI when it could turn its surroundings around: for titles and attributes,
    where no ``<bdi>`` can go (elsewhere, write ``<bdi>{{ value }}</bdi>``)."""
    return _isolated(str(value))
