/*
 * Words a trader uses, for the codes the exchange and the server send. The raw code stays available (a
 * tooltip, the CSV, the search). Pure functions; unit tests in tests/js/labels.test.js.
 */

import { parseDecimal } from "./decimal.js";

/** "SOME_CODE" → "Some code": the fallback for a code this page does not know yet. */
export function humanize(code) {
  if (code === null || code === undefined || code === "") {
    return "";
  }
  const text = String(code).replace(/_/g, " ").toLowerCase().trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const ORDER_STATUS = {
  ACK: "Open",
  NEW: "Open",
  OPEN: "Open",
  PARTIALLY_FILLED: "Partially filled",
  MODIFIED: "Modified",
  FILLED: "Filled",
  CANCELLED: "Cancelled",
  CANCELED: "Cancelled",
  REJECTED: "Rejected",
  EXPIRED: "Expired",
};

function isZero(value) {
  const d = parseDecimal(value);
  return d !== null && d.int === "0" && d.frac === "";
}

/**
 * An order's status in words. QFEX reports an order that is partly filled and still open as "FILLED": while
 * quantity remains it is "Partially filled" (an order that has left the book is "Filled").
 */
export function orderStatusLabel(row) {
  const code = row.status;
  if (row.unconfirmed === true) {
    return "Unconfirmed"; // a push says it is live after a read proved it gone; the next read settles it
  }
  if (code === "FILLED" && row.quantity_remaining !== undefined && row.quantity_remaining !== null) {
    return isZero(row.quantity_remaining) ? "Filled" : "Partially filled";
  }
  if ((code === "ACK" || code === "MODIFIED") && row.filled !== undefined && row.filled !== null && !isZero(row.filled)) {
    return "Partially filled";
  }
  return ORDER_STATUS[code] || humanize(code);
}

/** A short form for the phone's narrow Status column. */
export function orderStatusShort(row) {
  const label = orderStatusLabel(row);
  return label === "Partially filled" ? "Partial" : label;
}

/** The CSS tone of a status label: open | partial | done | cancelled | other. */
export function statusTone(label) {
  switch (label) {
    case "Open":
    case "Modified":
      return "open";
    case "Partially filled":
    case "Partial":
      return "partial";
    case "Filled":
      return "done";
    case "Cancelled":
    case "Rejected":
    case "Expired":
    case "Closed":
      return "cancelled";
    default:
      return "other";
  }
}

const ORDER_TYPE = {
  LIMIT: "Limit",
  MARKET: "Market",
  ALO: "Post-only limit",
  POST_ONLY: "Post-only limit",
  TAKE_PROFIT: "Take profit",
  TAKE_PROFIT_MARKET: "Take profit (market)",
  TAKE_PROFIT_LIMIT: "Take profit (limit)",
  STOP_LOSS: "Stop loss",
  STOP: "Stop",
  STOP_MARKET: "Stop (market)",
  STOP_LIMIT: "Stop (limit)",
  TWAP: "TWAP",
};

export function orderTypeLabel(code) {
  return ORDER_TYPE[code] || humanize(code);
}

const TIME_IN_FORCE = {
  GTC: "Good till cancelled",
  IOC: "Immediate or cancel",
  FOK: "Fill or kill",
  GTD: "Good till date",
  ALO: "Add liquidity only",
};

export function timeInForceLabel(code) {
  return TIME_IN_FORCE[code] || humanize(code);
}

export function sideLabel(code) {
  return code === "BUY" ? "Buy" : code === "SELL" ? "Sell" : humanize(code);
}

const TWAP_STATUS = { RUNNING: "Running", PAUSED: "Paused", COMPLETED: "Completed", CANCELLED: "Cancelled" };

export function twapStatusLabel(code) {
  return TWAP_STATUS[code] || humanize(code);
}

const OUTCOME = { filled: "Filled", cancelled: "Cancelled", rejected: "Rejected", closed: "Closed" };

/** A closed row's outcome in words ("closed": a reconcile proved it gone without saying why). */
export function outcomeLabel(outcome) {
  return OUTCOME[outcome] || humanize(outcome) || "Closed";
}

export const STATE_WORDS = {
  live: "Live",
  stale: "Stale",
  connecting: "Connecting",
  loading: "Loading",
  error: "Error",
  idle: "Idle",
};

export function stateLabel(state) {
  return STATE_WORDS[state] || humanize(state);
}
