/*
 * One WebSocket that comes back after drops: capped exponential backoff with full jitter, and no retries on
 * the close codes that need a person (signed out, access refused, no such account).
 */

import { backoffDelayMs } from "./protocol.js";

// Close codes after which retrying cannot help: someone has to sign in again or be given access.
const FATAL_CLOSES = {
  4001: {
    reason: "You are signed out.",
    action: "Reload the page to sign in again.",
  },
  4003: {
    reason: "Access to this account was refused or has ended.",
    action: "Reload the page to check your access, or ask a team admin.",
  },
  4004: {
    reason: "This account does not exist or is not shared with you.",
    action: "Go back to your accounts.",
  },
  4029: {
    reason: "You have too many live pages open at once.",
    action: "Close some of your other live pages or tabs, then reload this one.",
  },
};

// Close codes after which a retry is right, in words.
const RETRY_REASONS = {
  4008: "The server closed the connection: this page sent too many messages.",
  4009: "The server refused a message as too large.",
  4013: "This page fell behind the updates (a busy or sleeping browser); reconnecting.",
};

/** What a close code means for the page: {fatal, reason, action}. */
export function closeMeaning(code) {
  if (FATAL_CLOSES[code]) {
    return { fatal: true, reason: FATAL_CLOSES[code].reason, action: FATAL_CLOSES[code].action };
  }
  return { fatal: false, reason: RETRY_REASONS[code] || "Connection to the server lost.", action: "" };
}

/**
 * handlers: onMessage(msg) for each parsed JSON frame; onChange() whenever `state`, `nextRetryAt`,
 * `reason`, `action` or `fatal` change; onOpen() after each (re)connection.
 * state: "connecting" | "open" | "closed".
 */
export class LiveSocket {
  constructor(url, handlers, options) {
    options = options || {};
    this.url = url;
    this.handlers = handlers;
    this.baseDelayMs = options.baseDelayMs || 500;
    this.maxDelayMs = options.maxDelayMs || 30000;
    this.state = "closed";
    this.reason = "";
    this.action = "";
    this.fatal = false;
    this.nextRetryAt = null; // ms epoch of the next attempt while closed
    this.downSince = null; // ms epoch the connection was lost (null while open)
    this.connections = 0;
    this._attempt = 0;
    this._ws = null;
    this._timer = null;
    this._stopped = false;
    this._signInRetried = false; // one quiet reconnect after a 4001 (see _afterClose)
    this._onOnline = () => {
      // The network came back: try now rather than at the end of a long backoff.
      if (this.state === "closed" && !this.fatal && !this._stopped) {
        this._connectNow();
      }
    };
  }

  start() {
    this._stopped = false;
    window.addEventListener("online", this._onOnline);
    this._connectNow();
  }

  stop() {
    this._stopped = true;
    window.removeEventListener("online", this._onOnline);
    clearTimeout(this._timer);
    if (this._ws) {
      this._ws.close(1000);
    }
  }

  /** Send one JSON message; false when the socket is not open. */
  send(obj) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
      return false;
    }
    this._ws.send(JSON.stringify(obj));
    return true;
  }

  /** A message proved the connection healthy: the next drop starts the backoff from the beginning. */
  markHealthy() {
    this._attempt = 0;
    this._signInRetried = false;
  }

  _connectNow() {
    clearTimeout(this._timer);
    this.nextRetryAt = null;
    this._setState("connecting", this.connections ? "Reconnecting…" : "Connecting…");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      // A malformed URL: nothing later will fix it.
      this.fatal = true;
      this.action = "Reload the page; if it stays, tell your administrator.";
      this._setState("closed", "The page's live address is invalid.");
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (ws !== this._ws) {
        return;
      }
      this.connections += 1;
      this.downSince = null;
      this._setState("open", "");
      if (this.handlers.onOpen) {
        this.handlers.onOpen();
      }
    };
    ws.onmessage = (event) => {
      if (ws !== this._ws || typeof event.data !== "string") {
        return;
      }
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        console.warn("live socket: a frame that is not JSON was ignored");
        return;
      }
      if (msg && typeof msg === "object") {
        this.handlers.onMessage(msg);
      }
    };
    ws.onclose = (event) => {
      if (ws !== this._ws) {
        return;
      }
      this._ws = null;
      this._afterClose(event.code);
    };
    // onerror is always followed by onclose, which does the work.
  }

  _afterClose(code) {
    if (this.downSince === null) {
      this.downSince = Date.now();
    }
    if (this._stopped) {
      this._setState("closed", "Disconnected.");
      return;
    }
    if (code === 4001 && !this._signInRetried) {
      // The session may have been re-signed since this socket opened (another tab after a server key
      // rotation): ask once more, at once. A second 4001 without any data in between is final.
      this._signInRetried = true;
      this._timer = setTimeout(() => this._connectNow(), 0);
      this._setState("closed", "Checking your sign-in…");
      return;
    }
    const meaning = closeMeaning(code);
    if (meaning.fatal) {
      this.fatal = true;
      this.action = meaning.action;
      this._setState("closed", meaning.reason);
      return;
    }
    const delay = backoffDelayMs(this._attempt, this.baseDelayMs, this.maxDelayMs);
    this._attempt += 1;
    this.nextRetryAt = Date.now() + delay;
    this._timer = setTimeout(() => this._connectNow(), delay);
    this._setState("closed", meaning.reason);
  }

  _setState(state, reason) {
    this.state = state;
    this.reason = reason;
    if (this.handlers.onChange) {
      this.handlers.onChange();
    }
  }
}
