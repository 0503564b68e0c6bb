/*
 * LiveTable: one of the page's tables (open orders, closed orders, TWAPs) on Tabulator's virtual DOM.
 *
 * It keeps its own map of the current rows (key = "<account>:<id>") so that a snapshot or a diff is compared
 * field by field and only changed cells are touched; Tabulator re-sorts and re-filters once per batch
 * (blockRedraw/restoreRedraw). Changed cells flash for FLASH_MS; removed rows stay LINGER_MS, struck through
 * and saying how they left (Filled, Cancelled), then go. Sorting, columns and accessibility repairs are in
 * table_setup.js.
 */

import { prepareRow } from "./columns.js";
import { RowFilter } from "./filter.js";
import { csvText } from "./csv.js";
import { CellFlash, FLASH_MS } from "./flash.js";
import { Linger } from "./linger.js";
import { buildTabulator, TableColumns } from "./table_setup.js";

const LINGER_MS = 3000;
const TOP_INSERT_MAX = 500;

export class LiveTable {
  /**
   * options: kind ("orders" | "twaps" | "closed"), specs (columns.js), ctx (cells.js), height/maxHeight/
   * minHeight (CSS), placeholder (text), sort ([{id, dir}]), visibility ({hidden, shown} ids), linger (bool),
   * rowClasses(row) -> {class: bool}, onChange() after rows or filter change, onUserChange() after the
   * person sorts or chooses columns (for the URL and their preferences).
   */
  constructor(element, options) {
    this.element = element;
    this.kind = options.kind;
    this.options = options;
    this.ctx = options.ctx;
    this.specs = options.specs;
    this.specById = new Map(this.specs.map((s) => [s.id, s]));
    this.specByField = new Map(this.specs.map((s) => [s.field, s]));
    this.numericIds = this.specs.filter((s) => s.numericCopy).map((s) => s.id);
    this.flashDeps = new Map(); // row property -> spec ids whose cell shows it
    for (const s of this.specs) {
      for (const dep of s.flashOn || [s.id]) {
        this.flashDeps.set(dep, (this.flashDeps.get(dep) || []).concat(s.id));
      }
    }
    this.linger = options.linger !== false;
    this.rows = new Map(); // key -> latest row as received (rows shown, not counting lingering ones)
    this.gone = new Linger(LINGER_MS, (keys) => {
      this._delete(keys);
      this._changed();
    }); // key -> {until, data}: removed rows still shown struck through
    this.flash = new CellFlash(element);
    this.comps = new Map(); // key -> Tabulator RowComponent (rebuilt lazily after a bulk load)
    this.indexStale = false;
    this.symbolCounts = new Map();
    this.loadedAccounts = new Set(); // accounts whose first snapshot is in: their new rows flash
    this.filter = new RowFilter(this.kind);
    this._filter = (data) => this.filter.matches(data);
    this.columns = new TableColumns(this, options);
    this.table = buildTabulator(this, element, options);
    this.table.on("rowAdded", (rc) => {
      if (!this.indexStale) {
        this.comps.set(rc.getData()._key, rc);
      }
    });
    this.ready = new Promise((resolve) => {
      this.table.on("tableBuilt", () => {
        this.columns.afterBuild();
        resolve(this);
      });
    });
  }

  // --- applying server data ------------------------------------------------------------------

  /**
   * Replace the rows of one account (per-account page: the only account) with `rows`. `hasData` is false for
   * a snapshot taken before the server's first fetch: the rows that follow it are the first load, so they do
   * not flash.
   */
  applySnapshot(account, rows, hasData = true) {
    const version = this.ctx.precision.version;
    for (let i = 0; i < rows.length; i++) {
      this._prepare(rows[i], account);
    }
    const first = this.rows.size === 0 && this.gone.size === 0;
    if (first) {
      this._load(rows);
    } else {
      const keep = new Set(rows.map((r) => r._key));
      const removeKeys = [];
      for (const [key, row] of this.rows) {
        if (row._acct === account && !keep.has(key)) {
          removeKeys.push(key);
        }
      }
      this._apply(rows, removeKeys, null, false);
    }
    if (hasData) {
      this.loadedAccounts.add(account);
    } else {
      this.loadedAccounts.delete(account);
    }
    // A table loaded just now was drawn with the precision its own rows taught: only the others need redrawing.
    this._afterPrecision(version, first ? this : null);
  }

