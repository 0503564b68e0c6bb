/*
 * The tables' counts ("4,000 orders", "shown 3 of 9 orders", "Loading 1,500 of 4,000 orders") and the
 * filters' note ("Filtered by symbol NVDA-USD: showing 3 of 9 open orders…") with the empty tables' words.
 */

import { loadingText } from "./status.js";

const NOUNS = { orders: ["order", "orders"], twaps: ["TWAP", "TWAPs"], closed: ["order", "orders"] };

function grouped(n) {
  return n.toLocaleString("en-US");
}

/** A table's count. Nothing says "0" or a number before an account's first data is in. */
export function countText(name, counts, infos, fatal) {
  const loaded = infos.filter((i) => i.loaded);
  if (!loaded.length && !fatal) {
    const loading = infos.find((i) => i.loading);
    return name === "orders" && loading ? loadingText(loading.loading) : "Loading…";
  }
  const noun = NOUNS[name][counts.total === 1 ? 0 : 1];
  const total = grouped(counts.total) + " " + noun;
  let text = counts.shown === counts.total ? total : "shown " + grouped(counts.shown) + " of " + total;
  const waiting = infos.length - loaded.length;
  if (waiting > 0) {
    text += " (" + waiting + (waiting === 1 ? " account" : " accounts") + " loading)";
  }
  return text;
}

/** What the filters hide, in words; "" when nothing is filtered. */
export function filterText(symbol, query, orders, twaps) {
  const parts = [];
  if (symbol) {
    parts.push("symbol " + symbol);
  }
  if (query) {
    parts.push("search “" + query + "”");
  }
  if (!parts.length) {
    return "";
  }
  return (
    "Filtered by " + parts.join(" and ") + ": showing " + grouped(orders.shown) + " of " + grouped(orders.total) +
    " open orders and " + twaps.shown + " of " + twaps.total + " TWAPs."
  );
}
