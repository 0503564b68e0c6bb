// Sequencing, snapshot parts and backoff (moved here from the browser tests: no DOM needed).
import { test } from "node:test";
import assert from "node:assert/strict";

import { SeqTracker, SnapshotAssembler, backoffDelayMs, socketUrl } from "../../static/js/live/protocol.js";

test("seq tracker rules", () => {
  const t = new SeqTracker();
  const v = (type, seq, now = 0) => {
    const r = t.check({ type, account: 7, seq }, now);
    return (r.apply ? "apply" : "skip") + (r.resync ? "+resync" : "");
  };
  assert.deepEqual(
    [
      v("diff", 1), // no snapshot yet: ask for one
      v("diff", 2, 100), // asked a moment ago: just wait
      v("snapshot", 5),
      v("diff", 6),
      v("diff", 6), // duplicate
      v("status", 6),
      v("status", 7), // a seq we never saw: doubt
      v("snapshot", 7),
      v("diff", 9, 10000), // gap
      v("diff", 10, 12000), // still waiting
      v("diff", 11, 20000), // waited too long: ask again
    ],
    ["skip+resync", "skip", "apply", "apply", "skip", "apply", "apply+resync", "apply", "skip+resync", "skip", "skip+resync"]
  );
});

test("snapshot assembler rules", () => {
  const a = new SnapshotAssembler();
  const v = (seq, part, parts, account = 7) => {
    const r = a.add({ type: "snapshot", account, seq, part, parts, orders: [part], twaps: [], closed: [] });
    return (r.snapshot ? "whole:" + r.snapshot.orders.join("") : "wait") + (r.resync ? "+resync" : "");
  };
  assert.deepEqual(
    [
      v(1, undefined, undefined), // an old-style whole snapshot
      v(2, 1, 1),
      v(3, 1, 3), v(3, 2, 3), v(3, 3, 3),
      v(4, 2, 2), // no part 1: doubt
      v(5, 1, 2), v(6, 2, 2), // another seq
      v(7, 1, 3), v(7, 3, 3), // a part skipped
      v(8, 1, 2), v(9, 1, 2), v(9, 2, 2), // a new part 1 replaces an unfinished set
      v(10, 1, 2), v(10, 2, 3), // the count changed
      v(11, 1, 2), v(11, 1, 2, 8), v(11, 2, 2), v(11, 2, 2, 8), // accounts apart
      v(12, 0, 1), v(12, 2, 1), // nonsense
    ],
    [
      "whole:", "whole:1", "wait", "wait", "whole:123", "wait+resync", "wait", "wait+resync",
      "wait", "wait+resync", "wait", "wait", "whole:12", "wait", "wait+resync",
      "wait", "wait", "whole:12", "whole:12", "wait+resync", "wait+resync",
    ]
  );
});

test("closed rows may be in any part; progress counts the orders so far against the totals", () => {
  const a = new SnapshotAssembler();
  const totals = { orders: 5, twaps: 1, closed: 2 };
  const part = (n, orders, closed) => ({ type: "snapshot", account: 7, seq: 3, part: n, parts: 3, totals, orders, twaps: n === 1 ? ["t"] : [], closed });
  assert.equal(a.progress(7), null);
  a.add(part(1, ["a", "b"], []));
  assert.deepEqual(a.progress(7), { part: 1, parts: 3, orders: 2, twaps: 1, totals });
  a.add(part(2, ["c", "d"], ["x"]));
  assert.equal(a.progress(7).orders, 4);
  const done = a.add(part(3, ["e"], ["y"]));
  assert.deepEqual(done.snapshot.orders, ["a", "b", "c", "d", "e"]);
  assert.deepEqual(done.snapshot.closed, ["x", "y"]);
  assert.deepEqual(done.snapshot.totals, totals);
  assert.equal(a.progress(7), null);
});

test("backoff is capped exponential with full jitter", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 10, 40].map((n) => backoffDelayMs(n, 500, 30000, () => 0.999999)),
    [499, 999, 1999, 3999, 29999, 29999]
  );
  assert.equal(backoffDelayMs(6, 500, 30000, () => 0), 0);
});

test("socket URL from a path or a full URL", () => {
  assert.equal(socketUrl("/ws/accounts/7/", { protocol: "https:", host: "dash.example:8443" }), "wss://dash.example:8443/ws/accounts/7/");
  assert.equal(socketUrl("/ws/accounts/all/", { protocol: "http:", host: "127.0.0.1:8000" }), "ws://127.0.0.1:8000/ws/accounts/all/");
  assert.equal(socketUrl("ws://127.0.0.1:9/ws/accounts/7/", { protocol: "https:", host: "x" }), "ws://127.0.0.1:9/ws/accounts/7/");
});
