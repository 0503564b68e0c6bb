/*
 * Writes the page's status into the DOM: the badge, why, since when, the data's time (only once data is in),
 * the one countdown, what to do, and on All accounts one chip per account with its own state and time. Changes
 * of state are announced to screen readers; countdowns and clocks are not.
 */

import { stateLabel } from "./labels.js";
import { relativeText, spanText } from "./timefmt.js";

function setText(node, text) {
  if (node && node.textContent !== text) {
    node.textContent = text;
  }
}

/** "Next try in 5 s" / "Trying again now" from an epoch-seconds time, or "". */
export function countdownText(nextRetryAt, nowMs) {
  if (nextRetryAt === null || nextRetryAt === undefined) {
    return "";
  }
  const secs = Math.max(0, Math.ceil(nextRetryAt - nowMs / 1000));
  return secs > 0 ? "Next try in " + secs + " s." : "Trying again now.";
}

export class StatusView {
  constructor(doc, clock) {
    const $ = (id) => doc.getElementById(id);
    this.clock = clock;
    this.el = {
      status: $("live-status"),
      badge: $("live-status-badge"),
      reason: $("live-status-reason"),
      since: $("live-status-since"),
      time: $("live-status-time"),
      retry: $("live-status-retry"),
      action: $("live-status-action"),
      announcer: $("live-announcer"),
      accounts: $("live-accounts"),
    };
    this.doc = doc;
    this.lastAnnounced = "";
    this.chips = new Map(); // account -> {li, state, label, detail}
  }

  render(s, nowMs) {
    const el = this.el;
    el.status.dataset.state = s.state;
    setText(el.badge, stateLabel(s.state));
    setText(el.reason, s.reason || "");
    setText(el.since, s.since !== null && s.state !== "live" ? this._since(s.since, nowMs, s.failures) : "");
    if (s.dataAsOf !== null) {
      setText(el.time, "Data as of " + this.clock.text(s.dataAsOf) + " (" + relativeText(s.dataAsOf, nowMs) + ")");
    } else {
      setText(el.time, "");
    }
    // One countdown: on All accounts each account's chip has its own, so the top shows only the page's.
    const retry = s.state === "live" || s.scope === "accounts" ? "" : countdownText(s.nextRetryAt, nowMs);
    setText(el.retry, retry);
    setText(el.action, s.action ? "What to do: " + s.action : "");
    if (el.accounts) {
      this._renderChips(s.accounts, nowMs);
    }
    // Announce changes of state (not every diff, not the countdown).
    const announcement = stateLabel(s.state) + (s.state === "live" ? "" : ": " + (s.reason || "") + (s.action ? " " + s.action : ""));
    if (announcement !== this.lastAnnounced) {
      this.lastAnnounced = announcement;
      el.announcer.textContent = announcement;
    }
  }

  /** "since 2026-12-06 21:49:03 UTC (2 min, 3 failed tries)". */
  _since(since, nowMs, failures) {
    const tries = failures > 0 ? ", " + failures + (failures === 1 ? " failed try" : " failed tries") : "";
    return "since " + this.clock.text(since) + " (" + spanText(nowMs / 1000 - since) + tries + ")";
  }

  /** One chip per account: "Desk main · Live · as of 21:49:03 UTC", or its trouble in words. */
  _renderChips(views, nowMs) {
    const seen = new Set();
    for (const v of views) {
      seen.add(v.account);
      let chip = this.chips.get(v.account);
      if (!chip) {
        const li = this.doc.createElement("li");
        li.className = "live-account";
        const name = this.doc.createElement("span");
        name.className = "live-account-name";
        const state = this.doc.createElement("span");
        state.className = "state";
        const detail = this.doc.createElement("span");
        detail.className = "live-account-detail";
        li.append(name, " ", state, " ", detail);
        li.dataset.account = String(v.account);
        this.el.accounts.append(li);
        chip = { li, name, state, detail };
        this.chips.set(v.account, chip);
      }
      chip.li.dataset.state = v.state;
      chip.state.className = "state state-" + v.state;
      setText(chip.name, v.label);
      setText(chip.state, v.word);
      const parts = [];
      if (v.state !== "live" && v.reason) {
        parts.push(v.reason);
      }
      if (v.since !== null && v.state !== "live") {
        parts.push(this._since(v.since, nowMs, v.failures));
      }
      if (v.dataAsOf !== null) {
        parts.push("data as of " + this.clock.text(v.dataAsOf));
      }
      const retry = v.state === "live" ? "" : countdownText(v.nextRetryAt, nowMs);
      if (retry) {
        parts.push(retry);
      }
      if (v.state === "error" && v.action) {
        parts.push("What to do: " + v.action);
      }
      setText(chip.detail, parts.join(" · "));
    }
    for (const [account, chip] of this.chips) {
      if (!seen.has(account)) {
        chip.li.remove();
        this.chips.delete(account);
      }
    }
  }
}
