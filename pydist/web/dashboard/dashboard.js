// pydist's built-in dashboard: polls the JSON API once a second and draws what it reads.
// External file on purpose: the Content-Security-Policy (default-src 'self') forbids inline code.
//
// Requests go through XMLHttpRequest with URLs relative to the page, as dnsdist's own page
// does (jQuery's $.ajax): people open the dashboard as http://user:password@host/, and
// fetch() refuses any URL that carries credentials, which a relative URL inherits from such
// a page. XHR accepts it, and the browser reuses the basic-auth credentials of the page.
"use strict";

const SPAN = 120;                    // seconds of history in the graphs
const series = { qps: [], servfail: [], hitrate: [], cpu: [] };
const latencies = new Map();         // server label -> [ms per second]
const COLOURS = ["#36c", "#c33", "#393", "#e80", "#939", "#099", "#963", "#666"];
let previous = null;

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function fmt(n, digits) {
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });
}

function getJSON(path) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("GET", path);
    xhr.responseType = "json";
    xhr.timeout = 5000;
    xhr.onload = () => {
      if (xhr.status === 200 && xhr.response !== null) {
        resolve(xhr.response);
      } else {
        reject(new Error(path + ": HTTP " + xhr.status));
      }
    };
    xhr.onerror = () => reject(new Error(path + ": request failed"));
    xhr.ontimeout = () => reject(new Error(path + ": timed out"));
    xhr.send();
  });
}

function push(list, value) {
  list.push(value);
  if (list.length > SPAN) {
    list.shift();
  }
}

// rates between two polls: per second for counters, percent of one core for CPU
function updateSeries(stats, now) {
  if (previous === null) {
    return;
  }
  const seconds = (now - previous.time) / 1000;
  if (seconds <= 0) {
    return;
  }
  const rate = (key) => Math.max(0, (stats[key] - previous.stats[key]) / seconds);
  const hits = rate("cache-hits");
  const lookups = hits + rate("cache-misses");
  push(series.qps, rate("queries"));
  push(series.servfail, rate("servfail-responses"));
  push(series.hitrate, lookups > 0 ? 100 * hits / lookups : 0);
  push(series.cpu, (rate("cpu-user-msec") + rate("cpu-sys-msec")) / 10);
  text("qps", fmt(series.qps[series.qps.length - 1], 1));
  text("cpu", fmt(series.cpu[series.cpu.length - 1], 1) + " %");
}

function updateTiles(stats) {
  const lookups = stats["cache-hits"] + stats["cache-misses"];
  text("queries", fmt(stats.queries, 0));
  text("servfails", fmt(stats["servfail-responses"], 0));
  text("hitrate", lookups > 0 ? fmt(100 * stats["cache-hits"] / lookups, 1) + " %" : "-");
  text("latency", fmt(stats["latency-avg100"] / 1000, 3) + " ms");
  text("uptime", fmt(stats.uptime, 0) + " s");
  text("drops", fmt(stats["acl-drops"] + stats["rule-drop"], 0));
  text("dynblocked", fmt(stats["dyn-blocked"], 0));
}

// one graph: each line is [values, colour]; the left axis is shared, newest on the right
function drawGraph(id, lines, unit) {
  const canvas = document.getElementById(id);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(1, ...lines.flatMap(([values]) => values));
  const step = (canvas.width - 10) / (SPAN - 1);
  ctx.strokeStyle = "#eee";
  ctx.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    const y = canvas.height - 5 - i * (canvas.height - 20) / 4;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(canvas.width, y);
    ctx.stroke();
  }
  lines.forEach(([values, colour]) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = canvas.width - 5 - (values.length - 1 - i) * step;
      const y = canvas.height - 5 - (v / top) * (canvas.height - 20);
      if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
    });
    ctx.stroke();
  });
  ctx.fillStyle = "#666";
  ctx.fillText("max " + fmt(top, 1) + " " + unit, 8, 12);
  canvas.dataset.points = String(Math.max(0, ...lines.map(([values]) => values.length)));
}

