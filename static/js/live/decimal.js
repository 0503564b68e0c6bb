/*
 * Exact decimal text: prices and quantities travel as strings ("187.25") and are shown without ever going
 * through a binary float, except to clean a float artefact ("1.2999999999999998") that an upstream already
 * made. Pure functions; unit tests in tests/js/decimal.test.js.
 */

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?$/;
// A binary double holds 15-17 significant digits; text with more than 15 is a float's artefact, not a tick.
const FLOAT_DIGITS = 15;
export const MAX_DECIMALS = 10;

/** Plain decimal text of a finite number, never in exponent form. */
function numberText(n) {
  const text = String(n);
  if (!/e/i.test(text)) {
    return text;
  }
  return expandExponent(n.toPrecision(FLOAT_DIGITS));
}

function expandExponent(text) {
  const m = /^([+-]?)(\d)(?:\.(\d*))?e([+-]\d+)$/i.exec(text);
  if (!m) {
    return text;
  }
  const digits = m[2] + (m[3] || "");
  const point = 1 + Number(m[4]);
  let out;
  if (point <= 0) {
    out = "0." + "0".repeat(-point) + digits;
  } else if (point >= digits.length) {
    out = digits + "0".repeat(point - digits.length);
  } else {
    out = digits.slice(0, point) + "." + digits.slice(point);
  }
  return m[1] + out;
}

/**
 * {neg, int, frac} of a decimal string or number: int without leading zeros ("0" at least), frac without
 * trailing zeros; null when it is not a decimal. Float artefacts are rounded away (15 significant digits).
 */
export function parseDecimal(value) {
  if (value === null || value === undefined || value === "" || typeof value === "boolean") {
    return null;
  }
  let text = typeof value === "number" ? (isFinite(value) ? numberText(value) : "") : String(value).trim();
  if (/e/i.test(text)) {
    const n = Number(text);
    if (!isFinite(n)) {
      return null;
    }
    text = numberText(n);
  }
  let m = DECIMAL_RE.exec(text);
  if (!m || (m[2] === "" && !m[3])) {
    return null;
  }
  const significant = (m[2] + (m[3] || "")).replace(/^0+/, "").length;
  if (significant > FLOAT_DIGITS && m[3]) {
    text = expandExponent(Number(text).toPrecision(FLOAT_DIGITS));
    m = DECIMAL_RE.exec(text);
    if (!m) {
      return null;
    }
  }
  const int = m[2].replace(/^0+(?=\d)/, "") || "0";
  const frac = (m[3] || "").replace(/0+$/, "");
  const neg = m[1] === "-" && (int !== "0" || frac !== "");
  return { neg: neg, int: int, frac: frac };
}

/** How many decimals the value really has ("72.670" → 2, "1.2999999999999998" → 1); 0 when not a number. */
export function decimalsOf(value) {
  const d = parseDecimal(value);
  return d ? Math.min(d.frac.length, MAX_DECIMALS) : 0;
}

/** Adds one unit in the last place to a string of digits ("199" → "200", "99" → "100"). */
function increment(digits) {
  const out = digits.split("");
  let i = out.length - 1;
  while (i >= 0) {
    if (out[i] === "9") {
      out[i] = "0";
      i -= 1;
    } else {
      out[i] = String(Number(out[i]) + 1);
      return out.join("");
    }
  }
  return "1" + out.join("");
}

/** {neg, int, frac} rounded half away from zero to exactly `places` decimals (frac padded with zeros). */
export function roundDecimal(d, places) {
  let int = d.int;
  let frac = d.frac;
  if (frac.length > places) {
    const up = frac.charCodeAt(places) >= 53; // "5"
    frac = frac.slice(0, places);
    if (up) {
      const joined = increment(int + frac);
      int = joined.slice(0, joined.length - places) || "0";
      frac = joined.slice(joined.length - places);
    }
  }
  frac = frac.padEnd(places, "0");
  const zero = /^0*$/.test(int) && /^0*$/.test(frac);
  return { neg: d.neg && !zero, int: int.replace(/^0+(?=\d)/, "") || "0", frac: frac };
}

/** "1234567" → "1,234,567". */
export function groupThousands(int) {
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * The value at exactly `places` decimals, thousands grouped: {int: "-1,234", frac: ".50"} so a page can
 * align the decimal points; null when the value is not a number.
 */
export function fixedParts(value, places) {
  const d = parseDecimal(value);
  if (!d) {
    return null;
  }
  const r = roundDecimal(d, places);
  return { int: (r.neg ? "-" : "") + groupThousands(r.int), frac: places > 0 ? "." + r.frac : "" };
}

/** The value at exactly `places` decimals, grouped ("1,872.50"); "" when not a number. */
export function fixedText(value, places) {
  const p = fixedParts(value, places);
  return p ? p.int + p.frac : "";
}

/** Money: two decimals, thousands grouped ("111,062.43"). */
export function moneyText(value) {
  return fixedText(value, 2);
}

const PLAIN_RE = /^-?\d+(\.\d+)?$/;

/** The value as sent ("1040.50"), but cleaned of a float's artefact ("1.3" for "1.2999999999999998"): for CSV. */
export function plainText(value) {
  if (typeof value === "string" && PLAIN_RE.test(value)) {
    const significant = value.replace(/[-.]/g, "").replace(/^0+/, "").length;
    if (significant <= FLOAT_DIGITS || value.indexOf(".") === -1) {
      return value;
    }
  }
  const d = parseDecimal(value);
  if (!d) {
    return value === null || value === undefined ? "" : String(value);
  }
  return (d.neg ? "-" : "") + d.int + (d.frac ? "." + d.frac : "");
}

/**
 * One percent format everywhere: one decimal, cut (never rounded up, so 99.99 % is not "100.0%").
 * "93.33" → "93.3%", "0" → "0.0%"; "" when not a number.
 */
export function percentText(value) {
  const d = parseDecimal(value);
  if (!d) {
    return "";
  }
  const frac = (d.frac + "0").slice(0, 1);
  const zero = d.int === "0" && frac === "0";
  return (d.neg && !zero ? "-" : "") + groupThousands(d.int) + "." + frac + "%";
}

/** A number for sorting and sums (never for display): NaN when absent. */
export function toNumber(value) {
  if (value === null || value === undefined || value === "" || typeof value === "boolean") {
    return NaN;
  }
  return typeof value === "number" ? value : Number(value);
}
