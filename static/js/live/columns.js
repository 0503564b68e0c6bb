/*
 * The columns of the three tables (open orders, closed orders, TWAPs): what each shows, how it sorts, what it
 * exports, and which are shown by default, on a phone, or only under "Columns".
 *
 * A spec: id (URL, column chooser, the row property shown), title, field (Tabulator's field: a numeric copy
 * "_n_<id>" for decimals, a synthetic key for cells built from several values, so that the cell re-renders
 * when any of them changes), sortField (numbers sort as numbers, never as the formatted text), width,
 * render(row, ctx), csv(row, ctx) -> cells and csvTitles, shown (by default), compact (on a phone),
 * frozen (stays when scrolling sideways).
 */

import * as cell from "./cells.js";
import { plainText, toNumber } from "./decimal.js";
import { orderStatusLabel, orderTypeLabel, outcomeLabel, sideLabel, twapStatusLabel } from "./labels.js";
import { PRICE_FIELDS } from "./precision.js";
import { driftText, slicesText, timeLeftText, twapSchedule } from "./twap_math.js";

/**
 * On a phone each table shows its compact columns only, sized to share the screen's width (these fractions),
 * with every other value in the row's details (a tap on the row).
 */
export const COMPACT_SHARES = {
  orders: { symbol: 0.29, side: 0.1, price: 0.19, remsize: 0.17, status_short: 0.14, age: 0.11 },
  twaps: { symbol: 0.26, side: 0.13, progress: 0.37, time_left: 0.24 },
  closed: { symbol: 0.26, side: 0.13, outcome: 0.28, closed_at: 0.33 },
};

function spec(id, title, width, extra) {
  return Object.assign(
    {
      id: id,
      title: title,
      field: id,
      sortField: id,
      sort: "text", // "text" | "number"
      width: width,
      align: "left",
      render: cell.textHtml(id),
      csvTitles: [title],
      csv: (d) => [d[id]],
      text: true, // CSV: exchange text (formula-escaped)
      shown: false,
      compact: false,
      frozen: false,
      startDir: "asc",
      cssClass: "",
    },
    extra
  );
}

/** A decimal column: sorts on its numeric copy, exports the exact value. */
function decimal(id, title, width, render, extra) {
  return spec(
    id,
    title,
    width,
    Object.assign(
      { field: "_n_" + id, sortField: "_n_" + id, sort: "number", align: "right", render: render, text: false, numericCopy: true },
      { csv: (d) => [plainText(d[id])] },
      extra
    )
  );
}

function timeColumn(id, title, width, render, extra) {
  return spec(
    id,
    title,
    width,
    Object.assign(
      { sort: "number", render: render, startDir: "desc", text: false, csv: (d, ctx) => [timeCsv(d[id], ctx)] },
      extra
    )
  );
}

function timeCsv(value, ctx) {
  const ts = toNumber(value);
  return isFinite(ts) ? ctx.clock.text(ts) : "";
}

function idColumn(id, title, noun, extra) {
  return spec(id, title, 150, Object.assign({ render: cell.idHtml(id, noun), cssClass: "cell-mono" }, extra));
}

const ACCOUNT = spec("account_label", "Account", 124, { render: cell.accountHtml, shown: true, frozen: true });
const SYMBOL = spec("symbol", "Symbol", 118, { shown: true, compact: true, frozen: true, cssClass: "cell-symbol" });
const SIDE = spec("side", "Side", 58, { render: cell.sideHtml, shown: true, compact: true });

function worded(id, label) {
  return { csvTitles: [labelTitle(id), labelTitle(id) + " (code)"], csv: (d) => [label(d), d[id]] };
}

function labelTitle(id) {
  return { type: "Type", status: "Status", time_in_force: "Time in force", outcome: "Outcome" }[id] || id;
}

