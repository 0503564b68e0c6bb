/*
 * Orders that left the book recently, per account, newest first: the snapshot's `closed` rows replace an
 * account's list, a diff's are added on top; at most CLOSED_PER_ACCOUNT are kept per account (the server
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

  /** Rows closed since (a diff): {added: the new ones, dropped: ids pushed out beyond the limit}. */
  add(account, rows) {
    const list = this.byAccount.get(account) || [];
    const known = new Set(list.map((r) => r.id));
    const added = [];
    for (const row of validRows(rows)) {
      if (!known.has(row.id)) {
        known.add(row.id);
        added.push(row);
      }
    }
    if (!added.length) {
      return { added: [], dropped: [] };
    }
    const next = added.concat(list);
    const dropped = next.slice(this.limit).map((r) => r.id);
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
