"""The `auth` message: log a session in to the book its key (and optional `account_id`) names.

The signature check itself is `auth.authenticate`; this answers the session in the shapes the faults ask
for. A refusal says why in one line and never quotes the secret or the signature.
"""

from __future__ import annotations

import logging
import time

import orjson

from . import frames
from .auth import AuthFailed, authenticate
from .connection import CLOSE_GOING_AWAY, CLOSE_POLICY, Session
from .state import ExchangeState

logger = logging.getLogger("orders.simulator")


def log_in(state: ExchangeState, session: Session, message: dict[str, object]) -> None:
    params = message.get("params")
    hmac_block = params.get("hmac") if isinstance(params, dict) else None
    claimed = hmac_block.get("public_key") if isinstance(hmac_block, dict) else None
    claimed = claimed if isinstance(claimed, str) else session.url_api_key
    state.traffic.note(claimed if session.account is None else session.account.public_key, "auth")
    faults = state.faults
    if session.authenticated:
        text = "this connection is already authenticated"
        session.enqueue(frames.error_reply(faults, "AlreadyAuthenticated", text, message))
        return
    try:
        with state.lock:
            outcome = authenticate(
                params,
                find_account=state.live_account,
                nonces=state.nonces,
                now=time.time(),
                url_api_key=session.url_api_key,
                reject_all=faults.reject_auth,
            )
    except AuthFailed as exc:
        logger.info("simulator: %s auth refused (key %s): %s", session.connection_id, claimed, exc)
        if faults.auth_failure_style == "err":
            session.enqueue(frames.error_reply(faults, "PermissionDenied", str(exc), message))
        elif faults.auth_failure_style == "authenticated_false":
            session.enqueue(orjson.dumps({"authenticated": False}))
        session.close_after_queue(CLOSE_POLICY, "authentication failed")
        return
    session.book_id = outcome.book_id
    session.account = outcome.account  # last: other threads read "authenticated" from it
    logger.debug("simulator: %s authenticated as %s", session.connection_id, outcome.account.public_key)
    session.enqueue(frames.auth_success_frame(faults.auth_success_shape))
    if faults.close_after_auth:
        session.close_after_queue(CLOSE_GOING_AWAY, "closed right after the login")
