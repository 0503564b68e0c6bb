"""What every received message goes through: decode, record, refuse, charge the rate budget, route.

Binary frames, invalid JSON and messages without a string `type` are refused with `InvalidJSONFormat`;
`auth` logs in (`login.py`); everything else needs a logged-in session and is charged to its user's budget.
Read-only types go to their handler (`handlers.ROUTES`); trading types are refused with `PermissionDenied`
and any other type with `InvalidParameter`. Every message outside `ALLOWED_TYPES` is recorded (scrubbed)
as forbidden, whether or not the session had logged in.
"""

from __future__ import annotations

import json

from . import frames
from .connection import Session
from .handlers import ROUTES, ReadHandlers
from .login import log_in
from .state import ExchangeState
from .subscriptions import Subscriptions

ALLOWED_TYPES = frozenset({"auth", *ROUTES})
# Types QFEX would execute as trading actions: refused with PermissionDenied. Every other type outside
# ALLOWED_TYPES is "unknown" here and refused with InvalidParameter. Both kinds are recorded.
TRADING_TYPES = frozenset(
    {
        "add_order", "add_twap", "cancel_order", "cancel_all_orders", "cancel_on_disconnect", "modify_order",
        "close_position", "set_user_leverage", "cancel_stop_order", "modify_stop_order", "transfer_balance",
    }
)  # fmt: skip
RAW_RECORD_CHARS = 1000


class Dispatcher:
    """Handles one session's messages, one at a time, on the loop thread."""

    def __init__(self, state: ExchangeState, subscriptions: Subscriptions) -> None:
        self._state = state
        self._reads = ReadHandlers(state, subscriptions)

    def _error(self, code: str, text: str, request: object = None, **extra: object) -> bytes:
        return frames.error_reply(self._state.faults, code, text, request, **extra)

    async def on_message(self, session: Session, raw: str | bytes) -> None:
        decoded = self._decode(session, raw)
        if decoded is None:
            return
        msg_type, message = decoded
        if msg_type == "auth":
            log_in(self._state, session, message)
            return
        traffic = self._state.traffic
        traffic.note(session.public_key, msg_type)
        if msg_type not in ALLOWED_TYPES:
            traffic.note_forbidden(frames.scrub_object(message))
        if session.account is None:
            session.enqueue(self._error("PermissionDenied", "authenticate first", message))
            return
        retry_after = self._state.rate_limited(session.account.user_id, msg_type)
        if retry_after is not None:
            retry_after = self._state.faults.rate_limit_retry_after or retry_after
            text = f"Rate limit exceeded, retry after {retry_after} s"
            session.enqueue(self._error("RateLimited", text, message, retry_after=retry_after))
            return
        if await self._reads.handle(session, msg_type, message):
            return
        if msg_type in TRADING_TYPES:
            text = f"{msg_type} refused: this simulator never executes trading messages"
            session.enqueue(self._error("PermissionDenied", text, message))
        else:
            session.enqueue(self._error("InvalidParameter", f"unknown message type {msg_type!r}", message))

    def _decode(self, session: Session, raw: str | bytes) -> tuple[str, dict[str, object]] | None:
        """The message's type and the message, an object with a string `type`; None (refused and recorded)
        for anything else."""
        traffic = self._state.traffic
        if isinstance(raw, bytes):
            traffic.note(session.public_key, "<binary>")
            traffic.note_forbidden({"binary_frame_bytes": len(raw)})
            session.enqueue(self._error("InvalidJSONFormat", "binary frames are not accepted; send JSON text"))
            return None
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            traffic.note(session.public_key, "<invalid-json>")
            traffic.note_forbidden({"invalid_json": raw[:RAW_RECORD_CHARS]})
            session.enqueue(self._error("InvalidJSONFormat", "the message is not valid JSON"))
            return None
        msg_type = message.get("type") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(msg_type, str):
            traffic.note(session.public_key, "<no-type>")
            traffic.note_forbidden(frames.scrub_object(message) if isinstance(message, dict) else {"invalid": message})
            incoming = message if isinstance(message, dict) else None
            session.enqueue(
                self._error("InvalidJSONFormat", "a message must be an object with a string type", incoming)
            )
            return None
        return msg_type, message
