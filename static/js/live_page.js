/*
 * The live orders page: reads its configuration from the `live-config` json_script, wires the socket to
 * the two tables and the status indicator, and keeps sort, filter, search and column choices in the URL.
 *
 * Test hooks (see the browser tests): document.body.dataset.socket = connecting|open|closed,
 * .renderedSeq = last seq rendered (per-account page; the all-accounts page has window.qfexLive.seqs),
 * .state = the state the indicator shows; window.qfexLive = {orders, twaps, views, applyMessage, ...}.
 */
(function () {
  "use strict";

  const NS = window.QfexLive;
  const fmt = NS.format;
  const body = document.body;
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const allMode = config.mode === "all";

  const STATE_WORDS = { live: "Live", stale: "Stale", connecting: "Connecting", error: "Error", idle: "Idle" };
  const STATE_RANK = { error: 4, stale: 3, connecting: 2, idle: 1, live: 0 };
  // Said when the server gives a state without a reason.
  const DEFAULT_REASONS = {
    connecting: "Waiting for the first data from QFEX…",
    stale: "The data may be out of date.",
    error: "This account needs attention.",
    idle: "",
    live: "",
  };
  const REFRESH_COOLDOWN_MS = 2000;
  const SERVER_ERROR_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("live-status"),
    badge: $("live-status-badge"),
    reason: $("live-status-reason"),
    time: $("live-status-time"),
    retry: $("live-status-retry"),
    accounts: $("live-status-accounts"),
    announcer: $("live-announcer"),
    refresh: $("live-refresh"),
    symbol: $("live-symbol"),
    search: $("live-search"),
    controls: $("live-controls"),
  };

  // ---------------------------------------------------------------------------------------------
  // URL state: symbol, q, <table>_sort=field.dir, <table>_hide=field,field
  // ---------------------------------------------------------------------------------------------

  const params = new URLSearchParams(window.location.search);

  function sortFromUrl(name) {
    const value = params.get(name + "_sort") || "";
    const dot = value.lastIndexOf(".");
    if (dot < 1) {
      return null;
    }
    const dir = value.slice(dot + 1);
    return dir === "asc" || dir === "desc" ? { field: value.slice(0, dot), dir: dir } : null;
  }

  function hiddenFromUrl(name) {
    const value = params.get(name + "_hide");
    return value ? value.split(",").filter(Boolean) : [];
  }

  function writeUrl() {
    const next = new URLSearchParams(window.location.search);
    const set = (key, value) => (value ? next.set(key, value) : next.delete(key));
    set("symbol", el.symbol.value);
    set("q", el.search.value.trim());
    for (const [name, view] of Object.entries(views)) {
      const sort = view.getSort();
      set(name + "_sort", sort ? sort.field + "." + sort.dir : "");
      set(name + "_hide", view.hiddenColumns().join(","));
    }
    const query = next.toString();
    const url = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
    if (url !== window.location.pathname + window.location.search + window.location.hash) {
      history.replaceState(history.state, "", url);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Tables
  // ---------------------------------------------------------------------------------------------

  function makeView(name, options) {
    return new NS.LiveTable(
      $(name + "-table"),
      Object.assign(
        {
          kind: name,
          showAccount: allMode,
          sort: sortFromUrl(name),
          hidden: hiddenFromUrl(name),
          onChange: onTableChange,
          onUserChange: writeUrl,
        },
        options
      )
    );
  }

  const views = {
    orders: makeView("orders", { height: "60vh", placeholder: "No open orders" }),
    twaps: makeView("twaps", { maxHeight: "40vh", minHeight: "6rem", placeholder: "No active TWAPs" }),
  };

  const NOUNS = { orders: ["order", "orders"], twaps: ["TWAP", "TWAPs"] };

  function countText(name, counts) {
    const noun = NOUNS[name][counts.total === 1 ? 0 : 1];
    const total = counts.total.toLocaleString("en-US") + " " + noun;
    return counts.shown === counts.total ? total : "shown " + counts.shown.toLocaleString("en-US") + " of " + total;
  }

  let symbolsKey = "";

  function onTableChange() {
    for (const [name, view] of Object.entries(views)) {
      const text = countText(name, view.counts());
      const node = $(name + "-count");
      if (node.textContent !== text) {
        node.textContent = text;
      }
    }
    const present = new Set(views.orders.symbols().concat(views.twaps.symbols()));
    if (el.symbol.value) {
      present.add(el.symbol.value); // keep the chosen symbol selectable while it has no rows
    }
    const sorted = Array.from(present).sort();
    const key = sorted.join("\u0000");
    if (key !== symbolsKey) {
      symbolsKey = key;
      const chosen = el.symbol.value;
      const options = [new Option("All symbols", "")];
      for (const symbol of sorted) {
        options.push(new Option(symbol, symbol)); // Option() sets text, never HTML
      }
      el.symbol.replaceChildren(...options);
      el.symbol.value = chosen;
    }
  }

  function applyFilter() {
    for (const view of Object.values(views)) {
      view.setFilter(el.symbol.value, el.search.value);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Accounts: seq, data time, status
  // ---------------------------------------------------------------------------------------------

  const tracker = new NS.SeqTracker();
  const assembler = new NS.SnapshotAssembler();
  const seqs = {}; // account -> last rendered seq (the all-accounts test hook)
  const accounts = new Map(); // account -> {label, state, reason, statusAsOf, nextRetryAt, dataAsOf}
  let hadData = false;
  let serverError = ""; // words from an `error` frame, shown for SERVER_ERROR_MS
  let serverErrorAt = 0;
  let refreshCooling = false;

  function accountInfo(account) {
    let info = accounts.get(account);
    if (!info) {
      info = { label: "", state: "connecting", reason: "", statusAsOf: null, nextRetryAt: null, dataAsOf: null };
      accounts.set(account, info);
    }
    return info;
  }

  function labelOf(account, info) {
    if (!allMode && config.account_label) {
      return config.account_label;
    }
    return info.label || "Account " + account;
  }

  function takeStatus(info, status) {
    if (!status || typeof status !== "object") {
      return;
    }
    info.state = status.state || info.state;
    info.reason = status.reason || "";
    info.statusAsOf = typeof status.as_of === "number" ? status.as_of : info.statusAsOf;
    info.nextRetryAt = typeof status.next_retry_at === "number" ? status.next_retry_at : null;
  }

  function rememberLabel(info, rows) {
    if (!info.label && rows && rows.length && rows[0].account_label) {
      info.label = String(rows[0].account_label);
    }
  }

  function markRendered(account, seq) {
    if (typeof seq !== "number") {
      return;
    }
    seqs[account] = seq;
    if (!allMode) {
      body.dataset.renderedSeq = String(seq);
    }
  }

  function requestResync(account) {
    socket.send(allMode ? { type: "resync", account: account } : { type: "resync" });
  }

  /** Apply one server message (from the socket, or from a test or benchmark through qfexLive). */
  function handleMessage(msg) {
    if (!msg || typeof msg.type !== "string") {
      return;
    }
    if (msg.type === "snapshot") {
      // A large snapshot comes in parts: rows are replaced only once all parts of one seq are in.
      const assembled = assembler.add(msg);
      if (assembled.resync && tracker.needSnapshot(msg.account, Date.now())) {
        requestResync(msg.account);
      }
      if (!assembled.snapshot) {
        return;
      }
      msg = assembled.snapshot;
    }
    const verdict = tracker.check(msg, Date.now());
    if (verdict.resync) {
      requestResync(msg.account);
    }
    if (!verdict.apply) {
      return;
    }
    const account = msg.account;
    switch (msg.type) {
      case "snapshot": {
        const info = accountInfo(account);
        const orders = Array.isArray(msg.orders) ? msg.orders : [];
        const twaps = Array.isArray(msg.twaps) ? msg.twaps : [];
        rememberLabel(info, orders.length ? orders : twaps);
        // A snapshot taken before the first fetch carries no data (as_of null): rows arriving after
        // it are the first load and should not all flash as "new".
        const hasData = typeof msg.as_of === "number";
        views.orders.applySnapshot(account, orders, hasData);
        views.twaps.applySnapshot(account, twaps, hasData);
        info.dataAsOf = typeof msg.as_of === "number" ? msg.as_of : info.dataAsOf;
        takeStatus(info, msg.status);
        hadData = true;
        serverError = "";
        socket.markHealthy();
        markRendered(account, msg.seq);
        break;
      }
      case "diff": {
        const info = accountInfo(account);
        const upsert = msg.upsert || {};
        const remove = msg.remove || {};
        rememberLabel(info, upsert.orders || upsert.twaps);
        // The first fetch after an empty snapshot arrives as diffs (several, for a big book, all with
        // the same as_of): that is the first load, not a change, so its rows do not flash.
        if (info.dataAsOf == null && typeof msg.as_of === "number") {
          info.firstLoadAsOf = msg.as_of;
        }
        const flash = info.firstLoadAsOf === undefined || msg.as_of !== info.firstLoadAsOf;
        views.orders.applyDiff(account, upsert.orders || [], remove.orders || [], flash);
        views.twaps.applyDiff(account, upsert.twaps || [], remove.twaps || [], flash);
        info.dataAsOf = typeof msg.as_of === "number" ? msg.as_of : info.dataAsOf;
        markRendered(account, msg.seq);
        break;
      }
      case "status": {
        if (account === null || account === undefined) {
          serverError = msg.state === "error" ? msg.reason || "" : "";
          serverErrorAt = Date.now();
        } else {
          takeStatus(accountInfo(account), msg);
        }
        break;
      }
      case "error":
        // Our own frame was refused (rate limit, bad message): tell the person, keep the data.
        serverError = msg.message || "The server refused a request.";
        serverErrorAt = Date.now();
        break;
      default:
        return;
    }
    renderStatus();
  }

  // Messages that arrive before both tables are built wait here, in order.
  let queue = [];
  const ready = Promise.all([views.orders.ready, views.twaps.ready]).then(() => {
    for (const [name, view] of Object.entries(views)) {
      buildColumnChooser(name, view);
    }
    applyFilter();
    const waiting = queue;
    queue = null;
    for (const msg of waiting) {
      handleMessage(msg);
    }
    onTableChange();
    renderStatus();
  });

  function applyMessage(msg) {
    if (queue !== null) {
      queue.push(msg);
    } else {
      handleMessage(msg);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Status indicator
  // ---------------------------------------------------------------------------------------------

  let lastAnnounced = "";
  let lastLines = "";

  /** What the indicator shows: {state, reason, dataAsOf, nextRetryAt (ms), lines: [per-account text]}. */
  function overallStatus() {
    if (socket.fatal) {
      return { state: "error", reason: socket.reason, dataAsOf: oldestDataAsOf(), nextRetryAt: null, lines: [] };
    }
    if (socket.state !== "open") {
      const reconnecting = socket.state === "connecting" ? "Reconnecting now." : socket.reason;
      return {
        state: hadData ? "stale" : "connecting",
        reason: hadData ? reconnecting + " Showing the last data received." : "Connecting to the server…",
        dataAsOf: oldestDataAsOf(),
        nextRetryAt: socket.nextRetryAt,
        lines: [],
      };
    }
    let worst = null;
    const lines = [];
    for (const [account, info] of accounts) {
      if (worst === null || STATE_RANK[info.state] > STATE_RANK[worst.state]) {
        worst = info;
      }
      if (allMode && info.state !== "live") {
        const why = info.reason || DEFAULT_REASONS[info.state] || "";
        lines.push(labelOf(account, info) + ": " + (STATE_WORDS[info.state] || info.state) + (why ? " — " + why : ""));
      }
    }
    if (worst === null) {
      return { state: "connecting", reason: serverError || "Waiting for data…", dataAsOf: null, nextRetryAt: null, lines: [] };
    }
    const state = STATE_RANK[worst.state] === undefined ? "connecting" : worst.state;
    let reason = worst.reason || DEFAULT_REASONS[state];
    if (allMode && state !== "live") {
      reason = lines.length === 1 ? lines[0] : lines.length + " accounts need attention.";
    }
    if (serverError && Date.now() - serverErrorAt < SERVER_ERROR_MS) {
      reason = reason ? reason + " " + serverError : serverError;
    }
    const retry = worst.nextRetryAt !== null ? worst.nextRetryAt * 1000 : null;
    return { state: state, reason: reason, dataAsOf: oldestDataAsOf(), nextRetryAt: retry, lines: allMode && lines.length > 1 ? lines : [] };
  }

  /** The data time shown: the oldest of the accounts' (for a stale account, the time of its last good data). */
  function oldestDataAsOf() {
    let oldest = null;
    for (const info of accounts.values()) {
      const t = dataAsOfOf(info);
      if (t !== null && (oldest === null || t < oldest)) {
        oldest = t;
      }
    }
    return oldest;
  }

  function dataAsOfOf(info) {
    if (info.state === "stale" && info.statusAsOf !== null) {
      return info.statusAsOf;
    }
    if (info.dataAsOf === null) {
      return info.statusAsOf;
    }
    return info.statusAsOf !== null ? Math.max(info.dataAsOf, info.statusAsOf) : info.dataAsOf;
  }

  function setText(node, text) {
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }

  function renderStatus() {
    const s = overallStatus();
    const nowMs = Date.now();
    body.dataset.state = s.state;
    body.dataset.socket = socket.state;
    el.status.dataset.state = s.state;
    setText(el.badge, STATE_WORDS[s.state] || s.state);
    setText(el.reason, s.reason || "");
    setText(
      el.time,
      s.dataAsOf !== null ? "Data as of " + fmt.clockText(s.dataAsOf) + " (" + fmt.relativeText(s.dataAsOf, nowMs) + ")" : "No data yet"
    );
    el.time.title = s.dataAsOf !== null ? fmt.localText(s.dataAsOf) + " " + fmt.localZone : "";
    let retry = "";
    if (s.nextRetryAt !== null && s.state !== "live") {
      const secs = Math.max(0, Math.ceil((s.nextRetryAt - nowMs) / 1000));
      retry = secs > 0 ? "Next try in " + secs + " s." : "Trying again now.";
    }
    setText(el.retry, retry);
    el.refresh.disabled = refreshCooling || socket.state !== "open";
    const linesKey = s.lines.join("\n");
    if (linesKey !== lastLines) {
      lastLines = linesKey;
      el.accounts.replaceChildren(
        ...s.lines.map((line) => {
          const li = document.createElement("li");
          li.textContent = line;
          return li;
        })
      );
    }
    // Announce changes of state (not every diff, not the countdown).
    const announcement = (STATE_WORDS[s.state] || s.state) + (s.state === "live" ? "" : ": " + (s.reason || ""));
    if (announcement !== lastAnnounced) {
      lastAnnounced = announcement;
      el.announcer.textContent = announcement;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Socket
  // ---------------------------------------------------------------------------------------------

  function onSocketOpen() {
    // A new connection starts from the snapshots the server sends on join; until they come, what is
    // shown is the old data.
    tracker.reset();
    assembler.reset();
    for (const info of accounts.values()) {
      info.state = "stale";
      info.reason = "Reconnected; waiting for fresh data.";
      info.nextRetryAt = null;
    }
  }

  const socket = new NS.LiveSocket(NS.socketUrl(config.ws_path), {
    onOpen: onSocketOpen,
    onMessage: applyMessage,
    onChange: renderStatus,
  });

  // ---------------------------------------------------------------------------------------------
  // Controls
  // ---------------------------------------------------------------------------------------------

  el.controls.addEventListener("submit", (event) => event.preventDefault());

  el.symbol.value = params.get("symbol") || "";
  if (el.symbol.value !== (params.get("symbol") || "")) {
    // The symbol is not among the rows yet: keep it chosen until data arrives.
    const wanted = params.get("symbol");
    el.symbol.append(new Option(wanted, wanted));
    el.symbol.value = wanted;
  }
  el.search.value = params.get("q") || "";

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

  el.refresh.addEventListener("click", () => {
    if (refreshCooling || !socket.send({ type: "refresh" })) {
      return;
    }
    // The server coalesces refreshes and rate-limits frames; a short cooldown keeps clicks polite.
    refreshCooling = true;
    el.refresh.textContent = "Refresh requested";
    renderStatus();
    setTimeout(() => {
      refreshCooling = false;
      el.refresh.textContent = "Refresh";
      renderStatus();
    }, REFRESH_COOLDOWN_MS);
  });

  function csvFileName(name) {
    const asOf = oldestDataAsOf();
    const stamp = asOf !== null ? fmt.utcText(asOf).replace(/[-:]/g, "").replace(" ", "T") + "Z" : "no-data";
    const scope = allMode ? "all-accounts" : "account-" + String(config.account).replace(/[^A-Za-z0-9_-]/g, "");
    return name + "-" + scope + "-" + stamp + ".csv";
  }

  for (const button of document.querySelectorAll("[data-export]")) {
    button.addEventListener("click", () => {
      const name = button.dataset.export;
      const csv = views[name].toCsv((account) => {
        const info = accounts.get(account);
        const t = info ? dataAsOfOf(info) : null;
        return t === null ? NaN : t;
      });
      // A byte-order mark lets spreadsheet programs read the file as UTF-8.
      const blob = new Blob(["\ufeff" + csv], { type: "text/csv;charset=utf-8" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = csvFileName(name);
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    });
  }

  function buildColumnChooser(name, view) {
    const box = $(name + "-columns");
    for (const choice of view.columnChoices()) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.checked = choice.visible;
      input.value = choice.id;
      input.addEventListener("change", () => {
        view.setColumnVisible(choice.id, input.checked);
        writeUrl();
      });
      label.append(input, " " + choice.title);
      box.append(label);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------

  window.qfexLive = {
    orders: views.orders.table,
    twaps: views.twaps.table,
    views: views,
    seqs: seqs,
    socket: socket,
    ready: ready,
    applyMessage: applyMessage,
  };

  body.dataset.socket = "connecting";
  body.dataset.state = "connecting";
  socket.start();

  // One timer for everything that ages: relative times in rendered rows, the indicator's countdown.
  setInterval(() => {
    const nowMs = Date.now();
    for (const view of Object.values(views)) {
      fmt.refreshRelativeTimes(view.element, nowMs);
    }
    renderStatus();
  }, 1000);
})();
