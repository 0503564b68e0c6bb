// What the page says about its data: per account, and for the page.
import { test } from "node:test";
import assert from "node:assert/strict";

import { AccountStates, accountView, loadingText, pageStatus } from "../../static/js/live/status.js";

const openSocket = { state: "open", fatal: false, reason: "", action: "", nextRetryAt: null, downSince: null };

function loaded(states, id, status, label) {
  const info = states.get(id);
  info.label = label || "Account " + id;
  info.loaded = true;
  info.dataAsOf = 1000;
  states.takeStatus(info, status);
  return info;
}

test("loading says how far the snapshot is, and shows no data time", () => {
  const states = new AccountStates("Desk main");
  const info = states.get(7);
  info.loading = { done: 1500, total: 4000, part: 3, parts: 8 };
  const s = pageStatus(states, openSocket, false, "");
  assert.equal(s.state, "loading");
  assert.equal(s.reason, "Loading 1,500 of 4,000 orders");
  assert.equal(s.dataAsOf, null);
  assert.equal(loadingText({ done: 0, total: null, part: 2, parts: 8 }), "Loading part 2 of 8");
});

test("stale says why and since when, with one countdown; the server's own countdown is dropped", () => {
  const states = new AccountStates("Desk main");
  loaded(states, 7, {
    state: "stale", reason: "QFEX did not answer within 10 s; next try in 7 s.", action: "", as_of: 990,
    since: 995, next_retry_at: 1010, failures: 3,
  });
  const s = pageStatus(states, openSocket, true, "");
  assert.equal(s.state, "stale");
  assert.equal(s.reason, "QFEX did not answer within 10 s.");
  assert.equal(s.since, 995);
  assert.equal(s.nextRetryAt, 1010);
  assert.equal(s.dataAsOf, 990); // the last good data
});

test("error shows the reason and what to do", () => {
  const states = new AccountStates("Desk main");
  loaded(states, 7, { state: "error", reason: "QFEX refused the API key.", action: "Replace the key in My accounts.", as_of: 990 });
  const s = pageStatus(states, openSocket, true, "");
  assert.equal(s.state, "error");
  assert.equal(s.action, "Replace the key in My accounts.");
  const noAction = new AccountStates("");
  loaded(noAction, 7, { state: "error", reason: "Too many failed tries.", action: "" });
  assert.match(accountView(noAction, noAction.get(7)).action, /API key/);
});

test("all accounts: each account keeps its state; the page names the one in trouble and its time stays the live ones'", () => {
  const states = new AccountStates("");
  loaded(states, 7, { state: "live", as_of: 1000 }, "Desk main");
  loaded(states, 8, { state: "stale", reason: "QFEX is not answering.", as_of: 900, since: 950 }, "Desk hedges");
  const s = pageStatus(states, openSocket, true, "");
  assert.equal(s.state, "stale");
  assert.equal(s.reason, "Desk hedges: QFEX is not answering.");
  assert.equal(s.dataAsOf, 1000);
  assert.deepEqual(s.accounts.map((v) => [v.label, v.state, v.dataAsOf]), [["Desk main", "live", 1000], ["Desk hedges", "stale", 900]]);
  assert.equal(s.scope, "accounts");
});

test("a lost connection is stale with the socket's countdown; a refused one is an error with what to do", () => {
  const states = new AccountStates("Desk main");
  loaded(states, 7, { state: "live", as_of: 1000 });
  const down = { state: "closed", fatal: false, reason: "Connection to the server lost.", action: "", nextRetryAt: 5_000_000, downSince: 4_000_000 };
  const s = pageStatus(states, down, true, "");
  assert.equal(s.state, "stale");
  assert.equal(s.nextRetryAt, 5000);
  assert.equal(s.since, 4000);
  const refused = { ...down, fatal: true, reason: "You are signed out.", action: "Reload the page to sign in again." };
  assert.deepEqual([pageStatus(states, refused, true, "").state, pageStatus(states, refused, true, "").action], ["error", "Reload the page to sign in again."]);
});
