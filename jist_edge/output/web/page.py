"""The live view's page: HTML, CSS and a small script, kept here as strings (no package data to install).

The script takes the status from the /events stream (server-sent events, five a second),
draws the route from /map.json on a canvas with the current estimate and the recent
trail, and shows the camera as the /stream.mjpg image (multipart JPEG, which Chromium
and Firefox both play in an <img>).
"""
import json

# Colours the map uses; the browser test looks for them in the screenshot.
ROUTE_COLOR = "#8a939e"
TRAIL_COLOR = "#ffb02e"
BACKGROUND = "#1b1f24"
# estimate marker by state (the route filter's states, "raw"/"partial" for the plain best match)
STATE_COLORS = {"tracking": "#2ecc71", "ok": "#2ecc71", "locked": "#2ecc71", "converging": "#f1c40f",
                "uncertain": "#f39c12", "lost": "#e74c3c", "kidnapped": "#e74c3c", "raw": "#29b6f6",
                "partial": "#7e57c2", "no_camera": "#e74c3c", "blind": "#9e9e9e"}
OTHER_STATE_COLOR = "#29b6f6"

INDEX_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jist-edge live</title>
<link rel="stylesheet" href="app.css">
</head>
<body>
<header><h1>jist-edge live</h1><span id="state">connecting&hellip;</span></header>
<main>
<section id="camera"><h2>Camera</h2><img id="frame" src="stream.mjpg" alt="the current camera frame">
<p id="frame-note" class="note"></p></section>
<section id="route"><h2>Route map</h2><canvas id="map" width="480" height="480"></canvas>
<p id="where" class="note">waiting for the first result</p></section>
<section id="numbers"><h2>Live numbers</h2><table id="stats"><tbody></tbody></table>
<p id="info" class="note"></p></section>
</main>
<script src="app.js"></script>
</body>
</html>
"""

APP_CSS = """body { margin: 0; background: #111418; color: #e6e6e6; font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; gap: 1.5em; align-items: baseline; padding: 0.6em 1em; background: #1b1f24; }
h1 { font-size: 1.2em; margin: 0; } h2 { font-size: 1em; margin: 0 0 0.4em; color: #aab; }
#state { color: #9ad; } #state.bad { color: #f77; }
main { display: flex; flex-wrap: wrap; gap: 1em; padding: 1em; align-items: flex-start; }
section { background: #181b20; padding: 0.7em; border-radius: 6px; }
#frame { display: block; width: 480px; max-width: 100%; min-height: 60px; background: #000; }
#map { display: block; width: 480px; height: 480px; max-width: 100%; }
.note { color: #aab; margin: 0.4em 0 0; max-width: 480px; }
table { border-collapse: collapse; } td { padding: 0.1em 0.8em 0.1em 0; }
td.v { text-align: right; font-variant-numeric: tabular-nums; }
"""

_APP_JS = """"use strict";
const COLORS = __COLORS__;
const STAGES = ["capture_wait", "preprocess", "encode", "seqgem", "match", "total"];
const view = window.jistView = {statusUpdates: 0, lastFrame: -1, mapVersion: -1, map: null, mapDrawn: false,
                                 errors: 0};
const $ = id => document.getElementById(id);
const img = $("frame");
let streamRetry = null;

img.addEventListener("error", () => {
  $("frame-note").textContent = "no live image: the run may have ended, or the server already serves its " +
    "maximum of viewers (see below); retrying";
  clearTimeout(streamRetry);
  streamRetry = setTimeout(() => { img.src = "stream.mjpg?retry=" + Date.now(); }, 3000);
});

function fmt(v, digits) { return (v === null || v === undefined) ? "-" : Number(v).toFixed(digits); }

function row(tbody, name, value) {
  const tr = document.createElement("tr");
  tr.innerHTML = "<td></td><td class=v></td>";
  tr.children[0].textContent = name; tr.children[1].textContent = value;
  tbody.appendChild(tr);
}

function showNumbers(s) {
  const tbody = $("stats").tBodies[0];
  tbody.textContent = "";
  row(tbody, "FPS", fmt(s.fps, 1));
  row(tbody, "frames", s.frames);
  row(tbody, "dropped", s.dropped);
  row(tbody, "skipped", s.skipped);
  const latency = s.latency_ms || {};
  const stages = STAGES.filter(k => k in latency).concat(Object.keys(latency).filter(k => !STAGES.includes(k)));
  for (const stage of stages) row(tbody, stage.replace("_", " ") + " ms", fmt(latency[stage], 2));
  row(tbody, "viewers", s.viewers + " of at most " + s.max_viewers);
  const i = s.info || {};
  $("info").textContent = [i.backend && ("encoder " + i.backend), i.matcher && ("matcher " + i.matcher),
    i.source && ("source " + i.source), i.random_init ? "RANDOM WEIGHTS: pipeline demo only" : ""]
    .filter(Boolean).join(" \\u00b7 ");
}

function describe(s) {
  const e = s.estimate, r = s.result;
  if (!r) return "waiting for the first result";
  let text = "frame " + r.frame + (r.partial ? " (window filling: " + r.window + " frames)" : "");
  if (!e) return text + ": no match";
  text += ": sequence " + e.seq_id + " \\u00b7 " + (e.source === "filter" ? "route filter: " + e.state :
    "best match, no route filter" + (r.partial ? " (partial window)" : ""));
  if (e.confidence !== null && e.confidence !== undefined) text += " \\u00b7 confidence " + fmt(e.confidence, 2);
  if (r.match) text += " \\u00b7 d=" + fmt(r.match.distance, 3);
  if (e.position) text += " \\u00b7 at (" + fmt(e.position[0], 1) + ", " + fmt(e.position[1], 1) + ") m";
  else text += " \\u00b7 no position in the map";
  return text;
}

function drawMap(s) {
  const canvas = $("map"), ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 480, h = canvas.clientHeight || 480;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = COLORS.background; ctx.fillRect(0, 0, w, h);
  const map = view.map;
  ctx.font = "13px system-ui, sans-serif";
  if (!map || !map.extent) {
    ctx.fillStyle = "#aab";
    ctx.fillText(map ? "this map has no positions: see the match below" : "waiting for the map", 16, 28);
    return;
  }
  const [x0, y0, x1, y1] = map.extent, pad = 24;
  const scale = Math.min((w - 2 * pad) / Math.max(x1 - x0, 1e-6), (h - 2 * pad) / Math.max(y1 - y0, 1e-6));
  const ox = (w - (x1 - x0) * scale) / 2, oy = (h - (y1 - y0) * scale) / 2;
  const X = p => ox + (p[0] - x0) * scale, Y = p => h - oy - (p[1] - y0) * scale;
  ctx.lineJoin = ctx.lineCap = "round";
  ctx.strokeStyle = COLORS.route; ctx.lineWidth = 4;
  for (const drive of map.drives) {
    ctx.beginPath();
    let pen = false;
    for (const p of drive.points) {
      if (!p) { pen = false; continue; }
      if (pen) ctx.lineTo(X(p), Y(p)); else ctx.moveTo(X(p), Y(p));
      pen = true;
    }
    ctx.stroke();
  }
  const trail = s.trail || [];
  for (let i = 1; i < trail.length; i++) {
    ctx.globalAlpha = 0.15 + 0.85 * i / trail.length;
    ctx.strokeStyle = COLORS.trail; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(X(trail[i - 1]), Y(trail[i - 1])); ctx.lineTo(X(trail[i]), Y(trail[i])); ctx.stroke();
  }
  ctx.globalAlpha = 1;
  const e = s.estimate;
  if (e && e.position) {
    const conf = (e.confidence === null || e.confidence === undefined) ? 1 : Math.max(0, Math.min(1, e.confidence));
    const x = X(e.position), y = Y(e.position);
    ctx.fillStyle = COLORS.states[e.state] || COLORS.other;
    ctx.beginPath(); ctx.arc(x, y, 10, 0, 2 * Math.PI); ctx.fill();
    ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2; ctx.stroke();
    if (conf < 1) {  // a wider dashed ring the less sure the estimate is
      ctx.setLineDash([4, 4]);
      ctx.beginPath(); ctx.arc(x, y, 12 + 30 * (1 - conf), 0, 2 * Math.PI); ctx.stroke();
      ctx.setLineDash([]);
    }
  }
  view.mapDrawn = true;
}

async function loadMap(version) {
  const response = await fetch("map.json", {cache: "no-store"});
  if (!response.ok) throw new Error("map.json: HTTP " + response.status);
  view.map = await response.json();
  view.mapVersion = version;
}

function show(s) {
  if (view.status && s.frames < view.status.frames) return;  // an older status that overtook a map load
  view.statusUpdates += 1;
  view.lastFrame = s.result ? s.result.frame : -1;
  view.status = s;
  const stale = s.seconds_since_result !== null && s.seconds_since_result > 3;
  $("state").className = "";
  const gone = s.camera && s.camera.lost;
  if (gone) $("state").className = "bad";
  $("state").textContent = s.ended ? s.message : (gone ? s.camera.message : (s.result ? (stale ?
    "no new frame for " + fmt(s.seconds_since_result, 0) + " s" : "live") : "waiting for the first frame"));
  $("where").textContent = describe(s);
  showNumbers(s);
  drawMap(s);
}

function lost() {
  view.errors += 1;
  $("state").className = "bad";
  $("state").textContent = "disconnected: the run has ended or the device is unreachable (retrying)";
}

async function update(s) {
  try {
    if (s.map_version !== view.mapVersion) await loadMap(s.map_version);
    show(s);
  } catch (err) { lost(); }
}

async function poll() {  // when the event stream is refused (too many pages): /status.json twice a second
  try {
    const response = await fetch("status.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    await update(await response.json());
  } catch (err) { lost(); }
  setTimeout(poll, 500);
}

const events = new EventSource("events");  // the status five times a second; reconnects by itself
events.onmessage = message => update(JSON.parse(message.data));
events.onerror = () => {
  lost();
  if (events.readyState === EventSource.CLOSED) poll();
};
"""

APP_JS = _APP_JS.replace("__COLORS__", json.dumps({
    "route": ROUTE_COLOR, "trail": TRAIL_COLOR, "background": BACKGROUND, "states": STATE_COLORS,
    "other": OTHER_STATE_COLOR}, sort_keys=True))
