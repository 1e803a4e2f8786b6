/* The Vigil dashboard: streams by anomaly score, one stream's chart, the live alert feed.
   Plain browser JavaScript against the same JSON API as everyone else. The live feed
   reads Server-Sent Events through fetch (not EventSource) so it can send the bearer
   token in a header rather than in the URL. */
"use strict";

const PAGE = 50;
const REFRESH_MS = 5000;
const FEED_KEPT = 100;
const ui = {
  status: "", offset: 0, selected: null, feature: null, detail: null,
  token: localStorage.getItem("vigil.token") || "",
};
const $ = (id) => document.getElementById(id);

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function scoreColor(s) {
  return s >= 0.5 ? "var(--bad)" : s >= 0.3 ? "var(--warn)" : "var(--ok)";
}

function when(ms) {
  return ms == null ? "—" : new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function headers() {
  return ui.token ? { Authorization: `Bearer ${ui.token}` } : {};
}

async function api(path) {
  const res = await fetch(path, { headers: headers() });
  if (res.status === 401) { askToken(); throw new Error("unauthorized"); }
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function askToken() {
  $("token-dialog").hidden = false;
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  ui.token = $("token-input").value.trim();
  localStorage.setItem("vigil.token", ui.token);
  $("token-dialog").hidden = true;
  start();
});

/* --- streams ------------------------------------------------------------------- */
function streamRow(s) {
  const li = document.createElement("li");
  li.className = "stream-row" + (s.stream === ui.selected ? " selected" : "");
  li.dataset.stream = s.stream;
  const pct = Math.max(2, Math.round(s.score * 100));
  li.innerHTML =
    `<span class="dot ${esc(s.status)}" title="${esc(s.status)}"></span>` +
    `<span class="name" title="${esc(s.stream)}">${esc(s.stream)}</span>` +
    `<span class="bar"><i style="width:${pct}%;background:${scoreColor(s.score)}"></i></span>` +
    `<span class="score">${s.score.toFixed(2)}</span>`;
  li.addEventListener("click", () => openStream(s.stream));
  return li;
}

async function loadStreams(append) {
  const q = new URLSearchParams({ offset: String(append ? ui.offset : 0), limit: String(PAGE) });
  if (ui.status) q.set("status", ui.status);
  const page = await api(`/streams?${q}`);
  const list = $("stream-list");
  if (!append) list.replaceChildren();
  page.items.forEach((s) => list.appendChild(streamRow(s)));
  ui.offset = page.next_offset ?? ui.offset + page.items.length;
  $("more").hidden = page.next_offset == null;
  if (!ui.status && !append) {
    const alerting = page.items.filter((s) => s.status === "alerting").length;
    $("summary").innerHTML =
      `<b>${page.total}</b> streams · <b>${alerting}</b> alerting among the top ${page.items.length}`;
  }
}

$("filters").addEventListener("click", (ev) => {
  const button = ev.target.closest("button");
  if (!button) return;
  document.querySelectorAll("#filters button").forEach((b) => b.classList.toggle("on", b === button));
  ui.status = button.dataset.status;
  loadStreams(false).catch(console.error);
});
$("more").addEventListener("click", () => loadStreams(true).catch(console.error));

/* --- one stream ---------------------------------------------------------------- */
async function openStream(stream) {
  ui.selected = stream;
  document.querySelectorAll(".stream-row").forEach((r) =>
    r.classList.toggle("selected", r.dataset.stream === stream));
  const detail = await api(`/streams/${encodeURIComponent(stream)}?points=400`);
  if (ui.selected !== stream) return;
  ui.detail = detail;
  if (!detail.features.includes(ui.feature)) ui.feature = detail.features[0] || null;
  renderDetail();
}

function renderDetail() {
  const d = ui.detail;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("d-name").textContent = d.stream;
  $("d-status").textContent = d.status;
  $("d-status").className = `pill ${d.status}`;
  $("d-stats").innerHTML =
    `<span>score <b>${d.score == null ? "—" : d.score.toFixed(3)}</b></span>` +
    `<span>events <b>${d.count}</b></span><span>last <b>${esc(when(d.last_ts_ms))}</b></span>`;
  const feats = $("d-features");
  feats.replaceChildren();
  if (d.features.length > 1) {
    d.features.forEach((f) => {
      const b = document.createElement("button");
      b.textContent = f;
      b.className = f === ui.feature ? "on" : "";
      b.addEventListener("click", () => { ui.feature = f; renderDetail(); });
      feats.appendChild(b);
    });
  }
  const f = ui.feature;
  const pts = d.points;
  const t = pts.map((p) => p.ts_ms);
  VigilChart.series($("chart"), {
    t,
    actual: pts.map((p) => p.values[f]),
    expected: pts.map((p) => p.expected[f]),
    lower: pts.map((p) => p.lower[f]),
    upper: pts.map((p) => p.upper[f]),
    alert: pts.map((p) => p.alert),
  });
  VigilChart.score($("score-chart"), { t, score: pts.map((p) => p.score), alert: pts.map((p) => p.alert) });
  const list = $("d-alerts");
  list.replaceChildren();
  if (d.alerts.length === 0) list.innerHTML = `<li class="sub">none kept in Redis</li>`;
  d.alerts.slice(0, 20).forEach((a) => list.appendChild(alertItem(a, false)));
}

window.addEventListener("resize", () => { if (ui.detail) renderDetail(); });

/* --- alerts -------------------------------------------------------------------- */
function alertItem(a, fresh) {
  const li = document.createElement("li");
  li.className = "alert-item" + (fresh ? " fresh" : "");
  li.dataset.id = a.id;
  const f = a.top_feature;
  const v = a.values?.[f], e = a.expected?.[f];
  const fmt = (x) => (x == null ? "—" : Number(x).toPrecision(4));
  li.innerHTML =
    `<div class="top"><span class="stream">${esc(a.stream)}</span>` +
    `<span class="sc">${a.score.toFixed(3)}</span></div>` +
    `<div class="sub">${esc(a.ts)} · ${esc(f)} ${fmt(v)} vs expected ${fmt(e)}</div>`;
  li.addEventListener("click", () => openStream(a.stream).catch(console.error));
  return li;
}

function pushAlert(a, fresh) {
  const feed = $("feed");
  if (feed.querySelector(`[data-id="${CSS.escape(a.id)}"]`)) return;
  feed.prepend(alertItem(a, fresh));
  while (feed.children.length > FEED_KEPT) feed.lastChild.remove();
}

async function follow() {
  let lastId = null;
  for (;;) {
    try {
      const h = headers();
      if (lastId) h["Last-Event-ID"] = lastId;
      const res = await fetch("/alerts/live", { headers: h });
      if (res.status === 401) { askToken(); return; }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      $("live").classList.remove("off");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let data = null;
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) lastId = line.slice(4);
            else if (line.startsWith("data: ")) data = line.slice(6);
          }
          if (data) onLiveAlert(JSON.parse(data));
        }
      }
    } catch (err) {
      console.warn("live feed:", err);
    }
    $("live").classList.add("off");
    await new Promise((r) => setTimeout(r, 3000));
  }
}

function onLiveAlert(a) {
  pushAlert(a, true);
  if (a.stream === ui.selected) openStream(a.stream).catch(console.error);
}

/* --- models -------------------------------------------------------------------- */
async function loadModels() {
  const m = await api("/models");
  $("models").innerHTML = m.versions
    .map((v) => `<span class="model${v.live ? " live" : ""}" title="${esc(v.source)}">${esc(v.version)}</span>`)
    .join("");
}

/* --- start --------------------------------------------------------------------- */
let started = false;
async function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    ui.token = hash.get("token");
    localStorage.setItem("vigil.token", ui.token);
    history.replaceState(null, "", location.pathname);
  }
  try {
    await Promise.all([loadStreams(false), loadModels()]);
    const recent = await api("/alerts?limit=30");
    recent.items.reverse().forEach((a) => pushAlert(a, false));
  } catch (err) {
    console.warn(err);
    return;
  }
  if (started) return;
  started = true;
  follow();
  setInterval(() => {
    loadStreams(false).catch(console.warn);
    if (ui.selected) openStream(ui.selected).catch(console.warn);
  }, REFRESH_MS);
}

start();
