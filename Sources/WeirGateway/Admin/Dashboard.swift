/// The live dashboard served at `GET /` (README, "Dashboard"): one self-contained page (HTML, CSS
/// and script inline, nothing fetched from elsewhere) that polls `GET /status`, `/mode`,
/// `/servers` and `/metrics` every second and acts through the admin API with the session cookie
/// and the `X-Weir-CSRF` header. Rows are built once per server and updated in place.
enum Dashboard {
    /// The page, encoded once.
    static let page: [UInt8] = Array(html.utf8)

    private static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Weir dashboard</title>
<style>
:root { --up:#1b7f3b; --down:#c62828; --drain:#b26a00; --maint:#5c6bc0; --bg:#f6f7f9; --line:#dde1e6; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.4 system-ui, sans-serif; background:var(--bg); color:#1d2329; }
header { display:flex; align-items:center; gap:16px; padding:8px 16px; background:#1d2329; color:#fff; }
header h1 { font-size:16px; margin:0; }
header .grow { flex:1; }
#conn { font-size:12px; opacity:.85; }
#login { display:flex; gap:6px; align-items:center; }
#login input { width:280px; padding:3px 6px; }
main { padding:12px 16px; }
section { background:#fff; border:1px solid var(--line); border-radius:6px; margin-bottom:12px; }
section h2 { font-size:14px; margin:0; padding:6px 10px; border-bottom:1px solid var(--line); display:flex; gap:12px; }
section h2 .sub { font-weight:normal; color:#5a6570; }
table { border-collapse:collapse; width:100%; table-layout:fixed; }
th, td { padding:3px 8px; border-bottom:1px solid #eef0f2; text-align:left; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
th { font-weight:600; color:#5a6570; background:#fafbfc; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
.state { display:inline-block; min-width:48px; text-align:center; color:#fff; border-radius:3px; padding:0 4px; font-weight:600; }
tr.s-up .state { background:var(--up); }
tr.s-down .state { background:var(--down); }
tr.s-down td { background:#fdecea; }
tr.s-drain .state { background:var(--drain); }
tr.s-maint .state { background:var(--maint); }
.bar { position:relative; height:8px; background:#eef0f2; border-radius:4px; overflow:hidden; margin:2px 0; }
.bar i { position:absolute; left:0; top:0; bottom:0; width:0; background:#42a5f5; }
.bar.rep i { background:#9e9e9e; }
button { font:inherit; padding:1px 6px; cursor:pointer; }
#msg { padding:0 16px; min-height:18px; color:#5a6570; }
#msg.err { color:var(--down); }
.hidden { display:none !important; }
</style>
</head>
<body>
<header>
  <h1>Weir</h1>
  <span id="conn">connecting…</span>
  <span class="grow"></span>
  <form id="login" class="hidden" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" name="token" type="password" placeholder="from state_dir/admin.token or [admin] token">
    <button id="login-button" type="submit">Log in</button>
  </form>
  <button id="logout" class="hidden" type="button">Log out</button>
</header>
<div id="msg"></div>
<main>
  <section id="listeners-section">
    <h2>Listeners</h2>
    <table><thead><tr><th>Listener</th><th>Mode</th><th style="width:40%">Switch</th></tr></thead><tbody id="listeners"></tbody></table>
  </section>
  <div id="pools"></div>
</main>
<script>
"use strict";
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const dash = "\u2013";
let authenticated = false, readsOpen = true;
let metricsAbsentUntil = 0;
let previous = null;          // the last metrics sample: {t, servers: Map}
const poolViews = new Map();  // pool name -> {section, tbody, rows: Map(id -> row view), sub}
const listenerRows = new Map();

function say(text, error) { const m = $("msg"); m.textContent = text; m.className = error ? "err" : ""; }

async function get(path) {
  const r = await fetch(path, {credentials: "same-origin", cache: "no-store"});
  if (r.status === 401) { showLogin(true); return null; }
  if (!r.ok) return null;
  return path === "/metrics" ? r.text() : r.json();
}

async function post(path, body) {
  const r = await fetch(path, {method: "POST", credentials: "same-origin", cache: "no-store",
    headers: {"X-Weir-CSRF": "1", "Content-Type": "application/x-www-form-urlencoded"}, body: body || ""});
  const text = (await r.text()).trim();
  if (r.status === 401) showLogin(true);
  return {ok: r.ok, status: r.status, text};
}

function showLogin(show) {
  $("login").classList.toggle("hidden", !show);
  $("logout").classList.toggle("hidden", show);
}

// ---- Prometheus text: only the names the dashboard shows ----
function parseLabels(text) {
  const labels = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(text)) !== null) labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
  return labels;
}

function parseMetrics(text) {
  const servers = new Map();
  const entry = (l) => {
    const key = l.pool + "\u0000" + l.server;
    let e = servers.get(key);
    if (!e) { e = {codes: {}, buckets: new Map(), count: 0, sum: 0, inFlight: null}; servers.set(key, e); }
    return e;
  };
  for (const line of text.split("\n")) {
    if (line === "" || line[0] === "#") continue;
    const brace = line.indexOf("{");
    const close = line.lastIndexOf("}");
    if (brace < 0 || close < brace) continue;
    const name = line.slice(0, brace);
    const value = parseFloat(line.slice(close + 1).trim().split(" ")[0]);
    if (!isFinite(value) && !Number.isNaN(value)) continue;
    const l = parseLabels(line.slice(brace + 1, close));
    if (l.pool === undefined || l.server === undefined) continue;
    switch (name) {
      case "weir_server_responses_total": { const e = entry(l); e.codes[l.code] = (e.codes[l.code] || 0) + value; break; }
      case "weir_server_request_duration_seconds_bucket": {
        const le = l.le === "+Inf" ? Infinity : parseFloat(l.le);
        const e = entry(l); e.buckets.set(le, (e.buckets.get(le) || 0) + value); break;
      }
      case "weir_server_request_duration_seconds_count": entry(l).count += value; break;
      case "weir_server_request_duration_seconds_sum": entry(l).sum += value; break;
      case "weir_server_in_flight": entry(l).inFlight = value; break;
    }
  }
  return servers;
}

/// The q-quantile interpolated linearly within the bucket it falls in; null without observations.
function quantile(q, buckets) {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = bounds.length ? buckets.get(bounds[bounds.length - 1]) : 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const le of bounds) {
    const c = buckets.get(le);
    if (c >= rank) {
      if (le === Infinity) return lower;
      return c === below ? le : lower + (le - lower) * (rank - below) / (c - below);
    }
    lower = le; below = c;
  }
  return lower;
}

function totalOf(codes) { let n = 0; for (const k in codes) n += codes[k]; return n; }

/// Per server: requests/s and error rate from the counter deltas since the last poll, percentiles
/// from the histogram's delta (the last second), else since start.
function derive(now, sample) {
  const out = new Map();
  for (const [key, e] of sample) {
    const d = {rps: null, errors: null, p50: null, p95: null, p99: null, inFlight: e.inFlight};
    const before = previous && previous.servers.get(key);
    let buckets = e.buckets;
    if (before) {
      const seconds = (now - previous.t) / 1000;
      const n = totalOf(e.codes) - totalOf(before.codes);
      const errs = (e.codes["5xx"] || 0) - (before.codes["5xx"] || 0);
      if (seconds > 0 && n >= 0) d.rps = n / seconds;
      d.errors = n > 0 ? errs / n : 0;
      if (e.count - before.count > 0) {
        buckets = new Map();
        for (const [le, c] of e.buckets) buckets.set(le, c - (before.buckets.get(le) || 0));
      }
    }
    d.p50 = quantile(0.50, buckets); d.p95 = quantile(0.95, buckets); d.p99 = quantile(0.99, buckets);
    out.set(key, d);
  }
  return out;
}

// ---- Formatting ----
const pct = (v) => v === null || v === undefined ? dash : (v * 100).toFixed(0) + "%";
const rate = (v) => v === null || v === undefined ? dash : v < 10 ? v.toFixed(1) : v.toFixed(0);
const ms = (v) => v === null || v === undefined ? dash : v < 0.001 ? (v * 1e6).toFixed(0) + "µs" : v < 1 ? (v * 1000).toFixed(1) + "ms" : v.toFixed(2) + "s";
function setText(cell, text) { if (cell.textContent !== text) cell.textContent = text; }
function setBar(bar, value) {
  const w = value === null || value === undefined ? "0%" : Math.min(100, Math.max(0, value * 100)).toFixed(1) + "%";
  if (bar.style.width !== w) bar.style.width = w;
}

// ---- Views, built once and updated in place ----
const COLUMNS = ["Server", "Address", "State", "Load: effective / reported", "In flight", "Req/s", "Errors",
                 "p50", "p95", "p99", "Pinned", "Actions"];
const WIDTHS = ["10%", "11%", "6%", "16%", "6%", "6%", "6%", "6%", "6%", "6%", "5%", "16%"];

function poolView(name) {
  let v = poolViews.get(name);
  if (v) return v;
  const section = document.createElement("section");
  section.className = "pool";
  section.dataset.pool = name;
  const h = document.createElement("h2");
  const title = document.createElement("span"); title.textContent = "Pool " + name;
  const sub = document.createElement("span"); sub.className = "sub";
  h.append(title, sub);
  const table = document.createElement("table");
  const head = document.createElement("tr");
  COLUMNS.forEach((c, i) => { const th = document.createElement("th"); th.textContent = c; th.style.width = WIDTHS[i]; head.append(th); });
  const thead = document.createElement("thead"); thead.append(head);
  const tbody = document.createElement("tbody");
  table.append(thead, tbody);
  section.append(h, table);
  $("pools").append(section);
  v = {section, tbody, sub, rows: new Map(), seen: 0};
  poolViews.set(name, v);
  return v;
}

function serverRow(pool, id) {
  let r = pool.rows.get(id);
  if (r) return r;
  const tr = document.createElement("tr");
  tr.dataset.server = id;
  const cells = COLUMNS.map(() => document.createElement("td"));
  [4, 5, 6, 7, 8, 9, 10].forEach((i) => cells[i].className = "num");
  cells[0].textContent = id;
  const state = document.createElement("span"); state.className = "state"; cells[2].append(state);
  const eff = document.createElement("div"); eff.className = "bar"; const effI = document.createElement("i"); eff.append(effI);
  const rep = document.createElement("div"); rep.className = "bar rep"; const repI = document.createElement("i"); rep.append(repI);
  const loadText = document.createElement("span");
  cells[3].append(eff, rep, loadText);
  for (const action of ["drain", "enable", "maint"]) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = action; b.dataset.action = action; b.dataset.server = id;
    b.className = "act-" + action;
    cells[11].append(b, " ");
  }
  tr.append(...cells);
  pool.tbody.append(tr);
  r = {tr, cells, state, effI, repI, loadText, seen: 0};
  pool.rows.set(id, r);
  return r;
}

function renderListeners(doc) {
  if (!doc) return;
  const seen = new Set();
  for (const l of doc.listeners) {
    seen.add(l.name);
    let row = listenerRows.get(l.name);
    if (!row) {
      const tr = document.createElement("tr"); tr.dataset.listener = l.name;
      const name = document.createElement("td"); name.textContent = l.name;
      const mode = document.createElement("td");
      const actions = document.createElement("td");
      for (const m of ["proxy", "redirect"]) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = "switch to " + m; b.dataset.mode = m; b.dataset.listener = l.name;
        actions.append(b, " ");
      }
      tr.append(name, mode, actions);
      $("listeners").append(tr);
      row = {tr, mode};
      listenerRows.set(l.name, row);
    }
    setText(row.mode, l.mode);
  }
  for (const [name, row] of listenerRows) if (!seen.has(name)) { row.tr.remove(); listenerRows.delete(name); }
}

function render(status, pins, derived) {
  const stamp = Date.now();
  for (const p of status.pools) {
    const view = poolView(p.name);
    view.seen = stamp;
    let up = 0;
    for (const s of p.servers) {
      const r = serverRow(view, s.id);
      r.seen = stamp;
      const state = s.healthy || s.state !== "up" ? s.state : "down";
      const cls = "s-" + state;
      if (r.tr.className !== cls) r.tr.className = cls;
      if (state === "up") up++;
      setText(r.cells[1], s.address);
      setText(r.state, state);
      setBar(r.effI, s.load);
      setBar(r.repI, s.reported_load);
      setText(r.loadText, pct(s.load) + " / " + pct(s.reported_load));
      const d = derived && derived.get(p.name + "\u0000" + s.id);
      setText(r.cells[4], String(d && d.inFlight !== null ? d.inFlight : s.in_flight));
      setText(r.cells[5], rate(d ? d.rps : null));
      setText(r.cells[6], d && d.errors !== null ? pct(d.errors) : dash);
      setText(r.cells[7], ms(d ? d.p50 : null));
      setText(r.cells[8], ms(d ? d.p95 : null));
      setText(r.cells[9], ms(d ? d.p99 : null));
      setText(r.cells[10], pins && pins.has(s.id) ? String(pins.get(s.id)) : dash);
    }
    setText(view.sub, p.policy + " · " + up + "/" + p.servers.length + " up");
    for (const [id, r] of view.rows) if (r.seen !== stamp) { r.tr.remove(); view.rows.delete(id); }
  }
  for (const [name, v] of poolViews) if (v.seen !== stamp) { v.section.remove(); poolViews.delete(name); }
}

async function metrics() {
  if (Date.now() < metricsAbsentUntil) return null;
  try {
    const r = await fetch("/metrics", {credentials: "same-origin", cache: "no-store"});
    if (!r.ok) { metricsAbsentUntil = Date.now() + 30000; return null; }
    return await r.text();
  } catch (e) { return null; }
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const [status, modes, register, text] = await Promise.all([get("/status"), get("/mode"), get("/servers"), metrics()]);
    if (!status) { setText($("conn"), authenticated || readsOpen ? "no answer from /status" : "log in to see the gateway"); return; }
    const now = Date.now();
    let derived = null;
    if (text !== null) {
      const sample = parseMetrics(text);
      derived = derive(now, sample);
      previous = {t: now, servers: sample};
    }
    const pins = register ? new Map(register.servers.map((s) => [s.id, s.pinned_sessions])) : null;
    renderListeners(modes);
    render(status, pins, derived);
    const t = status.totals;
    setText($("conn"), "updated " + new Date(now).toLocaleTimeString() + " · requests " + t.requests +
      " · open connections " + t.open_connections + (text === null ? " · /metrics unavailable" : ""));
  } catch (e) {
    setText($("conn"), "cannot reach the admin listener");
  } finally {
    polling = false;
  }
}

async function act(path, what) {
  const r = await post(path);
  say(r.ok ? what + ": " + r.text : what + " refused (" + r.status + "): " + r.text, !r.ok);
  poll();
}

document.addEventListener("click", (event) => {
  const b = event.target.closest("button");
  if (!b) return;
  if (b.dataset.action) act("/servers/" + encodeURIComponent(b.dataset.server) + "/" + b.dataset.action,
                            b.dataset.action + " " + b.dataset.server);
  else if (b.dataset.mode) act("/mode?mode=" + b.dataset.mode + "&listener=" + encodeURIComponent(b.dataset.listener),
                               "listener " + b.dataset.listener + " to " + b.dataset.mode);
});

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const r = await post("/login", "token=" + encodeURIComponent($("token").value));
  $("token").value = "";
  if (r.ok) { authenticated = true; showLogin(false); say("logged in"); poll(); }
  else say("login failed: " + r.text, true);
});

$("logout").addEventListener("click", async () => {
  await post("/logout");
  authenticated = false; showLogin(true); say("logged out");
});

async function start() {
  try {
    const r = await fetch("/session", {credentials: "same-origin", cache: "no-store"});
    const s = await r.json();
    authenticated = s.authenticated; readsOpen = s.reads_open;
  } catch (e) { /* the poll says so */ }
  showLogin(!authenticated);
  if (authenticated || readsOpen) poll();
  setInterval(() => { if (authenticated || readsOpen) poll(); }, POLL_MS);
}
start();
</script>
</body>
</html>
"""#
}
