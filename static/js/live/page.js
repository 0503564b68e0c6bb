/*
 * The live orders page: reads its configuration from the `live-config` json_script, builds the three tables,
 * wires the socket to them and to the status, and keeps filters, sort and columns in the URL (columns also in
 * the person's preferences). Native ES modules, no build step; every module has one concern (see the imports).
 *
 * Test hooks (see the browser tests): document.body.dataset.socket = connecting|open|closed,
 * .renderedSeq = last seq rendered (per-account page; the all-accounts page has window.qfexLive.seqs),
 * .state = the state the indicator shows; window.qfexLive = {orders, twaps, closed, views, applyMessage, ...}.
 */

import { COMPACT_SHARES, closedColumns, orderColumns, twapColumns } from "./columns.js";
import { countText, filterText } from "./counts_view.js";
import { buildColumnChooser, fillSymbols, setupPopovers, setupSearchKey, setupTabs } from "./controls.js";
import { setupRowDetails } from "./details.js";
import { FeedModel } from "./feed.js";
import { PrecisionBook } from "./precision.js";
import { Preferences } from "./prefs.js";
import { socketUrl } from "./protocol.js";
import { LiveSocket } from "./socket.js";
import { AccountStates, dataTimeOf, pageStatus, shownState } from "./status.js";
import { StatusView } from "./status_view.js";
import { renderSummary } from "./summary_view.js";
import { setupExports, setupRefresh } from "./page_actions.js";
import { LiveTable } from "./table.js";
import { Clock, ageText, relativeText, shortAgeText } from "./timefmt.js";
import { twapSchedule } from "./twap_math.js";
import { UrlState } from "./url_state.js";

const doc = document;
const body = doc.body;
const config = JSON.parse(doc.getElementById("live-config").textContent);
const allMode = config.mode === "all";
const $ = (id) => doc.getElementById(id);

const SERVER_NOTE_MS = 15000;
const DIMMED = new Set(["stale", "error"]);
const DEFAULT_SORT = {
  orders: [{ id: "age", dir: "asc" }], // newest first
  twaps: [],
  closed: [{ id: "closed_at", dir: "desc" }],
};

const clock = new Clock(config.time_zone || "UTC", config.zone_labels || {});
const precision = new PrecisionBook();
const states = new AccountStates(allMode ? "" : config.account_label);
const url = new UrlState(window.location, window.history);
const prefs = new Preferences(config);
const phone = window.matchMedia("(max-width: 40rem)");
const el = {
  page: doc.querySelector(".live-page"),
  symbol: $("live-symbol"),
  search: $("live-search"),
  group: $("live-group"),
  controls: $("live-controls"),
  refresh: $("live-refresh"),
  filterNote: $("live-filter-note"),
  filterText: $("live-filter-text"),
};
let activeTab = url.get("tab") === "closed" ? "closed" : "orders";
// Messages that arrive before the tables are built wait here, in order (null once they are built).
let queue = [];

const ctx = {
  precision: precision,
  clock: clock,
  nowMs: () => Date.now(),
  compact: phone.matches, // narrow cells (short ages)
  accountState: (account) => shownState(states.get(account)),
  onPrecision: (drawn) => {
    for (const view of Object.values(views)) {
      view.columns.fitWidths();
      if (view !== drawn) {
        view.reformatAll();
      }
    }
  },
};

function rowClasses(kind) {
  return (d) => ({
    "row-stale": DIMMED.has(shownState(states.get(d._acct))),
    "row-overdue": kind === "twaps" && twapSchedule(d, Date.now()).overdue,
  });
}

function makeView(name, specs, options) {
  const known = (id) => specs.some((s) => s.id === id);
  const sort = url.sort(name, known);
  return new LiveTable(
    $(name + "-table"),
    Object.assign(
      {
        kind: name,
        specs: specs,
        ctx: ctx,
        sort: sort !== null ? sort : DEFAULT_SORT[name],
        visibility: url.columns(name) || prefs.columnsOf(name) || {},
        compact: phone.matches,
        compactShares: COMPACT_SHARES[name],
        rowClasses: rowClasses(name),
        onChange: scheduleRender,
        onUserChange: writeUrl,
      },
      options
    )
  );
}