  /** Apply one diff of one account: `upserts` rows, `removeIds` ids; `closed` maps a removed id to its closed row. */
  applyDiff(account, upserts, removeIds, flash = true, closed = null) {
    if (flash) {
      this.loadedAccounts.add(account);
    } else {
      this.loadedAccounts.delete(account);
    }
    const version = this.ctx.precision.version;
    for (let i = 0; i < upserts.length; i++) {
      this._prepare(upserts[i], account);
    }
    const removeKeys = removeIds.map((id) => account + ":" + id);
    this._apply(upserts, removeKeys, closed, !this.linger);
    this._afterPrecision(version);
  }

  /** Adds the row's key and synthetic fields (same property order on every row keeps them fast to read). */
  _prepare(row, account) {
    row._acct = account;
    row._key = account + ":" + row.id;
    row._gone = false;
    row._outcome = null;
    row._search = null;
    prepareRow(this.kind, row, this.numericIds);
    this.ctx.precision.observe(row);
  }

  /**
   * A value with more decimals than any before it widened a symbol's precision: redraw every row (but not
   * those of `drawn`, a table that was just drawn with it).
   */
  _afterPrecision(version, drawn = null) {
    if (this.ctx.precision.version !== version) {
      this.ctx.onPrecision(drawn);
    }
  }

  /** Re-render every row (the rows in view now, the others when they next come into view). */
  reformatAll() {
    this.table.blockRedraw();
    try {
      for (const rc of this.table.getRows()) {
        rc.reformat();
      }
    } finally {
      this.table.restoreRedraw();
    }
  }

  /** Re-render the rows for which `predicate(row)` holds (their classes and cells). */
  reformatWhere(predicate) {
    for (const rc of this.table.getRows()) {
      if (predicate(rc.getData())) {
        rc.reformat();
      }
    }
  }

  /**
   * Re-render the cells of `fields` (cells that depend on the clock: TWAP schedules) in the rows in view, and
   * their rows' classes; only those cells are redrawn, so hover and selection stay.
   */
  refreshClock(fields, nowMs) {
    const stamp = Math.floor(nowMs / 1000);
    const changes = {};
    for (const field of fields) {
      changes[field] = stamp;
    }
    const rowClasses = this.options.rowClasses;
    for (const rc of this.table.getRows("visible")) {
      if (typeof rc.update !== "function") {
        continue; // a group header
      }
      rc.update(changes);
      if (rowClasses) {
        const el = rc.getElement();
        const classes = rowClasses(rc.getData());
        for (const name in classes) {
          el.classList.toggle(name, !!classes[name]);
        }
      }
    }
  }

  /** Bulk load into an empty table (first snapshot): one setData, no comparisons, no flashing. */
  _load(rows) {
    this.symbolCounts.clear();
    for (let i = 0; i < rows.length; i++) {
      this.rows.set(rows[i]._key, rows[i]);
      this._countSymbol(rows[i].symbol, 1);
    }
    this.indexStale = true;
    this.comps.clear();
    this.table.setData(rows);
    this._changed();
  }

  _apply(upserts, removeKeys, closed, dropAtOnce) {
    const now = Date.now();
    const flashUntil = now + FLASH_MS;
    const sortFields = this.columns.sortFields();
    const filtering = this.filter.active();
    const adds = [];
    const updates = []; // [key, changes]
    const drops = [];
    let reorder = false;

    for (let i = 0; i < upserts.length; i++) {
      const row = upserts[i];
      const key = row._key;
      const prev = this.rows.get(key);
      this.rows.set(key, row);
      if (prev === undefined) {
        if (this.gone.has(key)) {
          // Removed a moment ago and back again: revive the struck-through row in place.
          this.gone.delete(key);
          updates.push([key, row]);
          this.flash.mark(key, "*", flashUntil);
          reorder = true;
        } else {
          adds.push(row);
          if (this.loadedAccounts.has(row._acct)) {
            this.flash.mark(key, "*", flashUntil);
          }
        }
        this._countSymbol(row.symbol, 1);
        continue;
      }
      let changes = null;
      for (const field in row) {
        // _search is a cache (set on Tabulator's copy of the row when searching), not data.
        if (prev[field] !== row[field] && field !== "_search") {
          if (changes === null) {
            changes = { _search: null };
          }
          changes[field] = row[field];
          const deps = this.flashDeps.get(field);
          if (deps !== undefined) {
            for (const id of deps) {
              this.flash.mark(key, id, flashUntil);
            }
          }
          if (sortFields.has(field) || (filtering && field !== "_gone")) {
            reorder = true;
          }
        }
      }
      if (changes !== null) {
        if (changes.symbol !== undefined) {
          this._countSymbol(prev.symbol, -1);
          this._countSymbol(row.symbol, 1);
        }
        updates.push([key, changes]);
      }
    }

    for (let i = 0; i < removeKeys.length; i++) {
      const key = removeKeys[i];
      const prev = this.rows.get(key);
      if (prev === undefined) {
        continue;
      }
      this.rows.delete(key);
      this._countSymbol(prev.symbol, -1);
      if (dropAtOnce) {
        drops.push(key);
        continue;
      }
      const how = closed !== null ? closed.get(prev.id) : undefined;
      this.gone.add(key, prev);
      // The status cells re-render (their field changes) to say how the order left.
      const gone = prev._status + "|gone";
      updates.push([key, { _gone: true, _outcome: how ? how.outcome || "closed" : null, _status: gone, _status_s: gone }]);
    }

    if (adds.length || updates.length || drops.length) {
      this.table.blockRedraw();
      try {
        if (sortFields.size && (reorder || adds.length)) {
          this.columns.presortRows();
        }
        if (adds.length) {
          // New rows go on top where they are seen (when unsorted); a big batch (another account's first
          // snapshot) goes at the bottom, because Tabulator inserts at the top one row at a time.
          // Either way the filter and sort pipeline runs once, on restoreRedraw.
          this.table.addData(adds, adds.length <= TOP_INSERT_MAX);
        }
        for (let i = 0; i < updates.length; i++) {
          const rc = this._comp(updates[i][0]);
          if (rc) {
            this._updateRow(rc, updates[i][1]);
          }
        }
        if (drops.length) {
          this._delete(drops);
        }
        if (reorder && !adds.length) {
          this.table.refreshFilter(); // re-filters and re-sorts the changed rows into place
        }
      } finally {
        this.table.restoreRedraw();
      }
    }
    this.gone.schedule();
    this._changed();
  }

