/**
 * The --http page: one HTML document with its script inline; uPlot comes from
 * /uplot.js on the same server. It keeps its own copy of the history (sent
 * once on connect) and appends each snapshot from /events.
 * Each figure also carries its raw number in data-value (tests read those).
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spread-pipe top</title>
<link rel="stylesheet" href="/uplot.css">
<style>
  :root { color-scheme: dark; --bg: #111418; --card: #1b2027; --fg: #d8dee9; --dim: #8a94a6; --accent: #5fb3f9; --bad: #ff5f5f; --ok: #7bd88f; --warn: #f5c35b; }
  * { box-sizing: border-box; }
  body { margin: 0; padding: 16px 20px; background: var(--bg); color: var(--fg); font: 14px/1.4 system-ui, sans-serif; }
  h1 { font-size: 18px; margin: 0 0 12px; font-weight: 600; }
  h1 small { color: var(--dim); font-weight: 400; margin-left: 8px; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--dim); margin: 0 0 8px; font-weight: 600; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px; margin-bottom: 14px; }
  .card { background: var(--card); border-radius: 8px; padding: 10px 12px; }
  .card .v { font-size: 22px; font-variant-numeric: tabular-nums; font-weight: 600; }
  .card .l { color: var(--dim); font-size: 12px; }
  .card.bad .v { color: var(--bad); }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
  .panel { background: var(--card); border-radius: 8px; padding: 12px; overflow: hidden; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  td, th { padding: 3px 6px; text-align: left; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 420px; }
  th { color: var(--dim); font-weight: 500; font-size: 12px; }
  td.n, th.n { text-align: right; }
  tr:nth-child(even) td { background: #20262e; }
  .s5 { color: var(--bad); font-weight: 600; }
  .s4 { color: var(--warn); }
  .s2 { color: var(--ok); }
  #conn { font-size: 12px; }
  #conn.up { color: var(--ok); } #conn.down { color: var(--bad); }
  svg.spark { width: 120px; height: 22px; vertical-align: middle; }
  svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
  .wide { grid-column: 1 / -1; }
</style>
</head>
<body>
<h1>spread-pipe top <small id="when"></small> <small id="conn" class="down">connecting</small></h1>
<div class="cards">
  <div class="card"><div class="v" id="stat-lines" data-value="0">0</div><div class="l">lines</div></div>
  <div class="card"><div class="v" id="stat-requests" data-value="0">0</div><div class="l">requests</div></div>
  <div class="card"><div class="v" id="stat-rps" data-value="0">0</div><div class="l">requests/s</div></div>
  <div class="card"><div class="v" id="stat-bps" data-value="0">0</div><div class="l">bytes/s served</div></div>
  <div class="card" id="card-5xx"><div class="v" id="stat-5xx" data-value="0">0</div><div class="l">5xx/s</div></div>
  <div class="card"><div class="v" id="stat-distinct" data-value="0">0</div><div class="l">distinct clients</div></div>
  <div class="card"><div class="v" id="stat-online" data-value="0">0</div><div class="l" id="online-label">online (5 min)</div></div>
  <div class="card"><div class="v" id="stat-unparsed" data-value="0">0</div><div class="l">unparsed lines</div></div>
</div>
<div class="grid">
  <div class="panel wide"><h2>requests/s per web server</h2><div id="chart-rps"></div></div>
  <div class="panel"><h2>web servers</h2><table id="hosts"></table></div>
  <div class="panel"><h2>status codes</h2><table id="status"></table></div>
  <div class="panel" id="vhost-panel" hidden><h2>virtual hosts</h2><table id="vhosts"></table></div>
  <div class="panel"><h2>5xx/s and bytes/s</h2><div id="chart-err"></div></div>
  <div class="panel"><h2>top URLs</h2><table id="top-urls"></table></div>
  <div class="panel"><h2>top client addresses</h2><table id="top-clients"></table></div>
  <div class="panel"><h2>top referrers</h2><table id="top-referrers"></table></div>
  <div class="panel"><h2>top user agents</h2><table id="top-agents"></table></div>
  <div class="panel"><h2>unparsed lines by reason</h2><table id="unparsed"></table></div>
</div>
<script src="/uplot.js"></script>
<script>
"use strict";
var MAXPOINTS = 300;
var hist = { t: [], total: [], err: [], bytes: [], hosts: {}, vhosts: {} };
var charts = { rps: null, err: null, hostKey: "" };
var PALETTE = ["#5fb3f9", "#7bd88f", "#f5c35b", "#c792ea", "#ff8f6b", "#4dd0c8", "#f78fb3", "#b0bec5"];

function fmt(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + " k";
  return String(Math.round(n * 10) / 10);
}
function setStat(id, v, text) {
  var el = document.getElementById(id);
  el.dataset.value = String(v);
  el.textContent = text === undefined ? fmt(v) : text;
}
function esc(s) {
  return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
}
function spark(values) {
  var v = values.slice(-60);
  if (v.length < 2) return "";
  var max = Math.max.apply(null, v.concat([1]));
  var pts = v.map(function (y, i) { return (i * 120 / (v.length - 1)).toFixed(1) + "," + (21 - y / max * 20).toFixed(1); }).join(" ");
  return '<svg class="spark" viewBox="0 0 120 22"><polyline points="' + pts + '"/></svg>';
}
function table(id, head, rows) {
  var h = "<tr>" + head.map(function (c) { return '<th class="' + (c[1] || "") + '">' + esc(c[0]) + "</th>"; }).join("") + "</tr>";
  document.getElementById(id).innerHTML = h + rows.join("");
}
function topTable(id, list, field, label) {
  table(id, [[label], ["hits", "n"]], list.map(function (e) {
    return '<tr><td title="' + esc(e[field]) + '">' + esc(e[field]) + '</td><td class="n" data-value="' + e.hits + '">' + e.hits + "</td></tr>";
  }));
}
function sources(id, by, series) {
  var names = Object.keys(by).sort();
  table(id, [["name"], ["req/s", "n"], ["last minute"], ["requests", "n"], ["bytes", "n"], ["5xx", "n"], ["unparsed", "n"]], names.map(function (k) {
    var s = by[k];
    return '<tr data-host="' + esc(k) + '"><td>' + esc(k) + '</td><td class="n">' + fmt(s.requests_per_s) + "</td><td>" + spark(series[k] || []) +
      '</td><td class="n" data-value="' + s.requests + '">' + s.requests + '</td><td class="n">' + fmt(s.bytes) +
      '</td><td class="n ' + (s.errors_5xx ? "s5" : "") + '">' + s.errors_5xx + '</td><td class="n">' + s.unparsed + "</td></tr>";
  }));
}
function push(arr, v) { arr.push(v); if (arr.length > MAXPOINTS) arr.shift(); }
function width(el) { return Math.max(300, el.clientWidth - 4); }

function buildCharts() {
  var hosts = Object.keys(hist.hosts).sort();
  var key = hosts.join("\\n");
  if (typeof uPlot === "undefined") return;
  var rpsEl = document.getElementById("chart-rps");
  if (charts.hostKey !== key || !charts.rps) {
    if (charts.rps) charts.rps.destroy();
    var series = [{}, { label: "all", stroke: "#d8dee9", width: 2 }];
    hosts.forEach(function (h, i) { series.push({ label: h, stroke: PALETTE[i % PALETTE.length], width: 1.5 }); });
    charts.rps = new uPlot({ width: width(rpsEl), height: 220, series: series, axes: [{ stroke: "#8a94a6", grid: { stroke: "#2a313a" } }, { stroke: "#8a94a6", grid: { stroke: "#2a313a" } }], scales: { x: { time: true } } }, [[]], rpsEl);
    charts.hostKey = key;
  }
  var data = [hist.t, hist.total];
  hosts.forEach(function (h) { data.push(hist.hosts[h]); });
  charts.rps.setData(data);
  var errEl = document.getElementById("chart-err");
  if (!charts.err) {
    charts.err = new uPlot({ width: width(errEl), height: 180, series: [{}, { label: "5xx/s", stroke: "#ff5f5f", width: 2, scale: "e" }, { label: "bytes/s", stroke: "#5fb3f9", width: 1, scale: "b" }],
      axes: [{ stroke: "#8a94a6", grid: { stroke: "#2a313a" } }, { scale: "e", stroke: "#ff5f5f", grid: { stroke: "#2a313a" }, values: function (u, vals) { return vals.map(fmt); } }, { scale: "b", side: 1, size: 70, stroke: "#5fb3f9", grid: { show: false }, values: function (u, vals) { return vals.map(fmt); } }], scales: { x: { time: true } } }, [[]], errEl);
  }
  charts.err.setData([hist.t, hist.err, hist.bytes]);
}

function onHistory(h) {
  hist.t = h.t.map(function (ms) { return ms / 1000; });
  hist.total = h.requests_per_s.slice();
  hist.err = h.errors_5xx_per_s.slice();
  hist.bytes = h.bytes_per_s.slice();
  // A host first seen later has fewer points: pad its start.
  function series(by) {
    var out = {};
    Object.keys(by).forEach(function (k) { out[k] = new Array(Math.max(0, hist.t.length - by[k].length)).fill(null).concat(by[k]); });
    return out;
  }
  hist.hosts = series(h.by_host);
  hist.vhosts = series(h.by_vhost);
  buildCharts();
}

function onSnapshot(s) {
  document.getElementById("when").textContent = s.time.replace("T", " ").replace(/\\.\\d+Z$/, " UTC") + " · up " + s.uptime_s + " s";
  setStat("stat-lines", s.lines);
  setStat("stat-requests", s.requests);
  setStat("stat-rps", s.requests_per_s);
  setStat("stat-bps", s.bytes_per_s);
  setStat("stat-5xx", s.errors_5xx_per_s);
  document.getElementById("card-5xx").classList.toggle("bad", s.errors_5xx_per_s > 0);
  setStat("stat-distinct", s.distinct_clients, (s.distinct_clients_exact ? "" : "≈") + fmt(s.distinct_clients));
  setStat("stat-online", s.online_clients, (s.online_clients_exact ? "" : "≈") + fmt(s.online_clients));
  document.getElementById("online-label").textContent = "online (" + Math.round(s.online_window_s / 60) + " min)";
  setStat("stat-unparsed", s.unparsed);

  push(hist.t, Date.parse(s.time) / 1000);
  push(hist.total, s.requests_per_s);
  push(hist.err, s.errors_5xx_per_s);
  push(hist.bytes, s.bytes_per_s);
  var n = hist.t.length;
  function extend(series, by) {
    Object.keys(by).forEach(function (k) {
      if (!series[k]) series[k] = new Array(n - 1).fill(null);
      push(series[k], by[k].requests_per_s);
    });
    Object.keys(series).forEach(function (k) { while (series[k].length < n) push(series[k], null); while (series[k].length > n) series[k].shift(); });
  }
  extend(hist.hosts, s.by_host);
  extend(hist.vhosts, s.by_vhost);
  buildCharts();

  sources("hosts", s.by_host, hist.hosts);
  var vh = Object.keys(s.by_vhost);
  document.getElementById("vhost-panel").hidden = vh.length === 0;
  if (vh.length) sources("vhosts", s.by_vhost, hist.vhosts);
  var codes = Object.keys(s.hits_by_status).sort();
  var rows = Object.keys(s.hits_by_class).map(function (c) {
    return '<tr><td class="s' + c[0] + '">' + c + '</td><td class="n" data-value="' + s.hits_by_class[c] + '">' + s.hits_by_class[c] + "</td></tr>";
  });
  codes.forEach(function (c) {
    rows.push('<tr data-code="' + c + '"><td class="s' + c[0] + '">&nbsp;&nbsp;' + c + '</td><td class="n" data-value="' + s.hits_by_status[c] + '">' + s.hits_by_status[c] + "</td></tr>");
  });
  table("status", [["code"], ["hits", "n"]], rows);
  topTable("top-urls", s.top_urls, "url", "URL");
  topTable("top-clients", s.top_clients, "client", "client");
  topTable("top-referrers", s.top_referrers, "referrer", "referrer");
  topTable("top-agents", s.top_agents, "agent", "user agent");
  table("unparsed", [["reason"], ["lines", "n"]], Object.keys(s.unparsed_by_reason).map(function (r) {
    return "<tr><td>" + esc(r) + '</td><td class="n">' + s.unparsed_by_reason[r] + "</td></tr>";
  }));
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
}

var es = new EventSource("/events");
es.addEventListener("open", function () { var c = document.getElementById("conn"); c.textContent = "live"; c.className = "up"; });
es.addEventListener("error", function () { var c = document.getElementById("conn"); c.textContent = "reconnecting"; c.className = "down"; });
es.addEventListener("history", function (e) { onHistory(JSON.parse(e.data)); });
es.addEventListener("snapshot", function (e) { onSnapshot(JSON.parse(e.data)); });
window.addEventListener("resize", function () {
  if (charts.rps) charts.rps.setSize({ width: width(document.getElementById("chart-rps")), height: 220 });
  if (charts.err) charts.err.setSize({ width: width(document.getElementById("chart-err")), height: 180 });
});
</script>
</body>
</html>
`;
