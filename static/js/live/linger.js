/*
 * Removed rows stay a moment, struck through and saying how they left, then go: a map of row key ->
 * {until, data} whose entries `onExpired(keys)` removes when their time is up.
 */

export class Linger {
  constructor(ms, onExpired) {
    this.ms = ms;
    this.onExpired = onExpired;
    this.entries = new Map();
    this._timer = null;
  }

  get size() {
    return this.entries.size;
  }

  add(key, data) {
    this.entries.set(key, { until: Date.now() + this.ms, data: data });
  }

  has(key) {
    return this.entries.has(key);
  }

  delete(key) {
    this.entries.delete(key);
  }

  values() {
    return this.entries.values();
  }

  /** Arrange for the next expiry (call after adding). */
  schedule() {
    if (this._timer !== null || this.entries.size === 0) {
      return;
    }
    let soonest = Infinity;
    for (const entry of this.entries.values()) {
      soonest = Math.min(soonest, entry.until);
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      this._expire();
    }, Math.max(0, soonest - Date.now()));
  }

  _expire() {
    const now = Date.now();
    const doomed = [];
    for (const [key, entry] of this.entries) {
      if (entry.until <= now) {
        doomed.push(key);
        this.entries.delete(key);
      }
    }
    if (doomed.length) {
      this.onExpired(doomed);
    }
    this.schedule();
  }
}
