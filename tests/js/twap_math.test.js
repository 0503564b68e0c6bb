// A TWAP's schedule: slices, ahead/behind, time left, overdue.
import { test } from "node:test";
import assert from "node:assert/strict";

import { driftText, slicesText, timeLeftText, twapSchedule } from "../../static/js/live/twap_math.js";

const START = 1_000_000;
// 8 slices a minute apart: slices at START + 0, 60, ..., 420; estimated end START + 420.
const twap = (fields) => ({
  total_quantity: "800",
  filled_quantity: "200",
  total_num_orders: 8,
  filled_num_orders: null,
  order_interval_secs: 60,
  created_at: START,
  estimated_end: START + 420,
  status: "ENGINE_STATUS", // the only value QFEX's docs show (a placeholder)
  ...fields,
});
const at = (seconds) => (START + seconds) * 1000;

test("slices done come from the TWAP, or are estimated from the filled quantity and say so", () => {
  assert.equal(slicesText(twapSchedule(twap({ filled_num_orders: 3 }), at(130))), "3 / 8");
  const estimated = twapSchedule(twap({}), at(130));
  assert.equal(estimated.slicesEstimated, true);
  assert.equal(slicesText(estimated), "≈ 2 / 8");
  assert.equal(slicesText(twapSchedule(twap({ filled_quantity: null }), at(0))), "8");
});

test("ahead or behind the schedule by how much; within a slice is on schedule", () => {
  // 130 s in: slices 0, 60 and 120 are due (3); 2 done by quantity: within one slice.
  assert.deepEqual(driftText(twapSchedule(twap({}), at(130))), { text: "On schedule", tone: "on" });
  // 250 s in: 5 due, 2 done: 3 slices = 3 min behind.
  assert.deepEqual(driftText(twapSchedule(twap({}), at(250))), { text: "Behind 3 min", tone: "behind" });
  // 10 s in: 1 due, 4 done (by count): 3 min ahead.
  assert.deepEqual(driftText(twapSchedule(twap({ filled_num_orders: 4 }), at(10))), { text: "Ahead 3 min", tone: "ahead" });
  assert.equal(driftText(twapSchedule(twap({ order_interval_secs: null }), at(10))), null);
});

test("time left, and a running TWAP past its estimated end is overdue", () => {
  assert.equal(timeLeftText(twapSchedule(twap({}), at(60))), "6 min left");
  const late = twapSchedule(twap({}), at(420 + 150));
  assert.equal(late.overdue, true);
  assert.equal(timeLeftText(late), "Overdue 2 min");
  assert.equal(twapSchedule(twap({}), at(425)).overdue, false); // a few seconds of grace
  // A listed TWAP is running whatever its status string: no value hides Overdue, ahead/behind or time left.
  for (const status of ["ENGINE_STATUS", "RUNNING", "PAUSED", "", null, undefined, "SOMETHING_NEW"]) {
    const schedule = twapSchedule(twap({ status }), at(900));
    assert.equal(schedule.overdue, true, String(status));
    assert.equal(timeLeftText(schedule), "Overdue 8 min", String(status));
    assert.deepEqual(driftText(twapSchedule(twap({ status }), at(250))), { text: "Behind 3 min", tone: "behind" });
  }
  assert.equal(twapSchedule(twap({ _gone: true }), at(900)).overdue, false); // it left QFEX's list
  assert.equal(timeLeftText(twapSchedule(twap({ estimated_end: null }), at(0))), "");
});

test("progress is a fraction of the total quantity", () => {
  assert.equal(twapSchedule(twap({}), at(0)).progress, 0.25);
  assert.equal(twapSchedule(twap({ total_quantity: "0" }), at(0)).progress, null);
});
