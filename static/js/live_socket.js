/*
 * Live socket for the order and TWAP pages.
 *
 * - LiveSocket opens the page's stream (`/ws/accounts/<id>/` or `/ws/accounts/all/`), reconnects after a
 *   drop with capped exponential backoff and full jitter, and stops retrying on the close codes that need a
 *   person (signed out, access refused, no such account).
 * - SeqTracker keeps each account's messages in `seq` order: a diff is applied only when it is exactly
 *   the next one; a gap, or a diff before any snapshot, asks the server for a snapshot (`resync`).
 * - SnapshotAssembler joins the parts of a large snapshot (`part` i of `parts` n, same `seq`) into one
 *   snapshot; a part that does not fit the set being collected discards it and asks for a `resync`.
 *
 * The message shapes are documented once, server side, in orders/live_protocol.py.
 * No build step: a classic script that adds to `window.QfexLive`.
 */
(function () {
  "use strict";

  const NS = (window.QfexLive = window.QfexLive || {});

  // Close codes after which retrying cannot help: someone has to sign in again or be given access.
  const FATAL_CLOSE_REASONS = {
    4001: "You are signed out. Reload the page to sign in again.",
    4003: "Access to this account was refused or has ended. Reload the page to check your access.",
    4004: "This account does not exist or is not shared with you.",
  };

  // A resync asked for but not answered within this time may be asked for again (the server rate-limits
  // browser frames, so never more often).
  const RESYNC_REPEAT_MS = 5000;

  /** The socket URL: `path` as is when it is already a ws(s):// URL, else on this page's host. */
  function socketUrl(path, loc) {
    loc = loc || window.location;
    if (/^wss?:\/\//i.test(path)) {
      return path;
    }
    return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + path;
  }

  /**
   * Full-jitter backoff: a uniformly random delay between 0 and min(cap, base * 2^attempt).
   * Spreads the reconnects of many pages after a server restart instead of bunching them.
   */
  function backoffDelayMs(attempt, baseMs, capMs, random) {
    const ceiling = Math.min(capMs, baseMs * Math.pow(2, Math.min(attempt, 30)));
    return Math.floor((random || Math.random)() * ceiling);
  }

  /** Per-account sequencing of server messages. `check` says what to do with one message. */
  class SeqTracker {
    constructor() {
      this.seqs = new Map(); // account -> last applied seq
      this.resyncAskedAt = new Map(); // account -> ms time a resync was sent; present = waiting for a snapshot
    }

    /** Forget everything (a new connection starts from its own snapshot). */
    reset() {
      this.seqs.clear();
      this.resyncAskedAt.clear();
    }

    lastSeq(account) {
      return this.seqs.get(account);
    }

    /**
     * Returns {apply: bool, resync: bool}. `resync` means: send a resync for this account now.
     * Snapshots are always applied (they are the whole truth); a status is always applied (it carries no
     * rows) but a status announcing a seq we have not seen is a doubt worth a resync.
     */
    check(msg, nowMs) {
      const account = msg.account;
      const seq = msg.seq;
      const last = this.seqs.get(account);
      if (msg.type === "snapshot") {
        if (typeof seq === "number") {
          this.seqs.set(account, seq);
        }
        this.resyncAskedAt.delete(account);
        return { apply: true, resync: false };
      }
      if (msg.type === "diff") {
        if (last === undefined || this.resyncAskedAt.has(account)) {
          return { apply: false, resync: this._askResync(account, nowMs) };
        }
        if (typeof seq !== "number" || seq <= last) {
          return { apply: false, resync: false }; // a duplicate or an old frame: already applied
        }
        if (seq !== last + 1) {
          return { apply: false, resync: this._askResync(account, nowMs) };
        }
        this.seqs.set(account, seq);
        return { apply: true, resync: false };
      }
      if (msg.type === "status") {
        const missed = last !== undefined && typeof seq === "number" && seq > last;
        return { apply: true, resync: missed ? this._askResync(account, nowMs) : false };
      }
      return { apply: true, resync: false };
    }

    /** We need a snapshot of `account` (e.g. a snapshot part went missing): true when a resync should be sent. */
    needSnapshot(account, nowMs) {
      return this._askResync(account, nowMs);
    }

    _askResync(account, nowMs) {
      const askedAt = this.resyncAskedAt.get(account);
      if (askedAt !== undefined && nowMs - askedAt < RESYNC_REPEAT_MS) {
        return false;
      }
      this.resyncAskedAt.set(account, nowMs);
      return true;
    }
  }

  /**
   * Collects the parts of each account's snapshot. `add(msg)` returns {snapshot, resync}: `snapshot` is the
   * whole snapshot (all parts' rows, in order) once its last part is in, else null; `resync` means the
   * pending parts were thrown away and a snapshot must be asked for. Part 1 always starts a new set; any
   * other part must be the next one of the pending set, with the same seq and count.
   * A snapshot without part fields is a whole one.
   */
  class SnapshotAssembler {
    constructor() {
      this.pending = new Map(); // account -> {seq, parts, next, first, orders, twaps}
    }

    reset() {
      this.pending.clear();
    }

    add(msg) {
      const account = msg.account;
      const part = msg.part === undefined ? 1 : msg.part;
      const parts = msg.parts === undefined ? 1 : msg.parts;
      const valid = Number.isInteger(part) && Number.isInteger(parts) && part >= 1 && part <= parts;
      if (valid && part === 1) {
        this.pending.delete(account); // a new snapshot supersedes an unfinished one
        if (parts === 1) {
          return { snapshot: msg, resync: false };
        }
        this.pending.set(account, { seq: msg.seq, parts: parts, next: 2, first: msg, orders: [], twaps: [] });
        this._take(this.pending.get(account), msg);
        return { snapshot: null, resync: false };
      }
      const set = this.pending.get(account);
      if (!valid || !set || set.seq !== msg.seq || set.parts !== parts || set.next !== part) {
        this.pending.delete(account);
        return { snapshot: null, resync: true };
      }
      this._take(set, msg);
      set.next += 1;
      if (part < parts) {
        return { snapshot: null, resync: false };
      }
      this.pending.delete(account);
      return {
        snapshot: Object.assign({}, set.first, { part: 1, parts: 1, orders: set.orders, twaps: set.twaps }),
        resync: false,
      };
    }

    _take(set, msg) {
      // A loop, not push(...rows): spreading a very long array can overflow the call stack.
      for (const [key, rows] of [["orders", set.orders], ["twaps", set.twaps]]) {
        if (Array.isArray(msg[key])) {
          for (const row of msg[key]) {
            rows.push(row);
          }
        }
      }
    }
  }

  /**
   * One WebSocket that comes back after drops.
   *
   * handlers: onMessage(msg) for each parsed JSON frame; onChange() whenever `state`, `nextRetryAt`,
   * `reason` or `fatal` change; onOpen() after each (re)connection.
   * state: "connecting" | "open" | "closed".
   */
  class LiveSocket {
    constructor(url, handlers, options) {
      options = options || {};
      this.url = url;
      this.handlers = handlers;
      this.baseDelayMs = options.baseDelayMs || 500;
      this.maxDelayMs = options.maxDelayMs || 30000;
      this.state = "closed";
      this.reason = "";
      this.fatal = false;
      this.nextRetryAt = null; // ms epoch of the next attempt while closed
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
        this._setState("closed", "The page's live address is invalid.");
        return;
      }
      this._ws = ws;
      ws.onopen = () => {
        if (ws !== this._ws) {
          return;
        }
        this.connections += 1;
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
      if (FATAL_CLOSE_REASONS[code]) {
        this.fatal = true;
        this._setState("closed", FATAL_CLOSE_REASONS[code]);
        return;
      }
      const delay = backoffDelayMs(this._attempt, this.baseDelayMs, this.maxDelayMs);
      this._attempt += 1;
      this.nextRetryAt = Date.now() + delay;
      this._timer = setTimeout(() => this._connectNow(), delay);
      this._setState("closed", code === 4009 ? "The server refused a message as too large." : "Connection to the server lost.");
    }

    _setState(state, reason) {
      this.state = state;
      this.reason = reason;
      if (this.handlers.onChange) {
        this.handlers.onChange();
      }
    }
  }

  NS.socketUrl = socketUrl;
  NS.backoffDelayMs = backoffDelayMs;
  NS.SeqTracker = SeqTracker;
  NS.SnapshotAssembler = SnapshotAssembler;
  NS.LiveSocket = LiveSocket;
})();
