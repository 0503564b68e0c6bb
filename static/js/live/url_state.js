/*
 * What a view's URL keeps, so a link shows the same view: symbol, q (search), group=symbol, tab=closed, and
 * per table <table>_sort=price.desc,symbol.asc, <table>_hide=ids and <table>_show=ids (departures from the
 * default columns). The URL wins over saved preferences (a shared link shows what its sender saw).
 */

import { parseSort, sortText } from "./sorting.js";

export class UrlState {
  constructor(loc, history) {
    this.loc = loc;
    this.history = history;
    this.params = new URLSearchParams(loc.search);
  }

  get(name) {
    return this.params.get(name) || "";
  }

  has(name) {
    return this.params.has(name);
  }

  sort(table, known) {
    return this.params.has(table + "_sort") ? parseSort(this.params.get(table + "_sort"), known) : null;
  }

  /** {hidden, shown} when the URL says anything about the table's columns, else null. */
  columns(table) {
    if (!this.params.has(table + "_hide") && !this.params.has(table + "_show")) {
      return null;
    }
    const list = (name) => (this.params.get(table + name) || "").split(",").filter(Boolean);
    return { hidden: list("_hide"), shown: list("_show") };
  }

  /** Write the view into the URL without a new history entry. `view`: {symbol, q, group, tab, tables}. */
  write(view) {
    const next = new URLSearchParams(this.loc.search);
    const set = (key, value) => (value ? next.set(key, value) : next.delete(key));
    set("symbol", view.symbol);
    set("q", view.q);
    set("group", view.group ? "symbol" : "");
    set("tab", view.tab === "closed" ? "closed" : "");
    for (const [name, t] of Object.entries(view.tables)) {
      set(name + "_sort", t.sortIsDefault ? "" : sortText(t.sort) || "none");
      set(name + "_hide", t.hidden.join(","));
      set(name + "_show", t.shown.join(","));
    }
    const query = next.toString();
    const url = this.loc.pathname + (query ? "?" + query : "") + this.loc.hash;
    if (url !== this.loc.pathname + this.loc.search + this.loc.hash) {
      this.history.replaceState(this.history.state, "", url);
    }
  }
}
