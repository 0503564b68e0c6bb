/*
 * One rule for times everywhere: the person's chosen zone (UTC or their browser's), labelled, ISO-like and
 * 24-hour: "2026-12-06 21:49:03 UTC". The server renders its pages with the same rule (orders/accounts/preferences.py)
 * and sends the zone's abbreviations ({offset minutes: "CET"}) so both say the same; an offset without
 * an abbreviation is labelled "UTC+05:30". Pure functions; unit tests in tests/js/timefmt.test.js.
 */

function pad2(n) {
  return n < 10 ? "0" + n : String(n);
}

function offsetLabel(minutes) {
  const sign = minutes < 0 ? "-" : "+";
  const m = Math.abs(minutes);
  return "UTC" + sign + pad2(Math.floor(m / 60)) + ":" + pad2(m % 60);
}

/** The browser's own IANA zone name ("Europe/Berlin"), or "UTC" when it cannot say. */
export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (err) {
    return "UTC";
  }
}

/** Times in one zone. `labels` maps an offset in minutes to the zone's abbreviation at that offset. */
export class Clock {
  constructor(zone, labels) {
    this.zone = "UTC";
    this.labels = labels || {};
    this._format = null;
    if (zone && zone !== "UTC") {
      try {
        this._format = new Intl.DateTimeFormat("en-US", {
          timeZone: zone,
          hourCycle: "h23",
          year: "numeric",
          month: "2-digit",
          day: "2-digit",
          hour: "2-digit",
          minute: "2-digit",
          second: "2-digit",
        });
        this.zone = zone;
      } catch (err) {
        this._format = null; // an unknown zone: UTC, labelled as such
      }
    }
  }

  /** {y, mo, d, h, mi, s, offset (minutes east of UTC)} of an epoch-seconds time. */
  parts(ts) {
    const whole = Math.floor(ts);
    const date = new Date(whole * 1000);
    if (this._format === null) {
      return {
        y: date.getUTCFullYear(),
        mo: date.getUTCMonth() + 1,
        d: date.getUTCDate(),
        h: date.getUTCHours(),
        mi: date.getUTCMinutes(),
        s: date.getUTCSeconds(),
        offset: 0,
      };
    }
    const p = {};
    for (const part of this._format.formatToParts(date)) {
      p[part.type] = part.value;
    }
    const out = {
      y: Number(p.year),
      mo: Number(p.month),
      d: Number(p.day),
      h: Number(p.hour) % 24,
      mi: Number(p.minute),
      s: Number(p.second),
    };
    out.offset = Math.round((Date.UTC(out.y, out.mo - 1, out.d, out.h, out.mi, out.s) - whole * 1000) / 60000);
    return out;
  }

  /** The zone's name at that time: "UTC", "CET", or "UTC+05:30". */
  label(ts) {
    if (this._format === null) {
      return "UTC";
    }
    const offset = this.parts(ts).offset;
    return this.labels[offset] || offsetLabel(offset);
  }

  /** "2026-12-06 21:49:03 UTC". */
  text(ts) {
    const p = this.parts(ts);
    const label = this._format === null ? "UTC" : this.labels[p.offset] || offsetLabel(p.offset);
    return (
      p.y + "-" + pad2(p.mo) + "-" + pad2(p.d) + " " + pad2(p.h) + ":" + pad2(p.mi) + ":" + pad2(p.s) + " " + label
    );
  }

  /** "21:49:03" (the zone is said once, nearby). */
  clock(ts) {
    const p = this.parts(ts);
    return pad2(p.h) + ":" + pad2(p.mi) + ":" + pad2(p.s);
  }

  /** "21:49:03" today, "12-05 21:49" on another day of this year, else "2025-12-05". */
  short(ts, nowMs) {
    const p = this.parts(ts);
    const n = this.parts(nowMs / 1000);
    if (p.y === n.y && p.mo === n.mo && p.d === n.d) {
      return pad2(p.h) + ":" + pad2(p.mi) + ":" + pad2(p.s);
    }
    if (p.y === n.y) {
      return pad2(p.mo) + "-" + pad2(p.d) + " " + pad2(p.h) + ":" + pad2(p.mi);
    }
    return p.y + "-" + pad2(p.mo) + "-" + pad2(p.d);
  }
}

/** "2025-11-25 00:00:00" in UTC, no label: the compact stamp in file names. */
export function utcStamp(ts) {
  return new Clock("UTC").text(ts).slice(0, 19);
}

/** A span of seconds in a trader's words: "45 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function spanText(seconds) {
  let s = Math.round(Math.abs(seconds));
  if (s < 60) {
    return s + " s";
  }
  if (s < 3600) {
    return Math.floor(s / 60) + " min";
  }
  if (s < 86400) {
    s = Math.floor(s / 60);
    return Math.floor(s / 60) + " h" + (s % 60 ? " " + (s % 60) + " min" : "");
  }
  s = Math.floor(s / 3600);
  return Math.floor(s / 24) + " d" + (s % 24 ? " " + (s % 24) + " h" : "");
}

/** "12 s ago", "in 6 min", "now". */
export function relativeText(ts, nowMs) {
  const delta = nowMs / 1000 - ts;
  if (Math.abs(delta) < 1) {
    return "now";
  }
  return delta < 0 ? "in " + spanText(delta) : spanText(delta) + " ago";
}

/** How old something is: "45 s", "3 min" ("0 s" for the future: clocks differ a little). */
export function ageText(ts, nowMs) {
  return spanText(Math.max(0, nowMs / 1000 - ts));
}

/** An age in a narrow column (phones): "45s", "3m", "2h", "3d". */
export function shortAgeText(ts, nowMs) {
  const s = Math.max(0, Math.round(nowMs / 1000 - ts));
  if (s < 60) {
    return s + "s";
  }
  if (s < 3600) {
    return Math.floor(s / 60) + "m";
  }
  if (s < 86400) {
    return Math.floor(s / 3600) + "h";
  }
  return Math.floor(s / 86400) + "d";
}

/** An interval in seconds as written on a TWAP ticket: "30 s", "5 min", "1 h", "90 s". */
export function intervalText(secs) {
  const s = Number(secs);
  if (secs === null || secs === undefined || secs === "" || !isFinite(s)) {
    return "";
  }
  if (s < 60 || s % 60) {
    return s + " s";
  }
  if (s < 3600 || s % 3600) {
    return s / 60 + " min";
  }
  return s / 3600 + " h";
}
