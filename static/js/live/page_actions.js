/*
 * The page's two actions: "Refresh" (ask QFEX again, with a short cooldown) and "Export CSV" (the table's
 * current view, each row with the time its data is from; the file named after the oldest data time, UTC).
 */

import { download } from "./controls.js";
import { utcStamp } from "./timefmt.js";

const REFRESH_COOLDOWN_MS = 2000;

/** `onCooling(bool)` when the cooldown starts and ends (the page disables the button meanwhile). */
export function setupRefresh(button, socket, onCooling) {
  let cooling = false;
  button.addEventListener("click", () => {
    if (cooling || !socket.send({ type: "refresh" })) {
      return;
    }
    // The server coalesces refreshes and rate-limits frames; a short cooldown keeps clicks polite.
    cooling = true;
    button.textContent = "Refresh requested";
    onCooling(true);
    setTimeout(() => {
      cooling = false;
      button.textContent = "Refresh";
      onCooling(false);
    }, REFRESH_COOLDOWN_MS);
  });
}

/**
 * The [data-export] buttons. `times`: {row(d) -> epoch s | null, oldest() -> epoch s | null}; `clock` labels
 * the rows' times in the person's zone; `scope()` names the page in the file name ("account-7").
 */
export function setupExports(doc, views, times, clock, scope) {
  for (const button of doc.querySelectorAll("[data-export]")) {
    button.addEventListener("click", () => {
      const name = button.dataset.export;
      const csv = views[name].toCsv((d) => {
        const t = times.row(d);
        return t === null ? "" : clock.text(t);
      });
      const oldest = times.oldest();
      const stamp = oldest !== null ? utcStamp(oldest).replace(/[-:]/g, "").replace(" ", "T") + "Z" : "no-data";
      download(doc, name + "-" + scope() + "-" + stamp + ".csv", csv);
    });
  }
}
