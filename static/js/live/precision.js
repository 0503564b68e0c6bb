/*
 * Per-symbol precision, the way an exchange shows a book: every price of one symbol with the same number of
 * decimals (its tick), every quantity with the same number (its lot step). Neither is sent by QFEX, so both
 * are inferred from every value seen for the symbol: the most decimals any of them really has.
 */

import { decimalsOf, parseDecimal } from "./decimal.js";

// Which row fields are prices and which are quantities, for every kind of row the page shows. Derived
// values (average fill price, notional) do not teach anything about the tick and are left out.
export const PRICE_FIELDS = ["price", "take_profit", "stop_loss"];
export const QUANTITY_FIELDS = ["quantity", "quantity_remaining", "filled", "total_quantity", "filled_quantity"];
// Only how long their whole part gets (for the columns' widths): derived prices, and money.
const WIDTH_ONLY = { average_fill_price: "price", fill_price: "price", notional: "money" };

export class PrecisionBook {
  constructor() {
    this.bySymbol = new Map(); // symbol -> {price, qty}
    this.max = { price: 0, qty: 0 };
    this.maxInt = { price: 1, qty: 1, money: 1 }; // the most digits before the point seen, for column widths
    this.version = 0; // grows whenever a precision or a width grows: rendered cells must be redrawn
  }

  /** Learn from one row; true when a precision grew. */
  observe(row) {
    const symbol = row.symbol;
    if (typeof symbol !== "string") {
      return false;
    }
    let entry = this.bySymbol.get(symbol);
    if (entry === undefined) {
      entry = { price: 0, qty: 0, seen: { price: false, qty: false } };
      this.bySymbol.set(symbol, entry);
    }
    let grew = false;
    grew = this._take(entry, "price", row, PRICE_FIELDS) || grew;
    grew = this._take(entry, "qty", row, QUANTITY_FIELDS) || grew;
    for (const field in WIDTH_ONLY) {
      grew = this._int(WIDTH_ONLY[field], row[field]) || grew;
    }
    if (grew) {
      this.version += 1;
    }
    return grew;
  }

  _take(entry, kind, row, fields) {
    let grew = false;
    for (let i = 0; i < fields.length; i++) {
      const value = row[fields[i]];
      if (value === null || value === undefined) {
        continue;
      }
      entry.seen[kind] = true;
      grew = this._int(kind, value) || grew;
      const places = decimalsOf(value);
      if (places > entry[kind]) {
        entry[kind] = places;
        grew = true;
        if (places > this.max[kind]) {
          this.max[kind] = places;
        }
      }
    }
    return grew;
  }

  _int(kind, value) {
    const d = value === null || value === undefined ? null : parseDecimal(value);
    if (d !== null && d.int.length > this.maxInt[kind]) {
      this.maxInt[kind] = d.int.length;
      return true;
    }
    return false;
  }

  /**
   * The most characters a column of this kind shows: "price" / "qty" (grouped whole part, point, decimals),
   * "pair" (filled / size), "money" (two decimals).
   */
  widthChars(kind) {
    const grouped = (n) => n + Math.floor((n - 1) / 3);
    const number = (k) => grouped(this.maxInt[k]) + (this.max[k] ? this.max[k] + 1 : 0);
    if (kind === "pair") {
      return 2 * number("qty") + 3;
    }
    if (kind === "money") {
      return grouped(this.maxInt.money) + 4; // sign, point, two decimals
    }
    return number(kind);
  }

  /** Decimals of a symbol's prices ("price") or quantities ("qty"). */
  places(symbol, kind) {
    const entry = this.bySymbol.get(symbol);
    return entry === undefined ? 0 : entry[kind];
  }

  /** Whether any price ("price") or quantity ("qty") of the symbol was seen. */
  known(symbol, kind) {
    const entry = this.bySymbol.get(symbol);
    return entry !== undefined && entry.seen[kind];
  }

  /** The most decimals of any symbol: the width a column keeps after the decimal point. */
  maxPlaces(kind) {
    return this.max[kind];
  }
}