export function orderColumns(allMode) {
  const specs = [
    SYMBOL,
    SIDE,
    spec("type", "Type", 116, Object.assign({ render: cell.typeHtml, shown: true }, worded("type", (d) => orderTypeLabel(d.type)))),
    spec("time_in_force", "Time in force", 110, Object.assign({ render: cell.timeInForceHtml }, worded("time_in_force", (d) => d.time_in_force))),
    decimal("price", "Price", 104, cell.priceHtml("price"), { shown: true, compact: true, fit: "price" }),
    spec("size", "Filled / Size", 150, {
      field: "_size",
      flashOn: ["filled", "quantity"],
      fit: "pair",
      sortField: "_n_quantity",
      sort: "number",
      align: "right",
      render: cell.pairHtml("filled", "quantity"),
      text: false,
      shown: true,
      csvTitles: ["Filled", "Size"],
      csv: (d) => [plainText(d.filled), plainText(d.quantity)],
    }),
    decimal("quantity", "Size", 100, cell.quantityHtml("quantity"), { fit: "qty" }),
    decimal("filled", "Filled", 100, cell.quantityHtml("filled"), { fit: "qty" }),
    decimal("quantity_remaining", "Remaining", 104, cell.quantityHtml("quantity_remaining"), { shown: true, fit: "qty" }),
    spec("remsize", "Left / Size", 84, {
      field: "_remsize",
      flashOn: ["quantity_remaining", "quantity"],
      sortField: "_n_quantity_remaining",
      sort: "number",
      align: "right",
      render: cell.pairHtml("quantity_remaining", "quantity"),
      text: false,
      phoneOnly: true,
      compact: true,
      csvTitles: [],
      csv: () => [],
    }),
    decimal("fill_pct", "Fill %", 76, cell.percentHtml("fill_pct")),
    decimal("notional", "Notional", 130, cell.moneyHtml("notional"), { shown: true, fit: "money" }),
    decimal("take_profit", "Take profit", 100, cell.optionalPriceHtml("take_profit"), { fit: "price" }),
    decimal("stop_loss", "Stop loss", 100, cell.optionalPriceHtml("stop_loss"), { fit: "price" }),
    spec("status", "Status", 124, Object.assign({ field: "_status", flashOn: ["status", "quantity_remaining"], render: cell.orderStatusHtml(false), shown: true }, worded("status", orderStatusLabel))),
    spec("status_short", "Status", 70, { field: "_status_s", flashOn: ["status", "quantity_remaining"], render: cell.orderStatusHtml(true), phoneOnly: true, compact: true, csvTitles: [], csv: () => [] }),
    spec("age", "Age", 72, {
      field: "_n_age",
      flashOn: [],
      sortField: "_n_age",
      sort: "number",
      align: "right",
      render: cell.ageHtml,
      text: false,
      shown: true,
      compact: true,
      csvTitles: ["Placed"],
      csv: (d, ctx) => [timeCsv(d._placed, ctx)],
    }),
    timeColumn("placed_at", "Placed", 100, cell.clockHtml("placed_at")),
    spec("client_order_id", "Client ID", 140, { shown: true, cssClass: "cell-mono cell-clip" }),
    idColumn("order_id", "Order ID", "order ID"),
    timeColumn("update_time", "Updated", 100, cell.agoHtml("update_time")),
  ];
  return allMode ? [ACCOUNT].concat(specs) : specs;
}

export function twapColumns(allMode) {
  const specs = [
    SYMBOL,
    SIDE,
    spec("progress", "Progress", 150, {
      field: "_progress",
      flashOn: ["progress_pct"],
      sortField: "_n_progress_pct",
      sort: "number",
      render: cell.progressNode,
      text: false,
      shown: true,
      compact: true,
      csvTitles: ["Progress %"],
      csv: (d) => [plainText(d.progress_pct)],
    }),
    spec("filled_quantity", "Filled / Size", 150, {
      field: "_filled",
      flashOn: ["filled_quantity", "total_quantity"],
      fit: "pair",
      sortField: "_n_total_quantity",
      sort: "number",
      align: "right",
      render: cell.pairHtml("filled_quantity", "total_quantity"),
      text: false,
      shown: true,
      csvTitles: ["Filled quantity", "Total quantity"],
      csv: (d) => [plainText(d.filled_quantity), plainText(d.total_quantity)],
    }),
    spec("slices", "Slices", 84, {
      field: "_slices",
      flashOn: ["filled_num_orders", "total_num_orders"],
      sortField: "total_num_orders",
      sort: "number",
      align: "right",
      render: cell.slicesHtml,
      text: false,
      shown: true,
      csvTitles: ["Slices (done / total)"],
      csv: (d, ctx) => [slicesText(twapSchedule(d, ctx.nowMs()))],
    }),
    spec("schedule", "Schedule", 118, {
      field: "_tick_schedule",
      sortField: "_n_drift",
      sort: "number",
      render: cell.scheduleHtml,
      text: false,
      shown: true,
      csvTitles: ["Schedule"],
      csv: (d, ctx) => [(driftText(twapSchedule(d, ctx.nowMs())) || { text: "" }).text],
    }),
    spec("elapsed", "Elapsed", 116, {
      field: "_tick_elapsed",
      sortField: "created_at",
      sort: "number",
      render: cell.elapsedHtml,
      text: false,
      shown: true,
      csvTitles: [],
      csv: () => [],
    }),
    decimal("average_fill_price", "Avg fill price", 110, cell.derivedPriceHtml("average_fill_price"), {
      shown: true,
      fit: "price",
    }),
    spec("time_left", "Time left", 110, {
      field: "_tick_left",
      sortField: "estimated_end",
      sort: "number",
      render: cell.timeLeftHtml,
      text: false,
      shown: true,
      compact: true,
      csvTitles: ["Time left"],
      csv: (d, ctx) => [timeLeftText(twapSchedule(d, ctx.nowMs()))],
    }),
    timeColumn("estimated_end", "Estimated end", 110, cell.clockHtml("estimated_end"), { startDir: "asc" }),
    spec("order_interval_secs", "Interval", 80, { sort: "number", align: "right", render: cell.intervalHtml, text: false, csvTitles: ["Interval (s)"] }),
    spec("reduce_only", "Reduce-only", 90, { render: cell.boolHtml("reduce_only"), text: false, csv: (d) => [d.reduce_only ? "yes" : "no"] }),
    spec("status", "Status", 96, Object.assign({ field: "_status", render: cell.twapStatusHtml, shown: true }, worded("status", (d) => twapStatusLabel(d.status)))),
    spec("client_twap_id", "Client ID", 140, { shown: true, cssClass: "cell-mono cell-clip" }),
    idColumn("twap_id", "TWAP ID", "TWAP ID"),
    timeColumn("created_at", "Created", 100, cell.clockHtml("created_at")),
    timeColumn("updated_at", "Updated", 100, cell.agoHtml("updated_at")),
  ];
  return allMode ? [ACCOUNT].concat(specs) : specs;
}

