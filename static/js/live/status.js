/*
 * What the page says about its data: per account (state, why, since when, what to do, when the next try is)
 * and for the page as a whole. Pure: the page feeds it messages and reads `pageStatus`; the DOM is written by
 * status_view.js. Unit tests in tests/js/status.test.js.
 */

import { stateLabel } from "./labels.js";

// Worst first: the page's badge shows the worst state of its accounts.
const STATE_RANK = { error: 5, stale: 4, loading: 3, connecting: 2, idle: 1, live: 0 };

const DEFAULT_REASONS = {
  connecting: "Waiting for the first data from QFEX…",
  loading: "Loading the account's orders…",
  stale: "QFEX is not answering; showing the last data received.",
  error: "This account needs attention.",
  idle: "",
  live: "",
};
const DEFAULT_ACTION = {
  error: "Check the account's API key in My accounts, or ask a team admin.",
};

const COUNTDOWN_IN_REASON = /[;,.]?\s*next try in \d+(\.\d+)? ?s\.?$/i;

function num(value) {
  return typeof value === "number" && isFinite(value) ? value : null;
}

/** The page's accounts and what the server last said about each. */
export class AccountStates {
  constructor(fixedLabel) {
    this.fixedLabel = fixedLabel || "";
    this.byId = new Map();
  }

  get(account) {
    let info = this.byId.get(account);
    if (!info) {
      info = {
        id: account,
        label: "",
        state: "connecting",
        reason: "",
        action: "",
        since: null,
        failures: 0,
        statusAsOf: null,
        nextRetryAt: null, // epoch seconds
        dataAsOf: null, // time of the last data applied (snapshot or diff)
        loaded: false, // a complete snapshot (or the first load after an empty one) is in
        loading: null, // {done, total, noun} while a snapshot's parts are arriving
      };
      this.byId.set(account, info);
    }
    return info;
  }

  values() {
    return Array.from(this.byId.values());
  }

  label(info) {
    return this.fixedLabel || info.label || "Account " + info.id;
  }

  /** Take a STATUS object (a status message, or a snapshot's `status`). */
  takeStatus(info, status) {
    if (!status || typeof status !== "object") {
      return;
    }
    const state = typeof status.state === "string" ? status.state : info.state;
    if (state !== info.state && num(status.since) === null) {
      info.since = Date.now() / 1000; // the server did not say: from when this page saw it
    }
    info.state = state;
    // The page renders the one countdown (from next_retry_at); a server that still writes its own into the
    // reason ("…; next try in 7 s.") would show a second one that disagrees.
    info.reason = typeof status.reason === "string" ? status.reason.replace(COUNTDOWN_IN_REASON, ".") : "";
    info.action = typeof status.action === "string" ? status.action : "";
    if (num(status.since) !== null) {
      info.since = status.since;
    }
    info.failures = Number.isInteger(status.failures) ? status.failures : 0;
    info.statusAsOf = num(status.as_of) !== null ? status.as_of : info.statusAsOf;
    info.nextRetryAt = num(status.next_retry_at);
  }

  rememberLabel(info, rows) {
    if (!info.label && rows && rows.length && rows[0].account_label) {
      info.label = String(rows[0].account_label);
    }
  }
}

/** When the account's shown data is from: for a stale account, the time of its last good data. */
export function dataTimeOf(info) {
  if (!info.loaded) {
    return null;
  }
  if (info.state === "stale" && info.statusAsOf !== null) {
    return info.statusAsOf;
  }
  if (info.dataAsOf === null) {
    return info.statusAsOf;
  }
  return info.statusAsOf !== null ? Math.max(info.dataAsOf, info.statusAsOf) : info.dataAsOf;
}

/** The state an account is shown in: "loading" while its first snapshot's parts arrive. */
export function shownState(info) {
  if (info.loading && !info.loaded) {
    return "loading";
  }
  if (!info.loaded && (info.state === "live" || info.state === "connecting")) {
    return "connecting";
  }
  return STATE_RANK[info.state] === undefined ? "connecting" : info.state;
}

