/*
 * Cell renderers: (row, ctx) -> an HTML string or a DOM node. Every value from the exchange is exchange-
 * controlled text: it goes through esc() or textContent, never into markup as is, and no renderer writes a
 * style attribute (the Content-Security-Policy forbids them; widths are classes or set through CSSOM).
 *
 * ctx: {precision: PrecisionBook, clock: Clock, nowMs(), accountState(account) -> state word key}.
 */

import { decimalsOf, fixedParts, moneyText, percentText } from "./decimal.js";
import {
  orderStatusLabel,
  orderStatusShort,
  orderTypeLabel,
  outcomeLabel,
  sideLabel,
  stateLabel,
  statusTone,
  timeInForceLabel,
  twapStatusLabel,
} from "./labels.js";
import { ageText, intervalText, relativeText, shortAgeText } from "./timefmt.js";
import { driftText, slicesText, timeLeftText, twapSchedule } from "./twap_math.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function esc(value) {
  return value === null || value === undefined ? "" : String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export const NONE = '<span aria-hidden="true">—</span><span class="live-sr-only">none</span>';

function absent(v) {
  return v === null || v === undefined || v === "";
}

/** A decimal at the symbol's precision, its integer and fraction apart so a column aligns on the point. */
export function numberHtml(value, places, maxPlaces) {
  const parts = fixedParts(value, places);
  if (parts === null) {
    return absent(value) ? NONE : esc(value);
  }
  const width = Math.min(maxPlaces, 10);
  return '<span class="num"><span class="num-i">' + parts.int + '</span><span class="num-f w' + width + '">' + parts.frac + "</span></span>";
}

/** The fraction width a column keeps for alignment: none on a phone (no room: right-aligned per symbol). */
function alignPlaces(ctx, kind) {
  return ctx.compact ? 0 : ctx.precision.maxPlaces(kind);
}

export function priceHtml(field) {
  return (d, ctx) => numberHtml(d[field], ctx.precision.places(d.symbol, "price"), alignPlaces(ctx, "price"));
}

// A derived price (an average fill) of a symbol with no order price seen yet keeps up to this many decimals.
const DERIVED_PLACES = 6;

/** A derived price: at the symbol's tick when known, else with its own decimals (at most DERIVED_PLACES). */
export function derivedPriceHtml(field) {
  return (d, ctx) => {
    const book = ctx.precision;
    const places = book.known(d.symbol, "price") ? book.places(d.symbol, "price") : Math.min(decimalsOf(d[field]), DERIVED_PLACES);
    return numberHtml(d[field], places, ctx.compact ? 0 : Math.max(book.maxPlaces("price"), places));
  };
}

export function quantityHtml(field) {
  return (d, ctx) => numberHtml(d[field], ctx.precision.places(d.symbol, "qty"), alignPlaces(ctx, "qty"));
}

/** Take profit / stop loss: 0 means none. */
export function optionalPriceHtml(field) {
  const price = priceHtml(field);
  return (d, ctx) => (absent(d[field]) || Number(d[field]) === 0 ? NONE : price(d, ctx));
}

/** "6.00 / 10.00": filled of total, both at the symbol's lot precision. */
export function pairHtml(first, second) {
  return (d, ctx) => {
    if (absent(d[first]) && absent(d[second])) {
      return NONE;
    }
    const places = ctx.precision.places(d.symbol, "qty");
    const a = fixedParts(d[first], places);
    const b = fixedParts(d[second], places);
    // Two parts, so that on a phone "/ size" can go under the first one.
    return (
      '<span class="num pair"><span>' + esc(a ? a.int + a.frac : "—") + "</span> <span>/ " +
      esc(b ? b.int + b.frac : "—") + "</span></span>"
    );
  };
}

export function moneyHtml(field) {
  return (d) => {
    const text = moneyText(d[field]);
    return text ? '<span class="num">' + text + "</span>" : absent(d[field]) ? NONE : esc(d[field]);
  };
}

