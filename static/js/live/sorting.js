/*
 * Sorting: numbers as numbers (never the formatted text), missing values first when ascending, and several
 * columns at once (shift-click or Shift+Enter on a header adds one). Ties end on the row key, so the order
 * of equal rows never changes between updates.
 *
 * Tabulator evaluates its sort list from the last entry to the first; the page keeps its own list primary
 * first ([{id, dir}]) and hands Tabulator the reverse, behind a hidden key column that breaks ties.
 */

export const KEY_FIELD = "_key";

function compareText(x, y) {
  const a = x === null || x === undefined ? "" : String(x);
  const b = y === null || y === undefined ? "" : String(y);
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareNumbers(x, y) {
  const xMissing = typeof x !== "number" || x !== x; // null or NaN
  const yMissing = typeof y !== "number" || y !== y;
  if (xMissing || yMissing) {
    return xMissing && yMissing ? 0 : xMissing ? -1 : 1;
  }
  return x - y;
}

/** Tabulator's sorter for a column spec: reads the spec's sortField of each row. */
export function sorterFor(spec) {
  const field = spec.sortField;
  if (spec.sort === "number") {
    return (a, b, aRow, bRow) => compareNumbers(aRow.getData()[field], bRow.getData()[field]);
  }
  if (field === spec.field) {
    // Code-point order: exchange strings are ASCII ids and symbols, and this is several times faster than a
    // locale collator on 10 000 rows.
    return (a, b) => compareText(a, b);
  }
  return (a, b, aRow, bRow) => compareText(aRow.getData()[field], bRow.getData()[field]);
}

export const keySorter = (a, b) => compareText(a, b);

/** "price.desc,symbol.asc" → [{id, dir}] (unknown ids and bad directions dropped). */
export function parseSort(text, known) {
  const out = [];
  for (const item of (text || "").split(",")) {
    const dot = item.lastIndexOf(".");
    const id = item.slice(0, dot);
    const dir = item.slice(dot + 1);
    if (dot > 0 && (dir === "asc" || dir === "desc") && known(id) && !out.some((s) => s.id === id)) {
      out.push({ id: id, dir: dir });
    }
  }
  return out;
}

export function sortText(list) {
  return list.map((s) => s.id + "." + s.dir).join(",");
}

/**
 * The sort after a click on column `id` (starting direction `startDir`): a plain click sorts by that column
 * alone (flipping it when it already was the only sort); an additive click (shift) adds it as the next
 * sort, or flips it where it stands.
 */
export function clickSort(list, id, startDir, additive) {
  const at = list.findIndex((s) => s.id === id);
  const flip = (dir) => (dir === "asc" ? "desc" : "asc");
  if (additive) {
    const next = list.slice();
    if (at >= 0) {
      next[at] = { id: id, dir: flip(list[at].dir) };
    } else {
      next.push({ id: id, dir: startDir });
    }
    return next;
  }
  if (at === 0) {
    return [{ id: id, dir: flip(list[0].dir) }];
  }
  return [{ id: id, dir: startDir }];
}

/** Tabulator's sort list for ours: reversed, behind the key tie-break (in the primary sort's direction). */
export function tabulatorSort(list, fieldOf) {
  if (!list.length) {
    return []; // unsorted: rows stay where they were added (new ones on top)
  }
  const key = { column: KEY_FIELD, dir: list[0].dir };
  return [key].concat(
    list
      .slice()
      .reverse()
      .map((s) => ({ column: fieldOf(s.id), dir: s.dir }))
  );
}
