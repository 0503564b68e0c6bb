/*
 * Live tables: the open-orders and TWAP tables on Tabulator's virtual DOM.
 *
 * LiveTable keeps its own map of the current rows (key = "<account>:<id>") so that a snapshot or a diff
 * is compared field by field and only changed cells are touched; Tabulator re-sorts and re-filters once
 * per batch (blockRedraw/restoreRedraw). Changed cells flash for FLASH_MS; removed rows stay, struck
 * through, for LINGER_MS, then go.
 *
 * Safety: every value from the exchange is exchange-controlled text. Every column uses a formatter from
 * this file; each one escapes (esc) or builds DOM nodes with textContent. Never use Tabulator's "html"
 * formatter here.
 */
(function () {
  "use strict";

  const NS = (window.QfexLive = window.QfexLive || {});

  const FLASH_MS = 1000;
  const LINGER_MS = 2000;
  const ROW_HEIGHT_PX = 30;
  const RENDER_BUFFER_PX = 4 * ROW_HEIGHT_PX;
  const TOP_INSERT_MAX = 500;
  const NONE = '<span aria-hidden="true">—</span><span class="live-sr-only">none</span>';

  // ---------------------------------------------------------------------------------------------
  // Text and number helpers
  // ---------------------------------------------------------------------------------------------

  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function esc(value) {
    return value === null || value === undefined ? "" : String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }

  /** A number from a decimal string (or a number); NaN when absent. For sorting and display only. */
  function num(value) {
    if (value === null || value === undefined || value === "") {
      return NaN;
    }
    return typeof value === "number" ? value : Number(value);
  }

  const DECIMAL_RE = /^(-?)(\d+)(\.\d+)?$/;

  /** "1872.50" -> "1,872.50", keeping every digit as sent (no float rounding). */
  function groupDecimal(value) {
    const text = String(value);
    const m = DECIMAL_RE.exec(text);
    if (!m) {
      return text;
    }
    return m[1] + m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (m[3] || "");
  }

  /** "33.3333" -> "33.33%"; percentages are derived values, so two decimals are plenty. */
  function percentText(value) {
    const n = num(value);
    if (!isFinite(n)) {
      return "";
    }
    return (Math.round(n * 100) / 100).toString() + "%";
  }

  function pad2(n) {
    return n < 10 ? "0" + n : String(n);
  }

  /** "2025-11-25 00:00:00" in UTC: what spreadsheets read as a date and time. */
  function utcText(ts) {
    const d = new Date(ts * 1000);
    return (
      d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " +
      pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds())
    );
  }

  const LOCAL_ZONE = (() => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    } catch (err) {
      return "local time";
    }
  })();

  function localText(ts) {
    const d = new Date(ts * 1000);
    return (
      d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
      pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds())
    );
  }

  function clockText(ts) {
    const d = new Date(ts * 1000);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }

  /** "12 s ago", "in 6 min", "now". */
  function relativeText(ts, nowMs) {
    const delta = Math.round(nowMs / 1000 - ts);
    let s = Math.abs(delta);
    if (s < 1) {
      return "now";
    }
    let text;
    if (s < 60) {
      text = s + " s";
    } else if (s < 3600) {
      text = Math.floor(s / 60) + " min";
    } else if (s < 86400) {
      s = Math.floor(s / 60);
      text = Math.floor(s / 60) + " h" + (s % 60 ? " " + (s % 60) + " min" : "");
    } else {
      text = Math.floor(s / 86400) + " d";
    }
    return delta < 0 ? "in " + text : text + " ago";
  }

  function durationText(secs) {
    const s = num(secs);
    if (!isFinite(s)) {
      return "";
    }
    if (s < 60 || s % 60) {
      return s + " s";
    }
    if (s < 3600 || s % 3600) {
      return s / 60 + " min";
    }
    return s / 3600 + " h";
  }

  /** The <time> element of a time cell; refreshRelativeTimes keeps its text current. */
  function timeHtml(ts) {
    return (
      '<time class="rel-time" datetime="' + new Date(ts * 1000).toISOString() + '" data-ts="' + ts +
      '" title="' + esc(localText(ts) + " " + LOCAL_ZONE) + '">' + relativeText(ts, Date.now()) + "</time>"
    );
  }

  /** Update every rendered relative time under `root` (only rendered rows: the virtual DOM keeps it small). */
  function refreshRelativeTimes(root, nowMs) {
    const nodes = root.querySelectorAll("time.rel-time");
    for (let i = 0; i < nodes.length; i++) {
      const text = relativeText(Number(nodes[i].dataset.ts), nowMs);
      if (nodes[i].textContent !== text) {
        nodes[i].textContent = text;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sorters: numbers and times as numbers; ties broken by row key so the order is always the same.
  // Decimal strings are sorted through numeric copies made once per row (see LiveTable._prepare):
  // parsing strings inside the comparator would cost several times the sort itself on 10 000 rows.
  // ---------------------------------------------------------------------------------------------

  function tieBreak(aRow, bRow) {
    const a = aRow.getData()._key;
    const b = bRow.getData()._key;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function compareNumbers(x, y, aRow, bRow) {
    const xMissing = typeof x !== "number" || x !== x; // null or NaN
    const yMissing = typeof y !== "number" || y !== y;
    if (xMissing || yMissing) {
      if (xMissing && yMissing) {
        return tieBreak(aRow, bRow);
      }
      return xMissing ? -1 : 1; // missing values first when ascending
    }
    return x - y || tieBreak(aRow, bRow);
  }

  /** For fields holding numbers (numeric copies, epoch times, counts); anything else counts as missing. */
  function sortNumeric(a, b, aRow, bRow) {
    return compareNumbers(a, b, aRow, bRow);
  }

  function sortText(a, b, aRow, bRow) {
    // Code-point order: exchange strings are ASCII ids and symbols, and this is several times faster than
    // a locale collator on 10 000 rows.
    const x = a === null || a === undefined ? "" : String(a);
    const y = b === null || b === undefined ? "" : String(b);
    return x < y ? -1 : x > y ? 1 : tieBreak(aRow, bRow);
  }

  function sortBool(a, b, aRow, bRow) {
    return (a ? 1 : 0) - (b ? 1 : 0) || tieBreak(aRow, bRow);
  }

  /** A sorter on another (numeric) field of the row, for columns whose own field is synthetic. */
  function sortNumericOf(field) {
    return (a, b, aRow, bRow) => compareNumbers(aRow.getData()[field], bRow.getData()[field], aRow, bRow);
  }

  // ---------------------------------------------------------------------------------------------
  // Renderers: (value, row) -> HTML string (Tabulator sets it as innerHTML: everything goes through
  // esc) or a DOM node.
  // ---------------------------------------------------------------------------------------------

  function renderText(v) {
    return esc(v);
  }

  function renderSide(v) {
    const side = v === null || v === undefined ? "" : String(v);
    const cls = side === "BUY" ? "side-buy" : side === "SELL" ? "side-sell" : "";
    return '<span class="side ' + cls + '">' + esc(side) + "</span>";
  }

  function renderDecimal(v) {
    return v === null || v === undefined || v === "" ? NONE : esc(groupDecimal(v));
  }

  /** Take profit / stop loss: 0 means none. */
  function renderOptionalDecimal(v) {
    return v === null || v === undefined || v === "" || num(v) === 0 ? NONE : esc(groupDecimal(v));
  }

  function renderPercent(v) {
    const text = percentText(v);
    return text ? esc(text) : NONE;
  }

  function renderTime(v) {
    const ts = num(v);
    return isFinite(ts) ? timeHtml(ts) : NONE;
  }

  function renderDuration(v) {
    const text = durationText(v);
    return text ? esc(text) : NONE;
  }

  function renderBool(v) {
    return v ? "yes" : "no";
  }

  function progressLabel(d) {
    return groupDecimal(d.filled_quantity) + " / " + groupDecimal(d.total_quantity) + " (" + percentText(d.progress_pct) + ")";
  }

  /** A progress bar built as DOM nodes (its width is set through CSSOM, which a strict CSP allows). */
  function renderProgress(_, d) {
    const pct = Math.max(0, Math.min(100, num(d.progress_pct) || 0));
    const label = progressLabel(d);
    const box = document.createElement("div");
    box.className = "twap-progress";
    box.setAttribute("role", "progressbar");
    box.setAttribute("aria-label", "Filled");
    box.setAttribute("aria-valuemin", "0");
    box.setAttribute("aria-valuemax", "100");
    box.setAttribute("aria-valuenow", String(pct));
    box.setAttribute("aria-valuetext", label);
    const bar = document.createElement("div");
    bar.className = "twap-progress-bar";
    bar.style.width = pct + "%";
    const text = document.createElement("span");
    text.className = "twap-progress-text";
    text.textContent = label;
    box.append(bar, text);
    return box;
  }

  function renderSlices(_, d) {
    const total = d.total_num_orders;
    if (total === null || total === undefined) {
      return NONE;
    }
    const filled = d.filled_num_orders;
    return esc(filled === null || filled === undefined ? String(total) : filled + " / " + total);
  }

  // ---------------------------------------------------------------------------------------------
  // Column specs. `id` names the column (URL, column chooser) and the row property shown; `field` is
  // Tabulator's field (a numeric copy for decimal strings); `csv` gives the exported cells of a row and
  // `csvTitles` their headers.
  // ---------------------------------------------------------------------------------------------

  function raw(id) {
    return (d) => [d[id]];
  }

  function utcOf(id) {
    return (d) => {
      const ts = num(d[id]);
      return [isFinite(ts) ? utcText(ts) : ""];
    };
  }

  const KINDS = {
    text: { sorter: sortText, render: renderText, text: true },
    mono: { sorter: sortText, render: renderText, text: true, cssClass: "cell-mono" },
    side: { sorter: sortText, render: renderSide, text: true },
    decimal: { sorter: sortNumeric, render: renderDecimal, align: "right", numericCopy: true },
    optional: { sorter: sortNumeric, render: renderOptionalDecimal, align: "right", numericCopy: true },
    percent: { sorter: sortNumeric, render: renderPercent, align: "right", numericCopy: true },
    time: { sorter: sortNumeric, render: renderTime, startDir: "desc", time: true },
    duration: { sorter: sortNumeric, render: renderDuration, align: "right" },
    bool: { sorter: sortBool, render: renderBool },
  };

  function spec(id, title, kind, width, extra) {
    const base = KINDS[kind] || {};
    return Object.assign(
      {
        id: id,
        field: base.numericCopy ? "_n_" + id : id,
        numericCopy: !!base.numericCopy,
        title: title,
        width: width,
        sorter: base.sorter,
        render: base.render,
        align: base.align || "left",
        cssClass: base.cssClass || "",
        startDir: base.startDir || "asc",
        text: !!base.text,
        csvTitles: [base.time ? title + " (UTC)" : title],
        csv: base.time ? utcOf(id) : raw(id),
      },
      extra || {}
    );
  }

  const ACCOUNT = spec("account_label", "Account", "text", 130);

  function orderSpecs(showAccount) {
    const specs = [
      spec("symbol", "Symbol", "text", 110),
      spec("side", "Side", "side", 70),
      spec("type", "Type", "text", 110),
      spec("time_in_force", "Time in force", "text", 100),
      spec("price", "Price", "decimal", 100),
      spec("quantity", "Quantity", "decimal", 95),
      spec("filled", "Filled", "decimal", 90),
      spec("quantity_remaining", "Remaining", "decimal", 110),
      spec("fill_pct", "Fill %", "percent", 80),
      spec("notional", "Notional", "decimal", 110),
      spec("take_profit", "Take profit", "optional", 95),
      spec("stop_loss", "Stop loss", "optional", 95),
      spec("status", "Status", "text", 90),
      spec("client_order_id", "Client order ID", "mono", 150),
      spec("order_id", "Order ID", "mono", 150),
      spec("update_time", "Updated", "time", 100),
    ];
    return showAccount ? [ACCOUNT].concat(specs) : specs;
  }

  function twapSpecs(showAccount) {
    const specs = [
      spec("symbol", "Symbol", "text", 110),
      spec("side", "Side", "side", 70),
      // A synthetic field (see prepareTwap), so that the cell re-renders when any part of its label changes.
      spec("progress", "Progress", "text", 200, {
        field: "_progress",
        sorter: sortNumericOf("_n_progress_pct"),
        render: renderProgress,
        text: false,
        csvTitles: ["Filled quantity", "Total quantity", "Progress %"],
        csv: (d) => [d.filled_quantity, d.total_quantity, d.progress_pct],
      }),
      spec("average_fill_price", "Average fill price", "decimal", 110),
      spec("slices", "Slices", "text", 80, {
        field: "_slices",
        sorter: sortNumericOf("total_num_orders"),
        render: renderSlices,
        align: "right",
        text: false,
        csvTitles: ["Filled slices", "Total slices"],
        csv: (d) => [d.filled_num_orders, d.total_num_orders],
      }),
      spec("order_interval_secs", "Interval", "duration", 90, { csvTitles: ["Interval (s)"] }),
      spec("estimated_end", "Estimated end", "time", 110, { startDir: "asc" }),
      spec("reduce_only", "Reduce-only", "bool", 90, { csv: (d) => [d.reduce_only ? "yes" : "no"] }),
      spec("status", "Status", "text", 100),
      spec("client_twap_id", "Client ID", "mono", 150),
      spec("twap_id", "TWAP ID", "mono", 150),
      spec("created_at", "Created", "time", 100),
      spec("updated_at", "Updated", "time", 100),
    ];
    return showAccount ? [ACCOUNT].concat(specs) : specs;
  }

  // Fields matched by the text search: symbol, ids, client ids, status.
  const SEARCH_FIELDS = {
    orders: ["symbol", "id", "order_id", "client_order_id", "status"],
    twaps: ["symbol", "id", "twap_id", "client_twap_id", "status"],
  };

  /** A number, or null when absent or not a number (the sorters put missing values first). */
  function numericCopy(value) {
    const n = num(value);
    return n === n ? n : null;
  }

  function prepareTwap(row) {
    row._progress = row.filled_quantity + "|" + row.total_quantity + "|" + row.progress_pct;
    row._n_progress_pct = numericCopy(row.progress_pct);
    row._slices = row.filled_num_orders + "|" + row.total_num_orders;
  }

  // ---------------------------------------------------------------------------------------------
  // CSV
  // ---------------------------------------------------------------------------------------------

  /**
   * One CSV field. Text from the exchange that a spreadsheet would run as a formula (=, +, -, @, tab,
   * CR at the start) gets a leading apostrophe; numbers are left exactly as sent.
   */
  function csvField(value, isText) {
    if (value === null || value === undefined) {
      return "";
    }
    let s = String(value);
    if (isText && /^[=+\-@\t\r]/.test(s)) {
      s = "'" + s;
    }
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  /** The empty table's message, as a row with one cell so the grid's rowgroup is never without a row. */
  function placeholderRow(text) {
    const row = document.createElement("div");
    row.className = "live-placeholder";
    row.setAttribute("role", "row");
    const cell = document.createElement("div");
    cell.setAttribute("role", "gridcell");
    cell.textContent = text;
    row.append(cell);
    return row;
  }

  // ---------------------------------------------------------------------------------------------
  // LiveTable
  // ---------------------------------------------------------------------------------------------

  /**
   * options: kind ("orders" | "twaps"), showAccount (bool), height (CSS), placeholder (text),
   * sort ({field, dir} | null), hidden (array of fields), onChange() after rows or filter change (counts,
   * symbols), onUserChange() after the user sorts (for the URL).
   */
  class LiveTable {
    constructor(element, options) {
      this.element = element;
      this.kind = options.kind;
      this.options = options;
      this.specs = this.kind === "orders" ? orderSpecs(options.showAccount) : twapSpecs(options.showAccount);
      this.specById = new Map(this.specs.map((s) => [s.id, s]));
      this.specByField = new Map(this.specs.map((s) => [s.field, s]));
      this.numericSpecs = this.specs.filter((s) => s.numericCopy);
      this.searchFields = SEARCH_FIELDS[this.kind];
      this.rows = new Map(); // key -> latest row as received (rows shown, not counting lingering ones)
      this.gone = new Map(); // key -> {until, data}: removed rows still shown struck through
      this.recent = new Map(); // key -> Map(column id or "*" -> flash-until ms)
      this.comps = new Map(); // key -> Tabulator RowComponent (rebuilt lazily after a bulk load)
      this.indexStale = false;
      this.symbolCounts = new Map();
      this.symbol = "";
      this.query = "";
      this.loadedAccounts = new Set(); // accounts whose first snapshot is in: their new rows flash
      this._purgeTimer = null;
      this._flashTimer = null;
      this._filter = (data) => this._matches(data);

      const sortSpec = options.sort ? this.specById.get(options.sort.field) : undefined;
      const hidden = new Set(options.hidden || []);
      this.table = new Tabulator(element, {
        index: "_key",
        height: options.height || false,
        maxHeight: options.maxHeight || false,
        minHeight: options.minHeight || false,
        layout: "fitData",
        layoutColumnsOnNewData: false,
        // A fixed row height spares Tabulator from measuring every cell of every rendered row (forced layouts).
        rowHeight: ROW_HEIGHT_PX,
        // Render a few rows beyond the visible ones, not a whole extra screenful: each re-render (after a
        // sort or an added row) rebuilds every rendered row, so fewer rows is directly less work.
        renderVerticalBuffer: RENDER_BUFFER_PX,
        placeholder: placeholderRow(options.placeholder || "Nothing to show"),
        addRowPos: "top",
        columnHeaderSortMulti: false,
        headerSortClickElement: "header",
        initialSort: sortSpec ? [{ column: sortSpec.field, dir: options.sort.dir === "desc" ? "desc" : "asc" }] : [],
        rowFormatter: (row) => {
          row.getElement().classList.toggle("row-gone", !!row.getData()._gone);
        },
        columns: this.specs.map((s) => ({
          title: s.title,
          field: s.field,
          width: s.width,
          sorter: s.sorter,
          formatter: this._formatter(s),
          hozAlign: s.align,
          cssClass: s.cssClass,
          headerSortStartingDir: s.startDir,
          headerSortTristate: false,
          headerWordWrap: true,
          resizable: "header", // a resize handle per header only, not one more element in every cell
          visible: !hidden.has(s.id),
        })),
      });
      this.table.on("rowAdded", (rc) => {
        if (!this.indexStale) {
          this.comps.set(rc.getData()._key, rc);
        }
      });
      this.ready = new Promise((resolve) => {
        this.table.on("tableBuilt", () => {
          this._fixAccessibility();
          resolve(this);
        });
      });
    }

    // --- applying server data ------------------------------------------------------------------

    /**
     * Replace the rows of one account (per-account page: the only account) with `rows`. `hasData`
     * is false for a snapshot taken before the server's first fetch: the rows that follow it are
     * the first load, so they do not flash.
     */
    applySnapshot(account, rows, hasData = true) {
      for (let i = 0; i < rows.length; i++) {
        this._prepare(rows[i], account);
      }
      if (this.rows.size === 0 && this.gone.size === 0) {
        this._load(rows);
      } else {
        this._replaceAccountRows(account, rows);
      }
      if (hasData) {
        this.loadedAccounts.add(account);
      } else {
        this.loadedAccounts.delete(account);
      }
    }

    _replaceAccountRows(account, rows) {
      const keep = new Set();
      for (let i = 0; i < rows.length; i++) {
        keep.add(rows[i]._key);
      }
      const removeKeys = [];
      for (const [key, row] of this.rows) {
        if (row._acct === account && !keep.has(key)) {
          removeKeys.push(key);
        }
      }
      this._apply(rows, removeKeys);
    }

    /** Apply one diff of one account: `upserts` rows, `removeIds` ids. */
    applyDiff(account, upserts, removeIds, flash = true) {
      if (flash) {
        this.loadedAccounts.add(account);
      } else {
        this.loadedAccounts.delete(account);
      }
      for (let i = 0; i < upserts.length; i++) {
        this._prepare(upserts[i], account);
      }
      const removeKeys = removeIds.map((id) => account + ":" + id);
      this._apply(upserts, removeKeys);
    }

    /** Adds the row's key and numeric copies (same property order on every row keeps them fast to read). */
    _prepare(row, account) {
      row._acct = account;
      row._key = account + ":" + row.id;
      row._gone = false;
      row._search = null;
      for (let i = 0; i < this.numericSpecs.length; i++) {
        const s = this.numericSpecs[i];
        row[s.field] = numericCopy(row[s.id]);
      }
      if (this.kind === "twaps") {
        prepareTwap(row);
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

    _apply(upserts, removeKeys) {
      const now = Date.now();
      const flashUntil = now + FLASH_MS;
      const sortField = this._sortField();
      const filtering = !!(this.symbol || this.query);
      const adds = [];
      const updates = []; // [key, changes]
      let reorder = false;

      for (let i = 0; i < upserts.length; i++) {
        const row = upserts[i];
        const key = row._key;
        const prev = this.rows.get(key);
        this.rows.set(key, row);
        if (prev === undefined) {
          const lingering = this.gone.get(key);
          if (lingering) {
            // Removed a moment ago and back again: revive the struck-through row in place.
            this.gone.delete(key);
            updates.push([key, row]);
            this._flash(key, "*", flashUntil);
            reorder = true;
          } else {
            adds.push(row);
            if (this.loadedAccounts.has(row._acct)) {
              this._flash(key, "*", flashUntil);
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
            if (this.specById.has(field)) {
              this._flash(key, field, flashUntil);
            }
            if (field === sortField || (filtering && (field === "symbol" || this.searchFields.includes(field)))) {
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
        this.gone.set(key, { until: now + LINGER_MS, data: prev });
        updates.push([key, { _gone: true }]);
      }

      if (adds.length || updates.length) {
        this.table.blockRedraw();
        try {
          if (sortField !== null && (reorder || adds.length)) {
            this._presortRows();
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
          if (reorder && !adds.length) {
            this.table.refreshFilter(); // re-filters and re-sorts the changed rows into place
          }
        } finally {
          this.table.restoreRedraw();
        }
      }
      this._schedulePurge();
      this._changed();
    }

    /**
     * Puts Tabulator's list of rows in the order the table shows them, just before a re-sort. Tabulator
     * sorts a copy of that list, which is otherwise in the order rows were added, so every re-sort was a
     * whole sort (about 120 000 comparisons for 10 000 rows). From the shown order, a diff that moves a
     * few rows costs a small fraction of that: the browser's sort (TimSort) finds the runs that are
     * already in order. This reaches into Tabulator 6.5's RowManager (`rows`, `activeRows`,
     * `activeRowsPipeline`); when they are not as expected it does nothing, and sorting is only slower.
     */
    _presortRows() {
      const rm = this.table.rowManager;
      if (!rm || !Array.isArray(rm.rows) || !Array.isArray(rm.activeRows) || !Array.isArray(rm.activeRowsPipeline)) {
        return;
      }
      const rows = rm.rows;
      const shown = rm.activeRows;
      if (shown.length === 0 || shown.length > rows.length) {
        return;
      }
      let order = shown;
      if (shown.length < rows.length) {
        // Filtered out rows keep their place after the shown ones.
        const inView = new Set(shown);
        order = shown.slice();
        for (let i = 0; i < rows.length; i++) {
          if (!inView.has(rows[i])) {
            order.push(rows[i]);
          }
        }
        if (order.length !== rows.length) {
          return; // the shown rows are not all in the list: leave Tabulator's state alone
        }
      }
      for (let i = 0; i < order.length; i++) {
        rows[i] = order[i];
      }
      // The filter stage reads a cached copy of the list when only the filter is refreshed.
      rm.activeRowsPipeline[0] = rows.slice(0);
    }

    /**
     * A rendered row is updated through Tabulator (it redraws just the changed cells). A row that is not in
     * the page gets its data changed in place and is marked for a rebuild when it is next drawn: update()
     * would build and fill every cell of it now, only for Tabulator to rebuild them anyway.
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

    // --- lingering removed rows ----------------------------------------------------------------

    _schedulePurge() {
      if (this._purgeTimer !== null || this.gone.size === 0) {
        return;
      }
      let soonest = Infinity;
      for (const entry of this.gone.values()) {
        soonest = Math.min(soonest, entry.until);
      }
      this._purgeTimer = setTimeout(() => {
        this._purgeTimer = null;
        this._purge();
      }, Math.max(0, soonest - Date.now()));
    }

    _purge() {
      const now = Date.now();
      const doomed = [];
      for (const [key, entry] of this.gone) {
        if (entry.until <= now) {
          const rc = this._comp(key);
          if (rc) {
            doomed.push(rc);
          }
          this.gone.delete(key);
          this.comps.delete(key);
          this.recent.delete(key);
        }
      }
      if (doomed.length) {
        this.table.deleteRow(doomed);
        this._changed();
      }
      this._schedulePurge();
    }

    // --- flashing changed cells ----------------------------------------------------------------

    _flash(key, field, until) {
      let fields = this.recent.get(key);
      if (fields === undefined) {
        fields = new Map();
        this.recent.set(key, fields);
      }
      fields.set(field, until);
    }

    /**
     * The Tabulator formatter of a column: renders the row's value, and gives a cell rendered while its
     * change is recent the `cell-flash` class. Tabulator re-renders exactly the cells whose value changed
     * (and rows scrolled into view), so flashing needs no per-row work on the hot path.
     */
    _formatter(s) {
      const view = this;
      const id = s.id;
      const render = s.render;
      return function (cell) {
        const data = cell.getData();
        const out = render(data[id], data);
        if (view.recent.size) {
          const fields = view.recent.get(data._key);
          if (fields !== undefined) {
            const until = Math.max(fields.get(id) || 0, fields.get("*") || 0);
            if (until > Date.now()) {
              const el = cell.getElement();
              el.classList.add("cell-flash");
              el.dataset.flashUntil = String(until);
              view._scheduleFlashCleanup();
            }
          }
        }
        return out;
      };
    }

    _scheduleFlashCleanup() {
      if (this._flashTimer !== null) {
        return;
      }
      this._flashTimer = setTimeout(() => {
        this._flashTimer = null;
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
          this._scheduleFlashCleanup();
        }
      }, 250);
    }

    // --- filter and search ---------------------------------------------------------------------

    /** Show only rows of `symbol` (or all when empty) whose symbol, ids, client id or status contain `query`. */
    setFilter(symbol, query) {
      symbol = symbol || "";
      query = (query || "").trim().toLowerCase();
      if (symbol === this.symbol && query === this.query) {
        return;
      }
      this.symbol = symbol;
      this.query = query;
      if (symbol || query) {
        this.table.setFilter(this._filter);
      } else {
        this.table.clearFilter();
      }
      this._changed();
    }

    _matches(data) {
      if (this.symbol && data.symbol !== this.symbol) {
        return false;
      }
      if (this.query) {
        let text = data._search;
        if (text === null || text === undefined) {
          text = "";
          for (let i = 0; i < this.searchFields.length; i++) {
            const v = data[this.searchFields[i]];
            if (v !== null && v !== undefined) {
              text += String(v).toLowerCase() + "\u0000";
            }
          }
          data._search = text; // cached on the row; cleared by every update of the row
        }
        if (text.indexOf(this.query) === -1) {
          return false;
        }
      }
      return true;
    }

    /** {total, shown}: rows (not counting lingering removed ones), and how many pass the filter. */
    counts() {
      let shown = this.table.getDataCount("active");
      for (const entry of this.gone.values()) {
        if (this._matches(entry.data)) {
          shown -= 1;
        }
      }
      return { total: this.rows.size, shown: Math.max(0, shown) };
    }

    symbols() {
      return Array.from(this.symbolCounts.keys());
    }

    // --- sort, columns, keyboard ---------------------------------------------------------------

    /** Tabulator's field the table is sorted on, or null. */
    _sortField() {
      const sorters = this.table.getSorters();
      return sorters.length ? sorters[0].field : null;
    }

    /** {field: column id, dir} or null. */
    getSort() {
      const sorters = this.table.getSorters();
      const s = sorters.length ? this.specByField.get(sorters[0].field) : undefined;
      return s ? { field: s.id, dir: sorters[0].dir } : null;
    }

    /** [{id, title, visible}] for the column chooser. */
    columnChoices() {
      return this.specs.map((s) => ({ id: s.id, title: s.title, visible: this.table.getColumn(s.field).isVisible() }));
    }

    setColumnVisible(id, visible) {
      const s = this.specById.get(id);
      const column = s ? this.table.getColumn(s.field) : null;
      if (column) {
        if (visible) {
          column.show();
        } else {
          column.hide();
        }
      }
    }

    /** Ids of the hidden columns. */
    hiddenColumns() {
      return this.specs.filter((s) => !this.table.getColumn(s.field).isVisible()).map((s) => s.id);
    }

    /**
     * Accessibility repairs to Tabulator's div grid, done once when it is built:
     * - its scrolling body is focusable (tabindex) so keyboard users can scroll it, but a focusable element
     *   without a role may not sit between a grid and its rows: it becomes the rows' rowgroup, the inner
     *   rowgroup becomes presentational, and the grid's redundant aria-owns goes;
     * - headers are focusable; Enter or Space sorts like a click (Tabulator only listens for clicks).
     */
    _fixAccessibility() {
      const holder = this.element.querySelector(".tabulator-tableholder");
      const body = this.element.querySelector(".tabulator-table");
      if (holder && body) {
        holder.setAttribute("role", "rowgroup");
        body.setAttribute("role", "presentation");
        this.element.removeAttribute("aria-owns");
      }
      for (const column of this.table.getColumns()) {
        const el = column.getElement();
        el.tabIndex = 0;
        el.dataset.column = this.specByField.get(column.getField()).id;
        el.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            el.click();
          }
        });
      }
      // Tabulator puts its own title text inside the header; name the sort arrow as decoration.
      for (const arrow of this.element.querySelectorAll(".tabulator-col-sorter")) {
        arrow.setAttribute("aria-hidden", "true");
      }
      const onSort = (event) => {
        if (event.target.closest && event.target.closest(".tabulator-col") && this.options.onUserChange) {
          this.options.onUserChange(this);
        }
      };
      this.element.addEventListener("click", onSort);
    }

    // --- export --------------------------------------------------------------------------------

    /**
     * The current view as CSV: visible columns, filtered and sorted rows, no lingering removed rows. Each
     * row ends with the time its account's data was taken (`asOfFor(account)` -> epoch seconds).
     */
    toCsv(asOfFor) {
      const visible = this.table
        .getColumns()
        .filter((c) => c.isVisible())
        .map((c) => this.specByField.get(c.getField()))
        .filter(Boolean);
      const header = [];
      for (const s of visible) {
        header.push(...s.csvTitles);
      }
      header.push("Data as of (UTC)");
      const lines = [header.map((h) => csvField(h, false)).join(",")];
      const data = this.table.getData("active");
      for (let i = 0; i < data.length; i++) {
        const d = data[i];
        if (d._gone) {
          continue;
        }
        const cells = [];
        for (const s of visible) {
          for (const v of s.csv(d)) {
            cells.push(csvField(v, s.text));
          }
        }
        const asOf = asOfFor(d._acct);
        cells.push(isFinite(asOf) ? utcText(asOf) : "");
        lines.push(cells.join(","));
      }
      return lines.join("\r\n") + "\r\n";
    }
  }

  NS.LiveTable = LiveTable;
  NS.format = {
    esc: esc,
    groupDecimal: groupDecimal,
    relativeText: relativeText,
    utcText: utcText,
    localText: localText,
    clockText: clockText,
    localZone: LOCAL_ZONE,
    refreshRelativeTimes: refreshRelativeTimes,
  };
})();