export function percentHtml(field) {
  return (d) => {
    const text = percentText(d[field]);
    return text ? '<span class="num">' + text + "</span>" : NONE;
  };
}

export function textHtml(field) {
  return (d) => (absent(d[field]) ? NONE : esc(d[field]));
}

/** A word for a code, the raw code in the tooltip. */
function worded(code, word, extraClass) {
  if (absent(code)) {
    return NONE;
  }
  return '<span class="' + (extraClass || "coded") + '" title="' + esc(code) + '">' + esc(word) + "</span>";
}

export function sideHtml(d) {
  const side = d.side;
  const cls = side === "BUY" ? "side side-buy" : side === "SELL" ? "side side-sell" : "side";
  return worded(side, sideLabel(side), cls);
}

export function typeHtml(d) {
  return worded(d.type, orderTypeLabel(d.type));
}

export function timeInForceHtml(d) {
  return worded(d.time_in_force, timeInForceLabel(d.time_in_force));
}

/** An order's status in words; a removed row lingering says how it left (from the diff's closed rows). */
export function orderStatusHtml(short) {
  return (d) => {
    if (d.refused) {
      return refusedHtml(d);
    }
    if (d._gone && d._outcome) {
      const word = outcomeLabel(d._outcome);
      return '<span class="status status-' + statusTone(word) + '" title="' + esc(d.status || "") + '">' + esc(word) + "</span>";
    }
    if (absent(d.status)) {
      return NONE;
    }
    const word = short ? orderStatusShort(d) : orderStatusLabel(d);
    return '<span class="status status-' + statusTone(word) + '" title="' + esc(d.status) + '">' + esc(word) + "</span>";
  };
}

/** A row the server refused to show as sent (a number or text beyond its bounds): only its id is known. */
function refusedHtml(d) {
  return '<span class="status status-refused" title="' + esc(d.refused) + '">Refused: ' + esc(d.refused) + "</span>";
}

export function outcomeHtml(d) {
  const word = outcomeLabel(d.outcome);
  return '<span class="status status-' + statusTone(word) + '" title="' + esc(d.status || d.outcome || "") + '">' + esc(word) + "</span>";
}

export function twapStatusHtml(d) {
  if (d.refused) {
    return refusedHtml(d);
  }
  if (d._gone) {
    // It left the active list: done or stopped (QFEX does not say which).
    return '<span class="status status-done" title="' + esc(d.status || "") + '">Ended</span>';
  }
  return worded(d.status, twapStatusLabel(d.status), "status status-open");
}

/** A time as the person's clock shows it, with the full labelled time in the tooltip. */
export function clockHtml(field) {
  return (d, ctx) => {
    const ts = Number(d[field]);
    if (absent(d[field]) || !isFinite(ts)) {
      return NONE;
    }
    return (
      '<time datetime="' + new Date(ts * 1000).toISOString() + '" title="' + esc(ctx.clock.text(ts)) + '">' +
      esc(ctx.clock.short(ts, ctx.nowMs())) + "</time>"
    );
  };
}

/** A relative time ("12 s ago") that the page's one-second timer keeps current (class rel, data-ts). */
export function agoHtml(field) {
  return (d, ctx) => {
    const ts = Number(d[field]);
    if (absent(d[field]) || !isFinite(ts)) {
      return NONE;
    }
    return (
      '<time class="rel" data-rel="ago" data-ts="' + ts + '" datetime="' + new Date(ts * 1000).toISOString() +
      '" title="' + esc(ctx.clock.text(ts)) + '">' + relativeText(ts, ctx.nowMs()) + "</time>"
    );
  };
}

/** An order's age since it was placed (or, when the placement time is unknown, since its last update). */
export function ageHtml(d, ctx) {
  const ts = d._placed;
  if (ts === null || ts === undefined) {
    return NONE;
  }
  const what = d.placed_at !== null && d.placed_at !== undefined ? "Placed " : "Placement time unknown; last update ";
  const kind = ctx.compact ? "age-short" : "age";
  const text = ctx.compact ? shortAgeText(ts, ctx.nowMs()) : ageText(ts, ctx.nowMs());
  return (
    '<time class="rel" data-rel="' + kind + '" data-ts="' + ts + '" datetime="' + new Date(ts * 1000).toISOString() +
    '" title="' + esc(what + ctx.clock.text(ts)) + '">' + text + "</time>"
  );
}