/** "Loading 1,500 of 4,000 orders" / "Loading part 2 of 8". */
export function loadingText(loading) {
  if (!loading) {
    return "";
  }
  if (loading.total !== null && loading.total !== undefined) {
    return "Loading " + loading.done.toLocaleString("en-US") + " of " + loading.total.toLocaleString("en-US") + " orders";
  }
  return "Loading part " + loading.part + " of " + loading.parts;
}

/** One account as its chip shows it: {account, label, state, word, reason, action, since, dataAsOf, nextRetryAt, failures}. */
export function accountView(states, info) {
  const state = shownState(info);
  let reason = info.reason || DEFAULT_REASONS[state] || "";
  if (state === "loading") {
    reason = loadingText(info.loading);
  }
  return {
    account: info.id,
    label: states.label(info),
    state: state,
    word: stateLabel(state),
    reason: state === "live" ? "" : reason,
    action: state === "error" ? info.action || DEFAULT_ACTION.error : info.action,
    since: state === "live" ? null : info.since,
    dataAsOf: dataTimeOf(info),
    nextRetryAt: state === "stale" || state === "error" || state === "connecting" ? info.nextRetryAt : null,
    failures: info.failures,
  };
}

/**
 * The page's status: {state, word, reason, action, since (s), dataAsOf (s), nextRetryAt (s), accounts: [views]}.
 * `socket`: {state, fatal, reason, action, nextRetryAt (ms), downSince (ms)}; `hadData`: rows were shown once.
 * There is one countdown: the socket's while it is down, else the worst account's.
 */
export function pageStatus(states, socket, hadData, serverNote) {
  const views = states.values().map((info) => accountView(states, info));
  const oldest = (list) => {
    let t = null;
    for (const v of list) {
      if (v.dataAsOf !== null && (t === null || v.dataAsOf < t)) {
        t = v.dataAsOf;
      }
    }
    return t;
  };
  if (socket.fatal) {
    return {
      state: "error",
      reason: socket.reason,
      action: socket.action,
      since: socket.downSince !== null ? socket.downSince / 1000 : null,
      dataAsOf: oldest(views),
      nextRetryAt: null,
      accounts: views,
      scope: "page",
    };
  }
  if (socket.state !== "open") {
    return {
      state: hadData ? "stale" : "connecting",
      reason: hadData
        ? (socket.state === "connecting" ? "Reconnecting to the server now." : socket.reason || "Connection to the server lost.") +
          " Showing the last data received."
        : "Connecting to the server…",
      action: "",
      since: hadData && socket.downSince !== null ? socket.downSince / 1000 : null,
      dataAsOf: oldest(views),
      nextRetryAt: socket.state === "closed" && socket.nextRetryAt !== null ? socket.nextRetryAt / 1000 : null,
      accounts: views,
      scope: "page",
    };
  }
  let worst = null;
  for (const v of views) {
    if (worst === null || STATE_RANK[v.state] > STATE_RANK[worst.state]) {
      worst = v;
    }
  }
  if (worst === null) {
    return {
      state: "connecting",
      reason: serverNote || "Waiting for data…",
      action: "",
      since: null,
      dataAsOf: null,
      nextRetryAt: null,
      accounts: views,
      scope: "page",
    };
  }
  const troubled = views.filter((v) => v.state !== "live");
  let reason = worst.reason;
  if (views.length > 1 && troubled.length > 1) {
    reason = troubled.length + " of " + views.length + " accounts are not live; see each account below.";
  } else if (views.length > 1 && troubled.length === 1) {
    reason = worst.label + ": " + worst.reason;
  }
  if (serverNote) {
    reason = reason ? reason + " " + serverNote : serverNote;
  }
  // The page's time is that of the accounts shown live; a stale account says its own time on its chip.
  const live = views.filter((v) => v.state === "live");
  return {
    state: worst.state,
    reason: reason,
    action: worst.action,
    since: worst.since,
    dataAsOf: oldest(live.length ? live : views),
    nextRetryAt: worst.nextRetryAt,
    failures: worst.failures,
    accounts: views,
    scope: views.length > 1 ? "accounts" : "account",
  };
}
