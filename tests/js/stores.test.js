// Closed orders per account, the summary bar's sums, and CSV fields.
import { test } from "node:test";
import assert from "node:assert/strict";

import { ClosedStore } from "../../static/js/live/closed.js";
import { csvField } from "../../static/js/live/csv.js";
import { netText, sumText, summarize } from "../../static/js/live/summary.js";

test("closed orders: a snapshot replaces an account's list, diffs add on top, at most the limit", () => {
  const store = new ClosedStore(3);
  const row = (id) => ({ id });
  assert.deepEqual(store.replace(7, [row("a"), row("b"), row("a")]).rows.map((r) => r.id), ["a", "b"]);
  // A diff lists rows in the order they closed; a known id's row is replaced and moves up (one per id).
  assert.deepEqual(store.add(7, [row("c"), row("b")]), { added: [row("b"), row("c")], dropped: [] });
  assert.deepEqual(store.add(7, [row("d"), row("e")]), { added: [row("e"), row("d")], dropped: ["c", "a"] });
  assert.deepEqual(store.byAccount.get(7).map((r) => r.id), ["e", "d", "b"]);
  store.add(8, [row("x"), { nope: 1 }, null]);
  assert.equal(store.count(), 4);
  assert.deepEqual(store.replace(7, [row("c")]).dropped.sort(), ["b", "d", "e"]);
});

test("summary: count, buy and sell notional, per symbol count and net", () => {
  const rows = [
    { symbol: "AAPL-USD", side: "BUY", _n_notional: 1000.5 },
    { symbol: "AAPL-USD", side: "SELL", _n_notional: 250.25 },
    { symbol: "TSLA-USD", side: "SELL", _n_notional: 99.99 },
    { symbol: "TSLA-USD", side: "SELL", _n_notional: null },
  ];
  const s = summarize(rows);
  assert.equal(s.count, 4);
  assert.equal(sumText(s.buy), "1,000.50");
  assert.equal(sumText(s.sell), "350.24");
  assert.deepEqual(s.symbols.map((x) => [x.symbol, x.count, netText(x.net)]), [
    ["AAPL-USD", 2, "+750.25"],
    ["TSLA-USD", 2, "-99.99"],
  ]);
  assert.equal(netText(0), "0.00");
  assert.equal(sumText(1234567.004), "1,234,567.00");
});

test("CSV fields: formulas from the exchange are not run; quotes are doubled", () => {
  assert.equal(csvField('=HYPERLINK("x")', true), '"\'=HYPERLINK(""x"")"');
  assert.equal(csvField("-5", false), "-5");
  assert.equal(csvField("-5", true), "'-5");
  assert.equal(csvField(null, true), "");
  assert.equal(csvField("a,b", false), '"a,b"');
});
