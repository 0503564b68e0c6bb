/*
 * Orders that left the book recently, per account, newest first, one row per order id (the merge rule,
 * docs/qfex-protocol.md §4.4): the snapshot's `closed` rows replace an account's list; a diff's `closed`
 * rows add or replace the row of their id (it moves to the top); a diff's `remove.closed` ids withdraw theirs
 * (a complete read listed the order again). At most CLOSED_PER_ACCOUNT are kept per account (the server
 * keeps as many). Pure; unit tests in tests/js/closed.test.js.
 */

export const CLOSED_PER_ACCOUNT = 500;

function validRows(rows) {
  return Array.isArray(rows) ? rows.filter((r) => r && typeof r === "object" && typeof r.id === "string") : [];
}

export class ClosedStore {
  constructor(limit) {
    this.limit = limit || CLOSED_PER_ACCOUNT;
    this.byAccount = new Map(); // account -> rows, newest first
  }

  /** The account's whole list (a snapshot): {rows: kept, dropped: ids no longer kept}. */
  replace(account, rows) {
    const before = this.byAccount.get(account) || [];
    const seen = new Set();
    const kept = [];
    for (const row of validRows(rows)) {
      if (!seen.has(row.id) && kept.length < this.limit) {
        seen.add(row.id);
        kept.push(row);
      }
    }
    this.byAccount.set(account, kept);
    return { rows: kept, dropped: before.filter((r) => !seen.has(r.id)).map((r) => r.id) };
  }

  /**
   * A diff: `rows` closed since (listed in the order they closed) add or replace their id's row; `withdrawn`
   * ids lose theirs. Returns {added: rows new or replaced, dropped: ids no longer kept (withdrawn, or pushed
   * out beyond the limit)}.
   */
  add(account, rows, withdrawn) {
    const list = this.byAccount.get(account) || [];
    const latest = new Map(); // id -> its newest row in this diff
    for (const row of validRows(rows)) {
      latest.delete(row.id);
      latest.set(row.id, row);
    }
    const gone = new Set(Array.isArray(withdrawn) ? withdrawn.filter((id) => typeof id === "string") : []);
    for (const id of gone) {
      latest.delete(id);
    }
    if (!latest.size && !list.some((r) => gone.has(r.id))) {
      return { added: [], dropped: [] };
    }
    const added = Array.from(latest.values()).reverse(); // newest first
    const kept = list.filter((r) => !latest.has(r.id) && !gone.has(r.id));
    const next = added.concat(kept);
    const dropped = list.filter((r) => gone.has(r.id)).map((r) => r.id);
    for (const r of next.slice(this.limit)) {
      dropped.push(r.id);
    }
    this.byAccount.set(account, next.slice(0, this.limit));
    return { added: added.slice(0, this.limit), dropped: dropped };
  }

  count() {
    let n = 0;
    for (const list of this.byAccount.values()) {
      n += list.length;
    }
    return n;
  }
}
