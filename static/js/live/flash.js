/*
 * Changed cells flash: a cell rendered while its change is recent gets the `cell-flash` class, removed again
 * a moment later (the CSS fades it). Tabulator re-renders exactly the cells whose value changed, so this
 * needs no per-row work on the hot path.
 */

export const FLASH_MS = 1000;

export class CellFlash {
  constructor(element) {
    this.element = element;
    this.recent = new Map(); // row key -> Map(column id or "*" -> flash-until ms)
    this._timer = null;
  }

  /** The cell of column `id` (or every cell: "*") of row `key` flashes until `until` (ms). */
  mark(key, id, until) {
    let fields = this.recent.get(key);
    if (fields === undefined) {
      fields = new Map();
      this.recent.set(key, fields);
    }
    fields.set(id, until);
  }

  forget(key) {
    this.recent.delete(key);
  }

  /** Until when (ms) the cell flashes, or 0. */
  until(key, id) {
    if (this.recent.size === 0) {
      return 0;
    }
    const fields = this.recent.get(key);
    if (fields === undefined) {
      return 0;
    }
    const until = Math.max(fields.get(id) || 0, fields.get("*") || 0);
    if (until <= Date.now()) {
      return 0;
    }
    this._scheduleCleanup();
    return until;
  }

  /** Tabulator's formatter for a column: `render(row)` plus the flash class while the change is recent. */
  formatter(id, render) {
    return (cell) => {
      const data = cell.getData();
      const out = render(data);
      const until = this.until(data._key, id);
      if (until) {
        const el = cell.getElement();
        el.classList.add("cell-flash");
        el.dataset.flashUntil = String(until);
      }
      return out;
    };
  }

  _scheduleCleanup() {
    if (this._timer !== null) {
      return;
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      const now = Date.now();
      for (const [key, fields] of this.recent) {
        for (const [field, until] of fields) {
          if (until <= now) {
            fields.delete(field);
          }
        }
        if (!fields.size) {
          this.recent.delete(key);
        }
      }
      const lit = this.element.querySelectorAll(".cell-flash");
      let pending = false;
      for (let i = 0; i < lit.length; i++) {
        if (Number(lit[i].dataset.flashUntil) <= now) {
          lit[i].classList.remove("cell-flash");
        } else {
          pending = true;
        }
      }
      if (pending || this.recent.size) {
        this._scheduleCleanup();
      }
    }, 250);
  }
}