  /**
   * A rendered row is updated through Tabulator (it redraws just the changed cells). A row that is not in the
   * page gets its data changed in place and is marked for a rebuild when it is next drawn: update() would build
   * and fill every cell of it now, only for Tabulator to rebuild them anyway.
   */
  _updateRow(rc, changes) {
    if (rc.getElement().isConnected) {
      rc.update(changes);
    } else {
      Object.assign(rc.getData(), changes);
      rc.reformat();
    }
  }

  _comp(key) {
    if (this.indexStale) {
      this.comps.clear();
      const all = this.table.getRows();
      for (let i = 0; i < all.length; i++) {
        this.comps.set(all[i].getData()._key, all[i]);
      }
      this.indexStale = false;
    }
    return this.comps.get(key);
  }

  _delete(keys) {
    const doomed = [];
    for (const key of keys) {
      const rc = this._comp(key);
      if (rc) {
        doomed.push(rc);
      }
      this.comps.delete(key);
      this.flash.forget(key);
    }
    if (doomed.length) {
      this.table.deleteRow(doomed);
    }
  }

  _countSymbol(symbol, delta) {
    const n = (this.symbolCounts.get(symbol) || 0) + delta;
    if (n > 0) {
      this.symbolCounts.set(symbol, n);
    } else {
      this.symbolCounts.delete(symbol);
    }
  }

  _changed() {
    if (this.options.onChange) {
      this.options.onChange(this);
    }
  }

  // --- filter and search ---------------------------------------------------------------------

  /** Show only rows of `symbol` (or all when empty) whose words or codes contain `query`. */
  setFilter(symbol, query) {
    if (!this.filter.set(symbol, query)) {
      return;
    }
    if (this.filter.active()) {
      this.table.setFilter(this._filter);
    } else {
      this.table.clearFilter();
    }
    this._changed();
  }

  /** {total, shown}: rows (not counting lingering removed ones), and how many pass the filter. */
  counts() {
    let shown = this.table.getDataCount("active");
    for (const entry of this.gone.values()) {
      if (this.filter.matches(entry.data)) {
        shown -= 1;
      }
    }
    return { total: this.rows.size, shown: Math.max(0, shown) };
  }

  symbols() {
    return Array.from(this.symbolCounts.keys());
  }

  /**
   * The rows passing the filter, in the table's order, without lingering removed ones: the rows themselves,
   * for reading only (Tabulator's getData("active") deep-copies every row: 66 ms for 10 000, on every change).
   */
  shownRows() {
    const shown = [];
    for (const rc of this.table.getRows("active")) {
      const data = rc.getData();
      if (!data._gone) {
        shown.push(data);
      }
    }
    return shown;
  }

  // --- export --------------------------------------------------------------------------------

  /** The current view as CSV: visible columns, filtered and sorted rows; `asOf(row)` the row's data time. */
  toCsv(asOf) {
    return csvText(this.columns.visibleSpecs(), this.shownRows(), asOf, this.ctx);
  }
}
