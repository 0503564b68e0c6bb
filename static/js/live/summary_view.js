/*
 * Renders the summary bar (summary.js computes it): open orders shown, buy and sell notional, and one button
 * per symbol with its count and net; a symbol's button filters the page to it.
 */

import { netText, sumText, summarize } from "./summary.js";

const MAX_SYMBOLS = 12;

function setText(node, text) {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

export function renderSummary(doc, rows, filtering, onSymbol) {
  const s = summarize(rows);
  setText(doc.getElementById("summary-count"), s.count.toLocaleString("en-US") + (filtering ? " shown" : ""));
  setText(doc.getElementById("summary-buy"), sumText(s.buy));
  setText(doc.getElementById("summary-sell"), sumText(s.sell));
  const list = doc.getElementById("summary-symbols");
  const key = s.symbols
    .slice(0, MAX_SYMBOLS)
    .map((x) => x.symbol + ":" + x.count + ":" + netText(x.net))
    .join("|");
  if (list.dataset.key === key) {
    return;
  }
  list.dataset.key = key;
  const items = s.symbols.slice(0, MAX_SYMBOLS).map((x) => {
    const li = doc.createElement("li");
    const button = doc.createElement("button");
    button.type = "button";
    button.className = "summary-symbol";
    button.dataset.symbol = x.symbol;
    button.title = "Show only " + x.symbol;
    const name = doc.createElement("span");
    name.className = "summary-symbol-name";
    name.textContent = x.symbol;
    const count = doc.createElement("span");
    count.className = "summary-symbol-count";
    count.textContent = x.count.toLocaleString("en-US") + (x.count === 1 ? " order" : " orders");
    const net = doc.createElement("span");
    net.className = "summary-symbol-net " + (x.net > 0 ? "side-buy" : x.net < 0 ? "side-sell" : "");
    net.textContent = "net " + netText(x.net);
    button.append(name, " ", count, " ", net);
    button.addEventListener("click", () => onSymbol(x.symbol));
    li.append(button);
    return li;
  });
  if (s.symbols.length > MAX_SYMBOLS) {
    const li = doc.createElement("li");
    li.className = "summary-more";
    li.textContent = "and " + (s.symbols.length - MAX_SYMBOLS) + " more symbols";
    items.push(li);
  }
  list.replaceChildren(...items);
}