const views = {
  orders: makeView("orders", orderColumns(allMode), { height: "60vh", placeholder: "No open orders" }),
  closed: makeView("closed", closedColumns(allMode), { height: "60vh", placeholder: "No orders closed yet", linger: false }),
  twaps: makeView("twaps", twapColumns(allMode), { maxHeight: "40vh", minHeight: "6rem", placeholder: "No active TWAPs" }),
};

function writeUrl() {
  const tables = {};
  for (const [name, view] of Object.entries(views)) {
    const sort = view.columns.sort;
    const made = view.columns.choicesMade();
    tables[name] = {
      sort: sort,
      sortIsDefault: JSON.stringify(sort) === JSON.stringify(DEFAULT_SORT[name]),
      hidden: made.hidden,
      shown: made.shown,
    };
  }
  url.write({ symbol: el.symbol.value, q: el.search.value.trim(), group: el.group.checked, tab: activeTab, tables: tables });
}

// --- the feed -------------------------------------------------------------------------------------

const model = new FeedModel(views, states, {
  resync: (account) => socket.send(allMode ? { type: "resync", account: account } : { type: "resync" }),
  onHealthy: () => socket.markHealthy(),
  onApplied: (account, msg) => {
    if (!allMode && typeof model.seqs[account] === "number") {
      body.dataset.renderedSeq = String(model.seqs[account]);
    }
    restyleAccount(account);
    renderStatus();
    scheduleRender();
  },
});

// Rows carry their account's state: when it starts or stops dimming, those rows are re-rendered.
const dimmed = new Map();
function restyleAccount(account) {
  if (account === null || account === undefined) {
    return;
  }
  const state = shownState(states.get(account));
  const previous = dimmed.get(account);
  dimmed.set(account, state);
  if (previous !== undefined && previous !== state) {
    for (const view of Object.values(views)) {
      view.reformatWhere((d) => d._acct === account);
    }
  }
}

function applyMessage(msg) {
  if (queue !== null) {
    queue.push(msg);
  } else {
    model.handle(msg);
  }
}

const socket = new LiveSocket(socketUrl(config.ws_path, window.location), {
  onOpen: () => model.reconnected(),
  onMessage: applyMessage,
  onChange: renderStatus,
});

// --- rendering --------------------------------------------------------------------------------

const statusView = new StatusView(doc, clock);
let refreshCooling = false;

function currentStatus() {
  const note = model.serverNote && Date.now() - model.serverNoteAt < SERVER_NOTE_MS ? model.serverNote : "";
  return pageStatus(states, socket, model.hadData, note);
}

function renderStatus() {
  const s = currentStatus();
  body.dataset.state = s.state;
  body.dataset.socket = socket.state;
  el.page.classList.toggle("socket-down", socket.state !== "open" && model.hadData);
  statusView.render(s, Date.now());
  el.refresh.disabled = refreshCooling || socket.state !== "open";
}


// Counts follow every change at once; the summary (a pass over every shown row) at most every 200 ms.
let summaryTimer = null;
function scheduleRender() {
  if (queue !== null) {
    return; // the tables are not built yet
  }
  renderCounts();
  if (summaryTimer === null) {
    summaryTimer = setTimeout(() => {
      summaryTimer = null;
      const filtering = !!(el.symbol.value || el.search.value.trim());
      renderSummary(doc, views.orders.shownRows(), filtering, (symbol) => setSymbol(symbol));
      body.dataset.summarized = String(Date.now());
    }, 200);
  }
}

function renderCounts() {
  for (const [name, view] of Object.entries(views)) {
    const node = $(name + "-count");
    const text = countText(name, view.counts(), states.values(), socket.fatal);
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }
  fillSymbols(el.symbol, views.orders.symbols().concat(views.twaps.symbols(), views.closed.symbols()));
  renderFilterNote(!!(el.symbol.value || el.search.value.trim()));
}

function renderFilterNote(filtering) {
  el.filterNote.hidden = !filtering;
  const text = filterText(el.symbol.value, el.search.value.trim(), views.orders.counts(), views.twaps.counts());
  if (el.filterText.textContent !== text) {
    el.filterText.textContent = text;
  }
  for (const view of Object.values(views)) {
    view.columns.setPlaceholder(filtering ? "Nothing matches the filters." : null, filtering);
  }
}

// --- controls ---------------------------------------------------------------------------------

