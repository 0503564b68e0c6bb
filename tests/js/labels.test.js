// Status, type and outcome words.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  humanize,
  orderStatusLabel,
  orderStatusShort,
  orderTypeLabel,
  outcomeLabel,
  sideLabel,
  statusTone,
  twapStatusLabel,
} from "../../static/js/live/labels.js";

test("order statuses in words, a partly filled open order is not 'Filled'", () => {
  assert.equal(orderStatusLabel({ status: "ACK", quantity_remaining: "10", filled: "0" }), "Open");
  assert.equal(orderStatusLabel({ status: "FILLED", quantity_remaining: "0.7", filled: "9.3" }), "Partially filled");
  assert.equal(orderStatusLabel({ status: "FILLED", quantity_remaining: "0", filled: "10" }), "Filled");
  assert.equal(orderStatusLabel({ status: "MODIFIED", quantity_remaining: "5", filled: "0" }), "Modified");
  assert.equal(orderStatusLabel({ status: "CANCELLED" }), "Cancelled");
  assert.equal(orderStatusLabel({ status: "SOMETHING_NEW" }), "Something new");
  assert.equal(orderStatusLabel({ status: "ACK", filled: "0", unconfirmed: true }), "Unconfirmed");
  assert.equal(orderStatusShort({ status: "FILLED", quantity_remaining: "1" }), "Partial");
  assert.equal(statusTone("Partially filled"), "partial");
  assert.equal(statusTone("Cancelled"), "cancelled");
});

test("order types, sides, TWAP statuses and outcomes in words", () => {
  assert.equal(orderTypeLabel("TAKE_PROFIT"), "Take profit");
  assert.equal(orderTypeLabel("STOP_LOSS"), "Stop loss");
  assert.equal(orderTypeLabel("ALO"), "Post-only limit");
  assert.equal(orderTypeLabel("LIMIT"), "Limit");
  assert.equal(orderTypeLabel("ICEBERG_LIMIT"), "Iceberg limit");
  assert.equal(sideLabel("BUY"), "Buy");
  assert.equal(sideLabel("SELL"), "Sell");
  assert.equal(twapStatusLabel("RUNNING"), "Running");
  assert.equal(outcomeLabel("filled"), "Filled");
  assert.equal(outcomeLabel("cancelled"), "Cancelled");
  assert.equal(outcomeLabel("closed"), "Closed");
  assert.equal(humanize(null), "");
});
