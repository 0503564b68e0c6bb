// One time rule: chosen zone, labelled, ISO-like, 24-hour.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Clock, ageText, intervalText, relativeText, shortAgeText, spanText, utcStamp } from "../../static/js/live/timefmt.js";

const T = Date.UTC(2026, 11, 6, 21, 49, 3) / 1000; // 2026-12-06 21:49:03 UTC

test("UTC times are ISO-like, 24-hour and labelled", () => {
  const utc = new Clock("UTC");
  assert.equal(utc.text(T), "2026-12-06 21:49:03 UTC");
  assert.equal(utc.text(T + 0.9), "2026-12-06 21:49:03 UTC"); // never rounded up into the next second
  assert.equal(utc.clock(T), "21:49:03");
  assert.equal(utc.label(T), "UTC");
  assert.equal(utcStamp(T), "2026-12-06 21:49:03");
});

test("another zone uses the server's abbreviations, or the offset", () => {
  const berlin = new Clock("Europe/Berlin", { 60: "CET", 120: "CEST" });
  assert.equal(berlin.text(T), "2026-12-06 22:49:03 CET");
  assert.equal(berlin.text(Date.UTC(2026, 6, 1, 12, 0, 0) / 1000), "2026-07-01 14:00:00 CEST");
  const kolkata = new Clock("Asia/Kolkata");
  assert.equal(kolkata.text(T), "2026-12-07 03:19:03 UTC+05:30");
  const ny = new Clock("America/New_York");
  assert.equal(ny.text(T), "2026-12-06 16:49:03 UTC-05:00");
  // Midnight is 00, never 24.
  assert.equal(new Clock("UTC").clock(Date.UTC(2026, 0, 1) / 1000), "00:00:00");
  assert.equal(new Clock("Europe/Berlin").clock(Date.UTC(2025, 11, 31, 23) / 1000), "00:00:00");
});

test("an unknown zone falls back to UTC, labelled UTC", () => {
  const clock = new Clock("Not/AZone");
  assert.equal(clock.zone, "UTC");
  assert.equal(clock.text(T), "2026-12-06 21:49:03 UTC");
});

test("short form: clock today, date and minute otherwise", () => {
  const utc = new Clock("UTC");
  assert.equal(utc.short(T, (T + 60) * 1000), "21:49:03");
  assert.equal(utc.short(T, (T + 86400) * 1000), "12-06 21:49");
  assert.equal(utc.short(T, (T + 86400 * 40) * 1000), "2026-12-06");
});

test("spans, ages and intervals in a trader's words", () => {
  assert.equal(spanText(45), "45 s");
  assert.equal(spanText(-45), "45 s");
  assert.equal(spanText(180), "3 min");
  assert.equal(spanText(7500), "2 h 5 min");
  assert.equal(spanText(3 * 86400 + 4 * 3600), "3 d 4 h");
  assert.equal(relativeText(T + 12, T * 1000), "in 12 s");
  assert.equal(relativeText(T - 12, T * 1000), "12 s ago");
  assert.equal(relativeText(T, (T + 360) * 1000), "6 min ago");
  assert.equal(relativeText(T, T * 1000 + 400), "now");
  assert.equal(ageText(T + 5, T * 1000), "0 s");
  assert.equal(intervalText(30), "30 s");
  assert.equal(intervalText(300), "5 min");
  assert.equal(intervalText(90), "90 s");
  assert.equal(intervalText(7200), "2 h");
  assert.equal(intervalText(null), "");
});

test("short ages for a phone's narrow column", () => {
  assert.deepEqual(
    [5, 59, 60, 3599, 3600, 86400 * 3].map((s) => shortAgeText(T - s, T * 1000)),
    ["5s", "59s", "1m", "59m", "1h", "3d"]
  );
});
