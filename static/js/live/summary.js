/*
 * The summary bar: how many orders are shown, the buy and sell notional, and per symbol the count and the net
 * (buy minus sell notional). Computed from the numeric copies the table keeps (`_n_notional`); shown in money
 * format. Pure; unit tests in tests/js/summary.test.js.
 */

export function summarize(rows) {
  const out = { count: 0, buy: 0, sell: 0, symbols: [] };
  const bySymbol = new Map();
  for (const d of rows) {
    out.count += 1;
    const notional = typeof d._n_notional === "number" ? d._n_notional : 0;
    let s = bySymbol.get(d.symbol);
    if (s === undefined) {
      s = { symbol: d.symbol, count: 0, buy: 0, sell: 0, net: 0 };
      bySymbol.set(d.symbol, s);
    }
    s.count += 1;
    if (d.side === "BUY") {
      out.buy += notional;
      s.buy += notional;
    } else if (d.side === "SELL") {
      out.sell += notional;
      s.sell += notional;
    }
  }
  for (const s of bySymbol.values()) {
    s.net = s.buy - s.sell;
    out.symbols.push(s);
  }
  out.symbols.sort((a, b) => b.count - a.count || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  return out;
}

/** A sum as money text: "1,234.50", "-20.00". */
export function sumText(n) {
  const fixed = Math.abs(n).toFixed(2);
  const [int, frac] = fixed.split(".");
  const sign = n < 0 && fixed !== "0.00" ? "-" : "";
  return sign + int.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + frac;
}

/** A net amount with its sign: "+1,234.50", "-20.00", "0.00". */
export function netText(n) {
  const text = sumText(n);
  return text === "0.00" || text.startsWith("-") ? text : "+" + text;
}