export function closedColumns(allMode) {
  const specs = [
    SYMBOL,
    SIDE,
    spec("type", "Type", 116, Object.assign({ render: cell.typeHtml, shown: true }, worded("type", (d) => orderTypeLabel(d.type)))),
    decimal("price", "Price", 104, cell.priceHtml("price"), { shown: true, fit: "price" }),
    spec("size", "Filled / Size", 150, {
      field: "_size",
      flashOn: ["filled", "quantity"],
      fit: "pair",
      sortField: "_n_quantity",
      sort: "number",
      align: "right",
      render: cell.pairHtml("filled", "quantity"),
      text: false,
      shown: true,
      csvTitles: ["Filled", "Size"],
      csv: (d) => [plainText(d.filled), plainText(d.quantity)],
    }),
    decimal("fill_price", "Fill price", 104, cell.derivedPriceHtml("fill_price"), { shown: true, fit: "price" }),
    spec("outcome", "Outcome", 100, Object.assign({ render: cell.outcomeHtml, shown: true, compact: true }, worded("outcome", (d) => outcomeLabel(d.outcome)))),
    timeColumn("closed_at", "Closed", 96, cell.clockHtml("closed_at"), { shown: true, compact: true }),
    spec("reason", "Reason", 220, { shown: true, cssClass: "cell-clip" }),
    spec("client_order_id", "Client ID", 150, { shown: true, cssClass: "cell-mono cell-clip" }),
    idColumn("id", "Order ID", "order ID"),
  ];
  return allMode ? [ACCOUNT].concat(specs) : specs;
}

// What the search box looks in, per table: codes and their words alike ("partially", "take profit").
const SEARCH = {
  orders: (d) => [d.symbol, d.id, d.order_id, d.client_order_id, d.account_label, d.side, sideLabel(d.side), d.type,
    orderTypeLabel(d.type), d.status, orderStatusLabel(d)],
  twaps: (d) => [d.symbol, d.id, d.twap_id, d.client_twap_id, d.account_label, d.side, sideLabel(d.side), d.status,
    twapStatusLabel(d.status)],
  closed: (d) => [d.symbol, d.id, d.client_order_id, d.account_label, d.side, sideLabel(d.side), d.type,
    orderTypeLabel(d.type), d.status, d.outcome, outcomeLabel(d.outcome), d.reason],
};

/** The lower-case text the search matches in, for one row. */
export function searchText(kind, row) {
  let text = "";
  for (const v of SEARCH[kind](row)) {
    if (v !== null && v !== undefined && v !== "") {
      text += String(v).toLowerCase() + "\u0000";
    }
  }
  return text;
}

function numericCopy(value) {
  const n = toNumber(value);
  return n === n ? n : null;
}

/** Adds the synthetic fields a kind's cells and sorters read (same property order on every row). */
export function prepareRow(kind, row, numericIds) {
  for (let i = 0; i < numericIds.length; i++) {
    row["_n_" + numericIds[i]] = numericCopy(row[numericIds[i]]);
  }
  if (kind === "twaps") {
    row._progress = row.progress_pct;
    row._n_progress_pct = numericCopy(row.progress_pct);
    row._n_total_quantity = numericCopy(row.total_quantity);
    row._filled = row.filled_quantity + "|" + row.total_quantity;
    row._slices = row.filled_num_orders + "|" + row.total_num_orders + "|" + row.filled_quantity;
    row._status = row.status;
    // Schedule cells depend on the time: the page's timer re-renders them (these only key the cells).
    row._tick_schedule = row._tick_elapsed = row._tick_left = row.created_at + "|" + row.estimated_end;
    const schedule = twapSchedule(row, Date.now());
    row._n_drift = schedule.driftSeconds;
    return;
  }
  row._n_quantity = numericCopy(row.quantity);
  row._size = row.filled + "|" + row.quantity;
  if (kind === "orders") {
    row._n_quantity_remaining = numericCopy(row.quantity_remaining);
    row._remsize = row.quantity_remaining + "|" + row.quantity;
    row._status = row._status_s = row.status + "|" + row.quantity_remaining + "|" + (row.refused || "");
    const placed = numericCopy(row.placed_at);
    row._placed = placed !== null ? placed : numericCopy(row.update_time);
    row._n_age = row._placed === null ? null : -row._placed; // youngest first when ascending
  }
}

export { PRICE_FIELDS };
