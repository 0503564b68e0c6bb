/*
 * Building a LiveTable's Tabulator, and everything about its columns: which are shown (defaults, the person's
 * choices, the phone's compact set), the sort (several columns, primary first), grouping by symbol, and the
 * accessibility repairs Tabulator's div grid needs.
 */

import { KEY_FIELD, clickSort, keySorter, sorterFor, tabulatorSort } from "./sorting.js";
import { esc } from "./cells.js";

const ROW_HEIGHT_PX = 30;
const CELL_PADDING_PX = 14; // a cell's padding and borders, and a little air
const RENDER_BUFFER_PX = 4 * ROW_HEIGHT_PX;

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

export function buildTabulator(view, element, options) {
  const cols = view.columns;
  const rowClasses = options.rowClasses || (() => ({}));
  cols.placeholder = placeholderRow(options.placeholder || "Nothing to show");
  cols.placeholderText = options.placeholder || "Nothing to show";
  return new window.Tabulator(element, {
    index: "_key",
    height: options.height || false,
    maxHeight: options.maxHeight || false,
    minHeight: options.minHeight || false,
    layout: "fitData",
    layoutColumnsOnNewData: false,
    // A fixed row height spares Tabulator from measuring every cell of every rendered row (forced layouts).
    rowHeight: ROW_HEIGHT_PX,
    // Render a few rows beyond the visible ones, not a whole extra screenful: each re-render (after a sort or
    // an added row) rebuilds every rendered row, so fewer rows is directly less work.
    renderVerticalBuffer: RENDER_BUFFER_PX,
    placeholder: cols.placeholder,
    addRowPos: "top",
    columnHeaderSortMulti: true,
    // Header clicks are handled by the page (see TableColumns.afterBuild): the sort icon gets no events.
    headerSortClickElement: "icon",
    initialSort: tabulatorSort(cols.sort, (id) => cols.fieldOf(id)),
    // A group header is a row of the grid: its words are its one cell (the toggle arrow is decoration).
    groupHeader: (value, count) =>
      '<span role="gridcell" class="group-cell">' + esc(value) + ' <span class="group-count">' +
      count.toLocaleString("en-US") + (count === 1 ? " row" : " rows") + "</span></span>",
    rowFormatter: (row) => {
      const data = row.getData();
      const el = row.getElement();
      el.dataset.id = data.id; // lets tests and the details dialog find a row
      el.classList.toggle("row-gone", !!data._gone);
      el.classList.toggle("row-refused", !!data.refused);
      for (const outcome of ["filled", "cancelled", "rejected", "closed"]) {
        el.classList.toggle("row-gone-" + outcome, !!data._gone && data._outcome === outcome);
      }
      const extra = rowClasses(data);
      for (const name in extra) {
        el.classList.toggle(name, !!extra[name]);
      }
    },
    // The hidden key column (the sort's tie-break) comes last: a column before the frozen ones would make
    // Tabulator freeze them to the right.
    columns: [
      ...view.specs.map((s) => ({
        title: s.title,
        field: s.field,
        width: cols.widthOf(s),
        sorter: sorterFor(s),
        formatter: view.flash.formatter(s.id, (data) => s.render(data, view.ctx)),
        hozAlign: s.align,
        cssClass: s.cssClass,
        headerSortStartingDir: s.startDir,
        headerSortTristate: false,
        headerWordWrap: true,
        frozen: s.frozen,
        resizable: "header", // a resize handle per header only, not one more element in every cell
        visible: cols.isVisible(s),
      })),
      { title: "Key", field: KEY_FIELD, visible: false, sorter: keySorter, headerSort: true },
    ],
  });
}

export class TableColumns {
  constructor(view, options) {
    this.view = view;
    const known = (id) => view.specById.has(id);
    this.sort = (options.sort || []).filter((s) => known(s.id));
    const visibility = options.visibility || {};
    this.hidden = new Set((visibility.hidden || []).filter(known));
    this.shown = new Set((visibility.shown || []).filter(known));
    this.compact = !!options.compact;
    this.shares = options.compactShares || null;
    this.grouped = false;
    this.digitPx = 0; // measured once built
  }

  fieldOf(id) {
    return this.view.specById.get(id).field;
  }