export function intervalHtml(d) {
  const text = intervalText(d.order_interval_secs);
  return text ? esc(text) : NONE;
}

export function boolHtml(field) {
  return (d) => (d[field] === true ? "Yes" : d[field] === false ? "No" : NONE);
}

/** An id in monospace with a copy button (the page copies `data-copy` on click). */
export function idHtml(field, noun) {
  return (d) => {
    if (absent(d[field])) {
      return NONE;
    }
    const id = esc(d[field]);
    return (
      '<span class="id-cell"><span class="id-text">' + id + '</span><button type="button" class="copy-button" data-copy="' +
      id + '" aria-label="Copy ' + noun + " " + id + '" title="Copy">⧉</button></span>'
    );
  };
}

/** The account's label, and its state when it is not live (its rows carry the state too: they dim). */
export function accountHtml(d, ctx) {
  const state = ctx.accountState(d._acct);
  const chip = state && state !== "live" ? ' <span class="acct-state acct-state-' + state + '">' + esc(stateLabel(state)) + "</span>" : "";
  return esc(d.account_label) + chip;
}

/** TWAP progress: the bar, and the percentage beside it (never on top of it, never clipped). */
export function progressNode(d) {
  const pct = Math.max(0, Math.min(100, Number(d.progress_pct) || 0));
  const text = percentText(d.progress_pct) || "—";
  const box = document.createElement("div");
  box.className = "twap-progress";
  const bar = document.createElement("div");
  bar.className = "twap-progress-track";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", "Filled");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.setAttribute("aria-valuetext", text);
  const fill = document.createElement("div");
  fill.className = "twap-progress-fill";
  fill.style.width = pct + "%"; // CSSOM, which a strict CSP allows (a style attribute in markup it does not)
  bar.append(fill);
  const label = document.createElement("span");
  label.className = "twap-progress-pct num";
  label.textContent = text;
  box.append(bar, label);
  return box;
}

export function slicesHtml(d, ctx) {
  const schedule = twapSchedule(d, ctx.nowMs());
  const text = slicesText(schedule);
  if (!text) {
    return NONE;
  }
  const title = schedule.slicesEstimated ? "Estimated from the filled quantity (QFEX did not say how many slices ran)" : "Slices done of all slices";
  return '<span class="num" title="' + esc(title) + '">' + esc(text) + "</span>";
}

export function scheduleHtml(d, ctx) {
  const schedule = twapSchedule(d, ctx.nowMs());
  const drift = driftText(schedule);
  if (drift === null) {
    return NONE;
  }
  const due = schedule.expectedSlices;
  const title = due === null ? "" : due + " of " + schedule.slicesTotal + " slices due by now";
  return '<span class="drift drift-' + drift.tone + '" title="' + esc(title) + '">' + esc(drift.text) + "</span>";
}

export function elapsedHtml(d, ctx) {
  const start = Number(d.created_at);
  const end = Number(d.estimated_end);
  if (absent(d.created_at) || !isFinite(start)) {
    return NONE;
  }
  const whole = isFinite(end) && !absent(d.estimated_end) ? " of " + ageText(start, end * 1000) : "";
  return esc(ageText(start, ctx.nowMs()) + whole);
}

export function timeLeftHtml(d, ctx) {
  const schedule = twapSchedule(d, ctx.nowMs());
  const text = timeLeftText(schedule);
  if (!text) {
    return NONE;
  }
  const end = Number(d.estimated_end);
  const title = "Estimated end " + ctx.clock.text(end);
  return '<span class="time-left' + (schedule.overdue ? " overdue" : "") + '" title="' + esc(title) + '">' + esc(text) + "</span>";
}