function applyFilter() {
  for (const view of Object.values(views)) {
    view.setFilter(el.symbol.value, el.search.value);
  }
  scheduleRender();
}

function setSymbol(symbol) {
  fillSymbols(el.symbol, [symbol]);
  el.symbol.value = symbol;
  applyFilter();
  writeUrl();
}

function clearFilters() {
  el.symbol.value = "";
  el.search.value = "";
  applyFilter();
  writeUrl();
}

el.controls.addEventListener("submit", (event) => event.preventDefault());
fillSymbols(el.symbol, url.get("symbol") ? [url.get("symbol")] : []);
el.symbol.value = url.get("symbol");
el.search.value = url.get("q");
el.group.checked = url.get("group") === "symbol";
el.symbol.addEventListener("change", () => {
  applyFilter();
  writeUrl();
});
let searchTimer = null;
el.search.addEventListener("input", () => {
  // Typing fast re-filters once, a moment after the last key.
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    applyFilter();
    writeUrl();
  }, 150);
});
el.group.addEventListener("change", () => {
  for (const view of Object.values(views)) {
    view.columns.setGroupBy(el.group.checked);
  }
  writeUrl();
});
$("live-clear").addEventListener("click", clearFilters);
doc.addEventListener("click", (event) => {
  if (event.target.closest && event.target.closest("[data-action='clear-filters']")) {
    clearFilters();
  }
});
setupSearchKey(doc, el.search);
setupPopovers(doc);

setupRefresh(el.refresh, socket, (cooling) => {
  refreshCooling = cooling;
  renderStatus();
});
setupExports(
  doc,
  views,
  {
    row: (d) => dataTimeOf(states.get(d._acct)),
    oldest: () => {
      const times = states.values().map(dataTimeOf).filter((t) => t !== null);
      return times.length ? Math.min(...times) : null;
    },
  },
  clock,
  csvScope
);

function csvScope() {
  return allMode ? "all-accounts" : "account-" + String(config.account).replace(/[^A-Za-z0-9_-]/g, "");
}

// --- start --------------------------------------------------------------------------------------

const ready = Promise.all(Object.values(views).map((v) => v.ready)).then(() => {
  for (const [name, view] of Object.entries(views)) {
    buildColumnChooser($(name + "-columns"), view.columns.choices(), (id, visible) => {
      view.columns.setVisible(id, visible);
      prefs.setColumns(name, view.columns.choicesMade());
      writeUrl();
    });
    view.columns.setGroupBy(el.group.checked);
    setupRowDetails(doc, view, () => phone.matches);
  }
  setupTabs(doc, activeTab, (tab) => {
    activeTab = tab;
    views[tab].table.redraw(true); // a table built while hidden measures itself once shown
    writeUrl();
  });
  applyFilter();
  const waiting = queue;
  queue = null;
  for (const msg of waiting) {
    model.handle(msg);
  }
  scheduleRender();
  renderStatus();
  body.dataset.ready = "true";
});

phone.addEventListener("change", () => {
  ctx.compact = phone.matches;
  for (const view of Object.values(views)) {
    view.columns.setCompact(phone.matches);
    view.reformatAll();
  }
});

window.qfexLive = {
  orders: views.orders.table,
  twaps: views.twaps.table,
  closed: views.closed.table,
  views: views,
  seqs: model.seqs,
  socket: socket,
  ready: ready,
  applyMessage: applyMessage,
  precision: precision,
  clock: clock,
  prefs: prefs,
  status: currentStatus,
};

body.dataset.socket = "connecting";
body.dataset.state = "connecting";
socket.start();

// One timer for everything that ages: relative times in rendered rows, TWAP schedules, the countdown.
setInterval(() => {
  const nowMs = Date.now();
  for (const view of Object.values(views)) {
    for (const node of view.element.querySelectorAll("time.rel")) {
      const ts = Number(node.dataset.ts);
      const kind = node.dataset.rel;
      const text = kind === "age" ? ageText(ts, nowMs) : kind === "age-short" ? shortAgeText(ts, nowMs) : relativeText(ts, nowMs);
      if (node.textContent !== text) {
        node.textContent = text;
      }
    }
  }
  views.twaps.refreshClock(["_tick_schedule", "_tick_elapsed", "_tick_left"], nowMs);
  renderStatus();
}, 1000);
