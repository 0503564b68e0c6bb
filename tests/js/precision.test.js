// Per-symbol precision inferred from every value seen.
import { test } from "node:test";
import assert from "node:assert/strict";

import { PrecisionBook } from "../../static/js/live/precision.js";

test("each symbol gets the most decimals any of its prices and quantities has", () => {
  const book = new PrecisionBook();
  assert.equal(book.observe({ symbol: "AAPL-USD", price: "69.8", quantity: "10" }), true);
  assert.equal(book.places("AAPL-USD", "price"), 1);
  assert.equal(book.observe({ symbol: "AAPL-USD", price: "72.67", quantity: "2.5", quantity_remaining: "0.25" }), true);
  assert.equal(book.places("AAPL-USD", "price"), 2);
  assert.equal(book.places("AAPL-USD", "qty"), 2);
  // Nothing new: nothing grows.
  assert.equal(book.observe({ symbol: "AAPL-USD", price: "70.1", quantity: "1" }), false);
  // Another symbol keeps its own, and float artefacts do not count as ticks.
  book.observe({ symbol: "BTC-USD", price: "64000.5", total_quantity: "1.2999999999999998", filled_quantity: "0.001" });
  assert.equal(book.places("BTC-USD", "price"), 1);
  assert.equal(book.places("BTC-USD", "qty"), 3);
  assert.equal(book.maxPlaces("price"), 2);
  assert.equal(book.maxPlaces("qty"), 3);
  assert.equal(book.places("NOPE", "price"), 0);
});

test("derived values (average fill price, notional) do not teach the tick", () => {
  const book = new PrecisionBook();
  book.observe({ symbol: "X", price: "1.5", average_fill_price: "1.533333", notional: "15.123456" });
  assert.equal(book.places("X", "price"), 1);
});

test("a symbol is known once any of its prices was seen", () => {
  const book = new PrecisionBook();
  book.observe({ symbol: "X", total_quantity: "5" });
  assert.equal(book.known("X", "price"), false);
  assert.equal(book.known("X", "qty"), true);
  book.observe({ symbol: "X", price: "10" });
  assert.equal(book.known("X", "price"), true);
  assert.equal(book.known("Y", "price"), false);
});

test("how wide a column's numbers get: whole digits grouped, the point, the most decimals", () => {
  const book = new PrecisionBook();
  book.observe({ symbol: "US100-USD", price: "20861.5", quantity: "0.94", notional: "19609.34" });
  book.observe({ symbol: "EURUSD-USD", price: "1.10696", quantity: "90200", average_fill_price: "123456.7" });
  assert.equal(book.widthChars("price"), 7 + 1 + 5); // "123,456" . 5 decimals
  assert.equal(book.widthChars("qty"), 6 + 1 + 2); // "90,200" . 2 decimals
  assert.equal(book.widthChars("pair"), 2 * 9 + 3);
  assert.equal(book.widthChars("money"), 6 + 4); // "19,609" and ".34" and a sign
});
