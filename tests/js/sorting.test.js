// Several columns at once, primary first; Tabulator gets them reversed behind the key tie-break.
import { test } from "node:test";
import assert from "node:assert/strict";

import { clickSort, parseSort, sortText, tabulatorSort } from "../../static/js/live/sorting.js";

test("a click sorts by one column, flipping it; shift adds or flips where it stands", () => {
  let sort = [{ id: "age", dir: "asc" }];
  sort = clickSort(sort, "price", "asc", false);
  assert.deepEqual(sort, [{ id: "price", dir: "asc" }]);
  sort = clickSort(sort, "price", "asc", false);
  assert.deepEqual(sort, [{ id: "price", dir: "desc" }]);
  sort = clickSort(sort, "symbol", "asc", true);
  assert.deepEqual(sort, [{ id: "price", dir: "desc" }, { id: "symbol", dir: "asc" }]);
  sort = clickSort(sort, "price", "asc", true);
  assert.deepEqual(sort, [{ id: "price", dir: "asc" }, { id: "symbol", dir: "asc" }]);
  assert.equal(sortText(sort), "price.asc,symbol.asc");
  // A plain click on the second sort makes it the only one.
  assert.deepEqual(clickSort(sort, "symbol", "asc", false), [{ id: "symbol", dir: "asc" }]);
});

test("sort text from a URL: unknown columns and bad directions are dropped", () => {
  const known = (id) => ["price", "symbol"].includes(id);
  assert.deepEqual(parseSort("price.desc,symbol.asc", known), [{ id: "price", dir: "desc" }, { id: "symbol", dir: "asc" }]);
  assert.deepEqual(parseSort("nope.asc,price.up,price.asc,price.desc", known), [{ id: "price", dir: "asc" }]);
  assert.deepEqual(parseSort("", known), []);
});

test("Tabulator's list is reversed (it evaluates the last first) behind the key", () => {
  const field = (id) => "_n_" + id;
  assert.deepEqual(tabulatorSort([], field), []);
  assert.deepEqual(tabulatorSort([{ id: "price", dir: "desc" }, { id: "symbol", dir: "asc" }], field), [
    { column: "_key", dir: "desc" },
    { column: "_n_symbol", dir: "asc" },
    { column: "_n_price", dir: "desc" },
  ]);
});
