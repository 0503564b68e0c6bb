/*
 * Row details and copying ids. On a phone the tables show a few columns; tapping a row (or Enter on it) opens
 * a dialog with every column of the row. Any [data-copy] button copies its text to the clipboard and says so.
 */

function announce(doc, text) {
  const node = doc.getElementById("live-announcer");
  if (node) {
    node.textContent = text;
  }
}

/** Copy buttons anywhere under `root` (event delegation: rows come and go). */
export function setupCopy(doc, root) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    event.stopPropagation();
    const text = button.dataset.copy;
    const done = () => {
      button.classList.add("copied");
      button.dataset.copied = "true";
      announce(doc, "Copied " + text);
      setTimeout(() => {
        button.classList.remove("copied");
        delete button.dataset.copied;
      }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, () => announce(doc, "Could not copy; select the text instead."));
    }
  });
}

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
