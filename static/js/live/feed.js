/*
 * Applying the server's messages to the page's model: the three tables, the closed-orders store and each
 * account's state. Sequencing and snapshot parts are checked here (protocol.js); nothing here writes the DOM
 * outside the tables: the page re-renders its status after each message through `onApplied`.
 */

import { SeqTracker, SnapshotAssembler } from "./protocol.js";
import { ClosedStore } from "./closed.js";

export class FeedModel {
  /**
   * views: {orders, twaps, closed} LiveTables; states: AccountStates; hooks: {resync(account),
   * onApplied(account, msg), onHealthy()}.
   */
  constructor(views, states, hooks) {
    this.views = views;
    this.states = states;
    this.hooks = hooks;
    this.tracker = new SeqTracker();
    this.assembler = new SnapshotAssembler();
    this.closed = new ClosedStore();
    this.seqs = {}; // account -> last rendered seq (test hook)
    this.hadData = false;
    this.serverNote = ""; // words from an `error` frame, shown for a while
    this.serverNoteAt = 0;
  }

  /** A new connection starts from the snapshots the server sends on join; until they come, the data is old. */
  reconnected() {
    this.tracker.reset();
    this.assembler.reset();
    for (const info of this.states.values()) {
      info.state = "stale";
      info.reason = "Reconnected; waiting for fresh data.";
      info.nextRetryAt = null;
      info.loading = null;
    }
  }

  handle(msg) {
    if (!msg || typeof msg.type !== "string") {
      return;
    }
    if (msg.type === "snapshot") {
      // A large snapshot comes in parts: rows are replaced only once all parts of one seq are in.
      const assembled = this.assembler.add(msg);
      if (assembled.resync && this.tracker.needSnapshot(msg.account, Date.now())) {
        this.hooks.resync(msg.account);
      }
      if (!assembled.snapshot) {
        this._loading(msg.account);
        this.hooks.onApplied(msg.account, msg);
        return;
      }
      msg = assembled.snapshot;
    }
    const verdict = this.tracker.check(msg, Date.now());
    if (verdict.resync) {
      this.hooks.resync(msg.account);
    }
    if (!verdict.apply) {
      return;
    }
    switch (msg.type) {
      case "snapshot":
        this._snapshot(msg);
        break;
      case "diff":
        this._diff(msg);
        break;
      case "status":
        if (msg.account === null || msg.account === undefined) {
          this._note(msg.state === "error" ? msg.reason || "" : "");
        } else {
          this.states.takeStatus(this.states.get(msg.account), msg);
        }
        break;
      case "error":
        // Our own frame was refused (rate limit, bad message): tell the person, keep the data.
        this._note(msg.message || "The server refused a request.");
        break;
      default:
        return;
    }
    this.hooks.onApplied(msg.account, msg);
  }

  _note(text) {
    this.serverNote = text;
    this.serverNoteAt = Date.now();
  }

  _loading(account) {
    const progress = this.assembler.progress(account);
    const info = this.states.get(account);
    info.loading = progress && {
      done: progress.orders,
      total: progress.totals && Number.isInteger(progress.totals.orders) ? progress.totals.orders : null,
      part: progress.part,
      parts: progress.parts,
    };
  }

  _snapshot(msg) {
    const account = msg.account;
    const info = this.states.get(account);
    const orders = Array.isArray(msg.orders) ? msg.orders : [];
    const twaps = Array.isArray(msg.twaps) ? msg.twaps : [];
    this.states.rememberLabel(info, orders.length ? orders : twaps);
    info.loading = null;
    // A snapshot taken before the first fetch carries no data (as_of null): rows arriving after it are the
    // first load and should not all flash as "new".
    const hasData = typeof msg.as_of === "number";
    // The state first: the rows are drawn with it (a stale account's rows are dimmed).
    if (hasData) {
      info.dataAsOf = msg.as_of;
      info.loaded = true;
    }
    this.states.takeStatus(info, msg.status);
    this.views.orders.applySnapshot(account, orders, hasData);
    this.views.twaps.applySnapshot(account, twaps, hasData);
    const closed = this.closed.replace(account, msg.closed);
    this.views.closed.applySnapshot(account, closed.rows, hasData);
    this.hadData = true;
    this.serverNote = "";
    this.hooks.onHealthy();
    this._rendered(account, msg.seq);
  }

  _diff(msg) {
    const account = msg.account;
    const info = this.states.get(account);
    const upsert = msg.upsert || {};
    const remove = msg.remove || {};
    this.states.rememberLabel(info, upsert.orders || upsert.twaps);
    // The first fetch after an empty snapshot arrives as diffs (several, for a big book, all with the same
    // as_of): that is the first load, not a change, so its rows do not flash.
    if (info.dataAsOf === null && typeof msg.as_of === "number") {
      info.firstLoadAsOf = msg.as_of;
    }
    const flash = info.firstLoadAsOf === undefined || msg.as_of !== info.firstLoadAsOf;
    const closedRows = Array.isArray(msg.closed) ? msg.closed : [];
    const closed = this.closed.add(account, closedRows, remove.closed);
    if (closed.added.length || closed.dropped.length) {
      this.views.closed.applyDiff(account, closed.added, closed.dropped, flash);
    }
    const how = new Map(closedRows.filter((c) => c && typeof c.id === "string").map((c) => [c.id, c]));
    if (typeof msg.as_of === "number") {
      info.dataAsOf = msg.as_of;
      info.loaded = true;
    }
    this.views.orders.applyDiff(account, upsert.orders || [], remove.orders || [], flash, how);
    this.views.twaps.applyDiff(account, upsert.twaps || [], remove.twaps || [], flash, null);
    this._rendered(account, msg.seq);
  }

  _rendered(account, seq) {
    if (typeof seq === "number") {
      this.seqs[account] = seq;
    }
  }
}