  /**
   * A column's width: on a phone its share of the table's width; at a desk its own, or wider when its numbers
   * need it (a number is never cut off: the widest a column's values can be is known from the precision book).
   */
  widthOf(spec) {
    const share = this.compact && this.shares ? this.shares[spec.id] : undefined;
    if (share !== undefined) {
      const available = Math.max(240, this.view.element.clientWidth - 4);
      return Math.floor(available * share);
    }
    if (spec.fit && this.digitPx) {
      const needed = Math.ceil(this.view.ctx.precision.widthChars(spec.fit) * this.digitPx + CELL_PADDING_PX);
      return Math.max(spec.width, needed);
    }
    return spec.width;
  }

  /** Widen the number columns that need it (after a value with more digits or decimals came in). */
  fitWidths() {
    if (this.compact) {
      return;
    }
    const table = this.view.table;
    for (const s of this.view.specs) {
      if (!s.fit) {
        continue;
      }
      const column = table.getColumn(s.field);
      const width = this.widthOf(s);
      if (column && column.getWidth() < width) {
        column.setWidth(width);
      }
    }
  }

  /** The width of one tabular digit in the table's font (measured once the table is in the page). */
  _measureDigit() {
    const probe = document.createElement("span");
    probe.className = "num";
    probe.textContent = "0".repeat(20);
    probe.setAttribute("aria-hidden", "true");
    this.view.element.append(probe);
    const width = probe.getBoundingClientRect().width / 20;
    probe.remove();
    return width > 0 ? width : 0;
  }

  isVisible(spec) {
    if (this.compact) {
      return spec.compact;
    }
    if (spec.phoneOnly) {
      return false;
    }
    return this.shown.has(spec.id) || (spec.shown && !this.hidden.has(spec.id));
  }

  /** Row properties the table is sorted on (a change to one of them moves the row). */
  sortFields() {
    return new Set(this.sort.map((s) => this.view.specById.get(s.id).sortField));
  }

  setSort(list) {
    this.sort = list;
    this.view.table.setSort(tabulatorSort(list, (id) => this.fieldOf(id)));
    this._markRanks();
  }

  // --- visibility ------------------------------------------------------------------------------

  /** [{id, title, visible}] for the column chooser (never the phone-only columns). */
  choices() {
    return this.view.specs
      .filter((s) => !s.phoneOnly)
      .map((s) => ({ id: s.id, title: s.title, visible: this.shown.has(s.id) || (s.shown && !this.hidden.has(s.id)) }));
  }

  setVisible(id, visible) {
    const spec = this.view.specById.get(id);
    if (!spec) {
      return;
    }
    this.hidden.delete(id);
    this.shown.delete(id);
    if (visible !== spec.shown) {
      (visible ? this.shown : this.hidden).add(id);
    }
    this._apply();
  }

  /** The person's departures from the default columns: {hidden: [ids], shown: [ids]}. */
  choicesMade() {
    return { hidden: Array.from(this.hidden), shown: Array.from(this.shown) };
  }

  /** On a phone the table shows its compact columns only (the person's choices are kept for the desk). */
  setCompact(compact) {
    if (compact === this.compact) {
      return;
    }
    this.compact = compact;
    this._apply();
  }

  _apply() {
    const table = this.view.table;
    table.blockRedraw();
    try {
      for (const s of this.view.specs) {
        const column = table.getColumn(s.field);
        if (column && column.isVisible() !== this.isVisible(s)) {
          if (this.isVisible(s)) {
            column.show();
          } else {
            column.hide();
          }
        }
        if (column && this.isVisible(s) && column.getWidth() !== this.widthOf(s)) {
          column.setWidth(this.widthOf(s));
        }
      }
    } finally {
      table.restoreRedraw();
    }
  }

  visibleSpecs() {
    return this.view.table
      .getColumns()
      .filter((c) => c.isVisible())
      .map((c) => this.view.specByField.get(c.getField()))
      .filter((s) => s && s.csvTitles.length);
  }

  setGroupBy(on) {
    if (on === this.grouped) {
      return;
    }
    this.grouped = on;
    this.view.table.setGroupBy(on ? "symbol" : false);
    this._fixGroupRows();
  }

