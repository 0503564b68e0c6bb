/*
 * Row details. On a phone the tables show a few columns; tapping a row opens a dialog with every column of
 * the row. (Copy buttons in cells are handled by static/js/site.js, like every [data-copy] on the site.)
 */

/** Fill and open the details dialog for one row of `view`. */
export function showDetails(doc, view, data) {
  const dialog = doc.getElementById("row-details");
  const list = doc.getElementById("row-details-list");
  const title = doc.getElementById("row-details-title");
  if (!dialog || !list) {
    return;
  }
  title.textContent = [data.symbol, data.side === "BUY" ? "Buy" : data.side === "SELL" ? "Sell" : data.side].filter(Boolean).join(" · ") || "Details";
  const items = [];
  for (const spec of view.specs) {
    if (spec.phoneOnly) {
      continue;
    }
    const dt = doc.createElement("dt");
    dt.textContent = spec.title;
    const dd = doc.createElement("dd");
    const out = spec.render(data, view.ctx);
    if (typeof out === "string") {
      dd.innerHTML = out; // the renderers escape every value (cells.js)
    } else {
      dd.append(out);
    }
    items.push(dt, dd);
  }
  list.replaceChildren(...items);
  if (!dialog.open) {
    dialog.showModal();
  }
}

/** In compact (phone) mode a tap on a row opens its details. */
export function setupRowDetails(doc, view, isCompact) {
  view.table.on("rowClick", (event, row) => {
    if (isCompact() && !(event.target.closest && event.target.closest("button"))) {
      showDetails(doc, view, row.getData());
    }
  });
}
