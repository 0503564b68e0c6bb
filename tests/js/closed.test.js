// One Closed row per order id: add or replace from a diff's `closed`, withdraw by its `remove.closed`.
import { test } from "node:test";
import assert from "node:assert/strict";

import { ClosedStore } from "../../static/js/live/closed.js";
import { FeedModel } from "../../static/js/live/feed.js";

const row = (id, reason) => ({ id, reason: reason || "closed" });
const ids = (store, account) => store.byAccount.get(account).map((r) => r.id);

test("a diff's closed row replaces the row of its id and moves it to the top", () => {
  const store = new ClosedStore(5);
  store.replace(7, [row("b"), row("a")]);
  const result = store.add(7, [row("a", "Cancelled")]);
  assert.deepEqual(result, { added: [row("a", "Cancelled")], dropped: [] });
  assert.deepEqual(store.byAccount.get(7), [row("a", "Cancelled"), row("b")]);
  // Rows of one diff are listed in the order they closed: the last of an id wins, newest first.
  store.add(7, [row("c"), row("b", "Filled"), row("c", "Expired")]);
  assert.deepEqual(store.byAccount.get(7), [row("c", "Expired"), row("b", "Filled"), row("a", "Cancelled")]);
  assert.equal(store.count(), 3);
});

test("remove.closed withdraws an order's Closed row: a complete read listed it again", () => {
  const store = new ClosedStore(5);
  store.replace(7, [row("a"), row("b")]);
  assert.deepEqual(store.add(7, [], ["a", "not-there", 42]), { added: [], dropped: ["a"] });
  assert.deepEqual(ids(store, 7), ["b"]);
  assert.deepEqual(store.add(7, [], ["nothing"]), { added: [], dropped: [] });
  // Closed and withdrawn in one diff: withdrawn wins (the server never sends both for one id).
  assert.deepEqual(store.add(7, [row("c")], ["c", "b"]), { added: [], dropped: ["b"] });
  assert.equal(store.count(), 0);
});

test("the limit still holds, and what it pushes out is dropped", () => {
  const store = new ClosedStore(3);
  store.replace(7, [row("a"), row("b"), row("c")]);
  assert.deepEqual(store.add(7, [row("d"), row("b", "again")]), { added: [row("b", "again"), row("d")], dropped: ["c"] });
  assert.deepEqual(ids(store, 7), ["b", "d", "a"]);
});

function fakeModel() {
  const calls = [];
  const view = (name) => ({
    applySnapshot: (account, rows) => calls.push([name, "snapshot", rows.map((r) => r.id)]),
    applyDiff: (account, upserts, removes) => calls.push([name, "diff", upserts.map((r) => r.id), removes]),
  });
  const info = { state: "live", dataAsOf: null };
  const states = {
    get: () => info,
    values: () => [info],
    takeStatus: () => {},
    rememberLabel: () => {},
  };
  const hooks = { resync: () => {}, onApplied: () => {}, onHealthy: () => {} };
  return { model: new FeedModel({ orders: view("orders"), twaps: view("twaps"), closed: view("closed") }, states, hooks), calls };
}

test("the page withdraws a Closed row a diff's remove.closed names, and shows the order open again", () => {
  const { model, calls } = fakeModel();
  model.handle({ type: "snapshot", account: 7, seq: 1, as_of: 1, status: {}, orders: [], twaps: [], closed: [row("a")] });
  model.handle({
    type: "diff",
    account: 7,
    seq: 2,
    as_of: 2,
    upsert: { orders: [{ id: "a", status: "ACK" }], twaps: [] },
    remove: { orders: [], twaps: [], closed: ["a"] },
    closed: [],
  });
  assert.deepEqual(calls.filter((c) => c[1] === "diff"), [
    ["closed", "diff", [], ["a"]],
    ["orders", "diff", ["a"], []],
    ["twaps", "diff", [], []],
  ]);
  assert.equal(model.closed.count(), 0);
  // A late terminal push after that: one Closed row again, never two.
  model.handle({ type: "diff", account: 7, seq: 3, as_of: 3, upsert: {}, remove: { orders: ["a"] }, closed: [row("a", "Cancelled")] });
  model.handle({ type: "diff", account: 7, seq: 4, as_of: 4, upsert: {}, remove: {}, closed: [row("a", "Cancelled")] });
  assert.deepEqual(model.closed.byAccount.get(7), [row("a", "Cancelled")]);
});
