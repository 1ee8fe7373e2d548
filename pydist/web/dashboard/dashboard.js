// pydist's built-in dashboard: polls the JSON API once a second and draws what it reads.
// External file on purpose: the Content-Security-Policy (default-src 'self') forbids inline code.
"use strict";

const history = [];
let previous = null;

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function fmt(n, digits) {
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });
}

async function getJSON(path) {
  const resp = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!resp.ok) {
    throw new Error(path + ": HTTP " + resp.status);
  }
  return resp.json();
}

function updateTiles(stats, now) {
  if (previous !== null) {
    const seconds = (now - previous.time) / 1000;
    const qps = seconds > 0 ? (stats.queries - previous.queries) / seconds : 0;
    history.push(Math.max(qps, 0));
    if (history.length > 120) {
      history.shift();
    }
    text("qps", fmt(qps, 1));
  }
  previous = { time: now, queries: stats.queries };
  const lookups = stats["cache-hits"] + stats["cache-misses"];
  text("queries", fmt(stats.queries, 0));
  text("hitrate", lookups > 0 ? fmt(100 * stats["cache-hits"] / lookups, 1) + " %" : "-");
  text("latency", fmt(stats["latency-avg100"] / 1000, 3) + " ms");
  text("uptime", fmt(stats.uptime, 0) + " s");
  text("drops", fmt(stats["acl-drops"] + stats["rule-drop"], 0));
}

function drawGraph() {
  const canvas = document.getElementById("graph");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(1, ...history);
  ctx.strokeStyle = "#36c";
  ctx.lineWidth = 2;
  ctx.beginPath();
  const step = (canvas.width - 10) / 119;
  history.forEach((v, i) => {
    const x = canvas.width - 5 - (history.length - 1 - i) * step;  // newest on the right
    const y = canvas.height - 5 - (v / top) * (canvas.height - 20);
    if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
  });
  ctx.stroke();
  ctx.fillStyle = "#666";
  ctx.fillText("max " + fmt(top, 1) + " qps", 8, 12);
}

function fillTable(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
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

function updateTables(info) {
  text("version", info.version);
  fillTable("servers", info.servers.map((s) => [
    [s.id], [s.name], [s.address],
    [s.state, s.state.toLowerCase() === "up" ? "state-up" : "state-down"],
    [fmt(s.qps, 1)], [s.queries], [s.reuseds],
    [s.latency === null ? "-" : fmt(s.latency, 3)], [s.outstanding], [s.pools.join(", ")],
  ]));
  fillTable("frontends", info.frontends.map((f) => [
    [f.address], [f.type], [f.queries], [f.responses],
  ]));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [stats, info] = await Promise.all([
      getJSON("jsonstat?command=stats"), getJSON("api/v1/servers/localhost"),
    ]);
    updateTiles(stats, Date.now());
    updateTables(info);
    drawGraph();
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
