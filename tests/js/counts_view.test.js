// Counts and the filters' note.
import { test } from "node:test";
import assert from "node:assert/strict";

import { countText, filterText } from "../../static/js/live/counts_view.js";

test("nothing says a number before the first data is in", () => {
  const loading = [{ loaded: false, loading: { done: 1500, total: 4000 } }];
  assert.equal(countText("orders", { total: 3000, shown: 3000 }, loading, false), "Loading 1,500 of 4,000 orders");
  assert.equal(countText("twaps", { total: 0, shown: 0 }, loading, false), "Loading…");
  assert.equal(countText("twaps", { total: 0, shown: 0 }, [{ loaded: false, loading: null }], false), "Loading…");
});

test("counts, filtered counts, and accounts still loading", () => {
  const infos = [{ loaded: true }, { loaded: false }];
  assert.equal(countText("orders", { total: 4000, shown: 4000 }, [{ loaded: true }], false), "4,000 orders");
  assert.equal(countText("twaps", { total: 1, shown: 1 }, [{ loaded: true }], false), "1 TWAP");
  assert.equal(countText("orders", { total: 9, shown: 3 }, infos, false), "shown 3 of 9 orders (1 account loading)");
});

test("the filters' note says what is filtered and how much shows", () => {
  assert.equal(filterText("", "", { shown: 9, total: 9 }, { shown: 2, total: 2 }), "");
  assert.equal(
    filterText("NVDA-USD", "desk", { shown: 3, total: 1200 }, { shown: 0, total: 2 }),
    "Filtered by symbol NVDA-USD and search “desk”: showing 3 of 1,200 open orders and 0 of 2 TWAPs."
  );
});
