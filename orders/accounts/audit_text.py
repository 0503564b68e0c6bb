"""The audit trail in words: an event's ``detail`` as lines a person reads ("Custom URL: ws://a → ws://b").

``AuditEvent.detail`` holds what the services recorded (see :mod:`orders.accounts.audit`): for a change,
``{"changed": {field: [old, new]}}``; for an added account its settings; for memberships the user and
role(s). Field names and codes become words here; anything this module does not know is still shown,
as "Some key: value", never as a Python dict.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from orders.models import ExchangeAccount, Membership

FIELD_WORDS = {
    "label": "Name",
    "public_key": "Public key",
    "endpoint": "Exchange",
    "custom_url": "Custom URL",
    "subaccount_id": "Subaccount",
    "enabled": "Enabled",
    "user": "Member",
    "role": "Role",
    "reason": "Reason",
    "account_id": "Account number",
    "primary_key_id": "Encryption key in use",
    "rows_per_key_before": "Secrets per key before",
    "rows_per_key_after": "Secrets per key after",
    "re_encrypted": "Secrets re-encrypted",
}
# Bidirectional classes that can make text around a name read in another order: right-to-left letters and
# digits, and the explicit embeddings, overrides and isolates (S39).
_DIRECTIONAL = frozenset({"R", "AL", "AN", "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE = "\u2068", "\u2069"
_ENDPOINTS = dict(ExchangeAccount.Endpoint.choices)
_ROLES = dict(Membership.Role.choices)


@dataclass(frozen=True)
class DetailLine:
    """One line: ``label: value``, or ``label: old → new`` when ``changed``."""

    label: str
    value: str = ""
    old: str = ""
    new: str = ""
    changed: bool = False


def isolated(text: str) -> str:
    """``text`` between FSI and PDI (U+2068, U+2069) when it holds anything that could turn the text around
    it (right-to-left letters, bidi controls); as it is otherwise. For sentences stored or shown as plain text
    (the audit trail's "On", page titles); pages put names in ``<bdi>`` elements instead."""
    if any(unicodedata.bidirectional(ch) in _DIRECTIONAL for ch in text):
        return f"{FIRST_STRONG_ISOLATE}{text}{POP_DIRECTIONAL_ISOLATE}"
    return text


def field_label(name: str) -> str:
    return FIELD_WORDS.get(name) or str(name).replace("_", " ").capitalize()


def value_text(name: str, value: Any) -> str:
    """A recorded value in words: codes by their names, booleans as yes/no, nothing as "(none)"."""
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "endpoint":
        return str(_ENDPOINTS.get(value, value))
    if name in ("role", "from", "to"):
        return str(_ROLES.get(value, value))
    if isinstance(value, dict):
        return ", ".join(f"{key}: {value_text(key, item)}" for key, item in value.items()) or "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(name, item) for item in value) or "(none)"
    return str(value)


def describe(detail: Any) -> list[DetailLine]:
    """The lines of one event's detail, in the order recorded."""
    if not isinstance(detail, dict):
        return [DetailLine("Detail", value_text("detail", detail))] if detail else []
    lines: list[DetailLine] = []
    changed = detail.get("changed")
    if isinstance(changed, dict):
        for name, values in changed.items():
            if isinstance(values, list | tuple) and len(values) == 2:
                old, new = values
                lines.append(
                    DetailLine(field_label(name), old=value_text(name, old), new=value_text(name, new), changed=True)
                )
            else:
                lines.append(DetailLine(field_label(name), value_text(name, values)))
    if "from" in detail or "to" in detail:
        if "user" in detail:
            lines.append(DetailLine(field_label("user"), value_text("user", detail["user"])))
        lines.append(
            DetailLine(
                "Role",
                old=value_text("role", detail.get("from")),
                new=value_text("role", detail.get("to")),
                changed=True,
            )
        )
    for name, value in detail.items():
        if name in ("changed", "from", "to") or (name == "user" and ("from" in detail or "to" in detail)):
            continue
        lines.append(DetailLine(field_label(name), value_text(name, value)))
    return lines
