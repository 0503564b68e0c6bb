/*
 * The page's controls: symbol filter, search ("/" focuses it), grouping, the filters' note with one-click
 * clearing, the column choosers (Esc and a click outside close them), the Open/Closed tabs (arrow keys move
 * between them) and the CSV buttons. Each control calls back into the page; none touches the tables' data.
 */

export function setupPopovers(doc) {
  const popovers = Array.from(doc.querySelectorAll("details.live-columns"));
  const close = (details, focus) => {
    if (details.open) {
      details.open = false;
      if (focus) {
        details.querySelector("summary").focus();
      }
    }
  };
  doc.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      for (const details of popovers) {
        if (details.open) {
          close(details, details.contains(doc.activeElement));
        }
      }
    }
  });
  doc.addEventListener("click", (event) => {
    for (const details of popovers) {
      if (details.open && !details.contains(event.target)) {
        close(details, false);
      }
    }
  });
  // One open at a time.
  for (const details of popovers) {
    details.addEventListener("toggle", () => {
      if (details.open) {
        for (const other of popovers) {
          if (other !== details) {
            close(other, false);
          }
        }
      }
    });
  }
}

/** Checkboxes for a table's columns; `onChange(id, visible)` after each. */
export function buildColumnChooser(box, choices, onChange) {
  for (const choice of choices) {
    const label = box.ownerDocument.createElement("label");
    const input = box.ownerDocument.createElement("input");
    input.type = "checkbox";
    input.checked = choice.visible;
    input.value = choice.id;
    input.addEventListener("change", () => onChange(choice.id, input.checked));
    label.append(input, " " + choice.title);
    box.append(label);
  }
}

/** "/" puts the cursor in the search box (unless the person is typing somewhere already). */
export function setupSearchKey(doc, search) {
  doc.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const target = event.target;
    const typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (!typing) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  });
}

/** The Open orders / Closed tabs: click or arrow keys; `onShow(name)` after a change. */
export function setupTabs(doc, initial, onShow) {
  const tabs = [doc.getElementById("tab-orders"), doc.getElementById("tab-closed")];
  const names = ["orders", "closed"];
  const show = (index, focus) => {
    tabs.forEach((tab, i) => {
      const on = i === index;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      doc.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
    });
    if (focus) {
      tabs[index].focus();
    }
    onShow(names[index]);
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => show(i, false));
    tab.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        event.preventDefault();
        show((i + 1) % tabs.length, true);
      } else if (event.key === "Home" || event.key === "End") {
        event.preventDefault();
        show(event.key === "Home" ? 0 : tabs.length - 1, true);
      }
    });
  });
  const start = names.indexOf(initial);
  if (start > 0) {
    show(start, false);
  }
}

/** Save `text` as a CSV file named `name` (a byte-order mark lets spreadsheets read it as UTF-8). */
export function download(doc, name, text) {
  const blob = new Blob(["\ufeff" + text], { type: "text/csv;charset=utf-8" });
  const link = doc.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  doc.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** The symbol list: every symbol with rows, plus the chosen one (kept while it has none). */
export function fillSymbols(select, symbols) {
  const present = new Set(symbols);
  if (select.value) {
    present.add(select.value);
  }
  const sorted = Array.from(present).sort();
  const key = sorted.join("\u0000");
  if (select.dataset.key === key) {
    return;
  }
  select.dataset.key = key;
  const chosen = select.value;
  const options = [new Option("All symbols", "")];
  for (const symbol of sorted) {
    options.push(new Option(symbol, symbol)); // Option() sets text, never HTML
  }
  select.replaceChildren(...options);
  select.value = chosen;
}
