/*
 * Keeping a page's copy of each account in step with the server (the message shapes are documented once,
 * server side, in orders/live/protocol.py):
 *
 * - SeqTracker keeps each account's messages in `seq` order: a diff is applied only when it is exactly the
 *   next one; a gap, or a diff before any snapshot, asks the server for a snapshot (`resync`).
 * - SnapshotAssembler joins the parts of a large snapshot (`part` i of `parts` n, same `seq`) into one; a
 *   part that does not fit the set being collected discards it and asks for a `resync`. While a set is
 *   being collected, `progress(account)` says how far it is ("Loading 1,500 of 4,000 orders").
 *
 * A diff's rows: `upsert`/`remove` of orders and TWAPs by id; `closed` rows add or replace the one Closed row
 * of their order id, and `remove.closed` ids withdraw it (a complete read listed the order again: it is
 * open). An ORDER_ROW with `unconfirmed: true` is an order a push says is live after a read proved it gone;
 * the next read settles it. FeedModel (feed.js) and ClosedStore (closed.js) apply them.
 *
 * No DOM here: unit tests in tests/js/protocol.test.js (Closed rows: tests/js/closed.test.js).
 */

// A resync asked for but not answered within this time may be asked for again (the server rate-limits
// browser frames, so never more often).
export const RESYNC_REPEAT_MS = 5000;

/** The socket URL: `path` as is when it is already a ws(s):// URL, else on this page's host. */
export function socketUrl(path, loc) {
  if (/^wss?:\/\//i.test(path)) {
    return path;
  }
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + path;
}

/**
 * Full-jitter backoff: a uniformly random delay between 0 and min(cap, base * 2^attempt).
 * Spreads the reconnects of many pages after a server restart instead of bunching them.
 */
export function backoffDelayMs(attempt, baseMs, capMs, random) {
  const ceiling = Math.min(capMs, baseMs * Math.pow(2, Math.min(attempt, 30)));
  return Math.floor((random || Math.random)() * ceiling);
}

/** Per-account sequencing of server messages. `check` says what to do with one message. */
export class SeqTracker {
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

const ROW_LISTS = ["orders", "twaps", "closed"];

/**
 * Collects the parts of each account's snapshot. `add(msg)` returns {snapshot, resync}: `snapshot` is the
 * whole snapshot (all parts' rows, in order) once its last part is in, else null; `resync` means the
 * pending parts were thrown away and a snapshot must be asked for. Part 1 always starts a new set; any
 * other part must be the next one of the pending set, with the same seq and count.
 * A snapshot without part fields is a whole one.
 */
export class SnapshotAssembler {
  constructor() {
    this.pending = new Map(); // account -> {seq, parts, next, first, orders, twaps, closed}
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
      const set = { seq: msg.seq, parts: parts, next: 2, first: msg, orders: [], twaps: [], closed: [] };
      this.pending.set(account, set);
      this._take(set, msg);
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
    const whole = { part: 1, parts: 1, orders: set.orders, twaps: set.twaps, closed: set.closed };
    return { snapshot: Object.assign({}, set.first, whole), resync: false };
  }

  /**
   * How far the pending snapshot of `account` is, or null when none is being collected:
   * {part, parts, orders, twaps (rows so far), totals (the snapshot's `totals`, or null)}.
   */
  progress(account) {
    const set = this.pending.get(account);
    if (!set) {
      return null;
    }
    const totals = set.first.totals && typeof set.first.totals === "object" ? set.first.totals : null;
    return { part: set.next - 1, parts: set.parts, orders: set.orders.length, twaps: set.twaps.length, totals: totals };
  }

  _take(set, msg) {
    // A loop, not push(...rows): spreading a very long array can overflow the call stack.
    for (const key of ROW_LISTS) {
      if (Array.isArray(msg[key])) {
        const rows = set[key];
        for (const row of msg[key]) {
          rows.push(row);
        }
      }
    }
  }
}
