/*
 * A TWAP's schedule at a glance: how many slices are done, where the schedule says it should be by now, how
 * far ahead or behind that is, and how long is left. QFEX runs slice k (0-based) at created_at + k x
 * interval, so slice 1 runs at once and the last at the estimated end. Pure; tests/js/twap_math.test.js.
 */

import { toNumber } from "./decimal.js";
import { spanText } from "./timefmt.js";

// A TWAP still listed this long after its estimated end is overdue (its last slice may take a moment).
export const OVERDUE_GRACE_SECONDS = 10;

function finite(value) {
  const n = toNumber(value);
  return isFinite(n) ? n : null;
}

/**
 * Everything the TWAP table shows about a row's schedule at `nowMs`:
 * {progress (0..1 | null), slicesDone, slicesTotal, slicesEstimated, expectedSlices, driftSlices,
 *  driftSeconds (+ ahead, - behind), timeLeft (s to the estimated end, negative past it), overdue}.
 * Unknown parts are null.
 */
export function twapSchedule(row, nowMs) {
  const now = nowMs / 1000;
  const total = finite(row.total_quantity);
  const filled = finite(row.filled_quantity);
  const n = finite(row.total_num_orders);
  const interval = finite(row.order_interval_secs);
  const start = finite(row.created_at);
  const end = finite(row.estimated_end);
  const out = {
    progress: null,
    slicesDone: null,
    slicesTotal: n,
    slicesEstimated: false,
    expectedSlices: null,
    driftSlices: null,
    driftSeconds: null,
    timeLeft: end === null ? null : end - now,
    overdue: false,
  };
  if (total !== null && filled !== null && total > 0) {
    out.progress = Math.max(0, Math.min(1, filled / total));
  }
  let done = finite(row.filled_num_orders);
  if (done === null && out.progress !== null && n !== null) {
    done = out.progress * n; // what the filled quantity says, if slices are equal
    out.slicesEstimated = true;
  }
  out.slicesDone = done === null ? null : out.slicesEstimated ? Math.round(done) : done;
  if (n !== null && n >= 1 && start !== null && interval !== null && interval > 0) {
    const due = now < start ? 0 : Math.min(n, Math.floor((now - start) / interval) + 1);
    out.expectedSlices = due;
    if (done !== null) {
      out.driftSlices = done - due;
      out.driftSeconds = out.driftSlices * interval;
    }
  }
  // A TWAP QFEX lists is running, whatever its status says (the values are undocumented; the docs' one
  // example is the placeholder "ENGINE_STATUS"). One that left the list (`_gone`, lingering) is not.
  const running = row._gone !== true;
  out.overdue = running && end !== null && now > end + OVERDUE_GRACE_SECONDS;
  return out;
}

/**
 * "On schedule", "Ahead 2 min", "Behind 3 min": one slice either way counts as on it (a slice
 * due this very second may not have run yet). Returns {text, tone: "on" | "ahead" | "behind"} or null.
 */
export function driftText(schedule) {
  const d = schedule.driftSlices;
  if (d === null || schedule.driftSeconds === null) {
    return null;
  }
  if (Math.abs(d) <= 1) {
    return { text: "On schedule", tone: "on" };
  }
  const span = spanText(Math.abs(schedule.driftSeconds));
  return d > 0 ? { text: "Ahead " + span, tone: "ahead" } : { text: "Behind " + span, tone: "behind" };
}

/** "6 min left", "Overdue 2 min", or "" when the end is unknown. */
export function timeLeftText(schedule) {
  const left = schedule.timeLeft;
  if (left === null) {
    return "";
  }
  if (schedule.overdue) {
    return "Overdue " + spanText(-left);
  }
  return left <= 0 ? "Ending" : spanText(left) + " left";
}

/** "5 / 8", "≈ 5 / 8" when estimated from the filled quantity, or "8" when nothing is known of progress. */
export function slicesText(schedule) {
  if (schedule.slicesTotal === null) {
    return "";
  }
  if (schedule.slicesDone === null) {
    return String(schedule.slicesTotal);
  }
  return (schedule.slicesEstimated ? "≈ " : "") + schedule.slicesDone + " / " + schedule.slicesTotal;
}
