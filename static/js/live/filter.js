/*
 * A table's filter: one symbol (or all) and a search that looks in codes and their words alike (symbol, side,
 * type, status, ids; columns.js says which per table). The lower-case text of a row is cached on it (`_search`)
 * and cleared by every update of the row.
 */

import { searchText } from "./columns.js";

export class RowFilter {
  constructor(kind) {
    this.kind = kind;
    this.symbol = "";
    this.query = "";
  }

  /** Set the filter; false when nothing changed. */
  set(symbol, query) {
    symbol = symbol || "";
    query = (query || "").trim().toLowerCase();
    if (symbol === this.symbol && query === this.query) {
      return false;
    }
    this.symbol = symbol;
    this.query = query;
    return true;
  }

  active() {
    return !!(this.symbol || this.query);
  }

  matches(data) {
    if (this.symbol && data.symbol !== this.symbol) {
      return false;
    }
    if (this.query) {
      let text = data._search;
      if (text === null || text === undefined) {
        text = searchText(this.kind, data);
        data._search = text;
      }
      if (text.indexOf(this.query) === -1) {
        return false;
      }
    }
    return true;
  }
}