function drawGraphs() {
  drawGraph("graph-qps", [[series.qps, "#36c"], [series.servfail, "#c33"]], "qps");
  drawGraph("graph-cache", [[series.hitrate, "#393"], [series.cpu, "#e80"]], "%");
  const lines = [...latencies.values()].map((values, i) => [values, COLOURS[i % COLOURS.length]]);
  drawGraph("graph-latency", lines, "ms");
  const keys = document.getElementById("latency-keys");
  keys.replaceChildren(...[...latencies.keys()].map((label, i) => {
    const span = document.createElement("span");
    span.className = "key";
    span.style.borderColor = COLOURS[i % COLOURS.length];
    span.textContent = label;
    return span;
  }));
}

function fillTable(id, rows, empty) {
  const body = document.querySelector("#" + id + " tbody");
  if (rows.length === 0 && empty) {
    const columns = document.querySelectorAll("#" + id + " thead th").length;
    rows = [[[empty, "empty"]].concat(Array(columns - 1).fill([""]))];
  }
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    cells.forEach(([value, cls]) => {
      const td = document.createElement("td");
      td.textContent = value;
      if (cls) { td.className = cls; }
      tr.appendChild(td);
    });
    return tr;
  }));
}

function ruleRow(rule) {
  // dnsdist 1.7.3's API names response rules only; query rules are told apart by uuid
  return [[rule.id], [rule.name || rule.uuid, "text"], [fmt(rule.matches, 0), "matches"],
          [rule.rule, "text"], [rule.action, "text"]];
}

function updateTables(info, blocks) {
  text("version", info.version);
  fillTable("servers", info.servers.map((s) => [
    [s.id], [s.name], [s.address],
    [s.state, s.state.toLowerCase() === "up" ? "state-up" : "state-down"],
    [fmt(s.qps, 1)], [s.queries], [s.reuseds],
    [s.latency === null ? "-" : fmt(s.latency, 3)], [s.outstanding], [s.pools.join(", ")],
  ]));
  fillTable("pools", info.pools.map((p) => {
    const lookups = p.cacheHits + p.cacheMisses;
    return [
      [p.name === "" ? "(default)" : p.name, "text"], [p.serversCount], [p.cacheSize],
      [p.cacheEntries], [p.cacheHits], [p.cacheMisses],
      [lookups > 0 ? fmt(100 * p.cacheHits / lookups, 1) + " %" : "-"],
      [p.cacheLookupCollisions + p.cacheInsertCollisions], [p.cacheTTLTooShorts],
    ];
  }));
  fillTable("rules", info.rules.map(ruleRow), "no rules");
  const chains = [["response", "response-rules"], ["cache hit", "cache-hit-response-rules"],
                  ["self-answered", "self-answered-response-rules"]];
  fillTable("response-rules", chains.flatMap(([chain, key]) =>
    (info[key] || []).map((rule) => [[chain, "text"]].concat(ruleRow(rule)))), "no response rules");
  fillTable("dynblocks", Object.entries(blocks).map(([what, b]) => [
    [what, "text"], [b.reason, "text"], [b.seconds], [fmt(b.blocks, 0), "matches"], [b.action, "text"],
  ]), "no dynamic blocks");
  fillTable("frontends", info.frontends.map((f) => [
    [f.address], [f.type], [f.queries], [f.responses],
  ]));
}

function updateLatencies(info) {
  const seen = new Set();
  info.servers.forEach((s) => {
    const label = s.name || s.address;
    seen.add(label);
    if (!latencies.has(label)) {
      latencies.set(label, []);
    }
    push(latencies.get(label), s.latency === null ? 0 : s.latency);
  });
  [...latencies.keys()].filter((label) => !seen.has(label)).forEach((l) => latencies.delete(l));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [stats, info, blocks] = await Promise.all([
      getJSON("jsonstat?command=stats"), getJSON("api/v1/servers/localhost"),
      getJSON("jsonstat?command=dynblocklist"),
    ]);
    const now = Date.now();
    updateSeries(stats, now);
    previous = { time: now, stats: stats };
    updateTiles(stats);
    updateLatencies(info);
    updateTables(info, blocks);
    drawGraphs();
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "status";
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  } catch (err) {
    status.textContent = "error: " + err.message;
    status.className = "status error";
  }
}

refresh();
setInterval(refresh, 1000);