  /**
   * Puts Tabulator's list of rows in the order the table shows them, just before a re-sort. Tabulator sorts a
   * copy of that list, which is otherwise in the order rows were added, so every re-sort was a whole sort
   * (about 120 000 comparisons for 10 000 rows). From the shown order, a diff that moves a few rows costs a
   * small fraction of that: the browser's sort (TimSort) finds the runs that are already in order. This
   * reaches into Tabulator 6.5's RowManager (`rows`, `activeRows`, `activeRowsPipeline`); when they are not
   * as expected it does nothing, and sorting is only slower.
   */
  presortRows() {
    const rm = this.view.table.rowManager;
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

  // --- headers: sorting by click and keyboard, accessibility -----------------------------------

  /**
   * Once the table is built:
   * - its scrolling body is focusable (tabindex) so keyboard users can scroll it, but a focusable element
   *   without a role may not sit between a grid and its rows: it becomes the rows' rowgroup, the inner
   *   rowgroup becomes presentational, and the grid's redundant aria-owns goes;
   * - headers are focusable; a click, Enter or Space sorts by the column, with Shift it adds the column to
   *   the sort.
   */
  afterBuild() {
    const element = this.view.element;
    this.digitPx = this._measureDigit();
    this.fitWidths();
    const holder = element.querySelector(".tabulator-tableholder");
    const body = element.querySelector(".tabulator-table");
    if (holder && body) {
      holder.setAttribute("role", "rowgroup");
      body.setAttribute("role", "presentation");
      element.removeAttribute("aria-owns");
    }
    for (const column of this.view.table.getColumns()) {
      const spec = this.view.specByField.get(column.getField());
      if (!spec) {
        continue;
      }
      const el = column.getElement();
      el.tabIndex = 0;
      el.dataset.column = spec.id;
      el.title = "Sort by " + spec.title + " (Shift: add to the sort)";
      el.addEventListener("click", (event) => {
        if (event.target.closest(".tabulator-col-resize-handle")) {
          return;
        }
        this._sortBy(spec, event.shiftKey || event.ctrlKey || event.metaKey);
      });
      el.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          this._sortBy(spec, event.shiftKey);
        }
      });
    }
    // Tabulator puts its own title text inside the header; the sort arrow is decoration.
    for (const arrow of element.querySelectorAll(".tabulator-col-sorter")) {
      arrow.setAttribute("aria-hidden", "true");
    }
    this._markRanks();
    this.view.table.on("renderComplete", () => {
      if (this.grouped) {
        this._fixGroupRows();
      }
    });
  }

  _sortBy(spec, additive) {
    this.setSort(clickSort(this.sort, spec.id, spec.startDir, additive));
    if (this.view.options.onUserChange) {
      this.view.options.onUserChange(this.view);
    }
  }

  /** With several sorts, each sorted header shows its place (1, 2, …) and says it to screen readers. */
  _markRanks() {
    const many = this.sort.length > 1;
    for (const column of this.view.table.getColumns()) {
      const spec = this.view.specByField.get(column.getField());
      if (!spec) {
        continue;
      }
      const el = column.getElement();
      const rank = this.sort.findIndex((s) => s.id === spec.id);
      if (many && rank >= 0) {
        el.dataset.sortRank = String(rank + 1);
      } else {
        delete el.dataset.sortRank;
      }
    }
  }

  /** The empty table's words: its own, or `text` and a "Clear filters" button while filters hide every row. */
  setPlaceholder(text, withClear) {
    const cell = this.placeholder.firstChild;
    const want = text || this.placeholderText;
    if (cell.dataset.text === want) {
      return;
    }
    cell.dataset.text = want;
    cell.textContent = want;
    if (withClear) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "live-button";
      button.dataset.action = "clear-filters";
      button.textContent = "Clear filters";
      cell.append(" ", button);
    }
  }

  /** Group header rows, whenever Tabulator draws them: the toggle arrow is decoration. */
  _fixGroupRows() {
    for (const group of this.view.element.querySelectorAll(".tabulator-group")) {
      // Tabulator calls it a rowgroup, but the rows of a group are its siblings: it is a row with one cell.
      group.setAttribute("role", "row");
      const toggle = group.querySelector(".tabulator-group-toggle");
      if (toggle) {
        toggle.setAttribute("aria-hidden", "true");
      }
    }
  }
}
