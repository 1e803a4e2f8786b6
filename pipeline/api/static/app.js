/* The Vigil dashboard: one stream in detail (why it alerted, its chart, its episodes),
   the live alert feed, streams by latest score; plain browser JavaScript against the
   same JSON API as everyone else. The live feed reads Server-Sent Events through fetch
   (not EventSource) so that the bearer token goes in a header, not in the URL. */
"use strict";

const REFRESH_MS = 5000;
const FEED_KEPT = 100;

/* --- one stream ---------------------------------------------------------------- */
async function openStream(stream) {
  ui.selected = stream;
  writeLink();
  document.querySelectorAll("[data-stream]").forEach((r) =>
    r.classList.toggle("selected", r.dataset.stream === stream && !r.dataset.episode));
  const [detail, eps] = await Promise.all([
    api(`/streams/${encodeURIComponent(stream)}?points=2000`),
    api(`/episodes?${new URLSearchParams({ stream, limit: "20" })}`),
  ]);
  if (ui.selected !== stream) return;
  detail.episodes = eps.items;
  ui.detail = detail;
  ui.threshold = detail.threshold;
  if (!detail.features.includes(ui.feature)) ui.feature = detail.features[0] || null;
  renderDetail();
}

function latestReason(d) {
  return d.alerts.find((a) => a.state !== "resolved" && a.reason) || null;
}

function renderReason(d) {
  const a = latestReason(d);
  if (!a) {
    $("d-reason").textContent = d.alerts.length ? "" : "No alert kept for this stream.";
    $("d-evidence").replaceChildren();
    $("d-meta").replaceChildren();
    return;
  }
  const r = a.reason;
  $("d-reason").innerHTML =
    `<b>${esc(when(a.ts_ms))}</b> ${esc(r.text)} <span class="sub">(${esc(r.fired)} ${fmt(r.evidence[r.fired])})</span>`;
  $("d-evidence").innerHTML =
    `<tr><th>feature</th><th>share</th><th>value</th><th>expected</th><th>usual band</th></tr>` +
    r.features.map((f) =>
      `<tr><td>${esc(f.name)}</td><td>${f.share == null ? "—" : Math.round(f.share * 100) + "%"}</td>` +
      `<td>${fmt(f.value)}</td><td>${fmt(f.expected)}</td><td>${fmt(f.lower)} to ${fmt(f.upper)}</td></tr>`).join("") +
    `<tr class="sources"><td colspan="5">evidence: ${Object.entries(r.evidence)
      .map(([k, v]) => `${esc(k)} ${fmt(v)}`).join(" · ")}</td></tr>`;
  $("d-meta").innerHTML = Object.entries(a.meta || {})
    .map(([k, v]) => `<span class="kv">${esc(k)}=${esc(typeof v === "object" ? JSON.stringify(v) : v)}</span>`).join("");
}

function modelSwaps(alerts) {
  /* Where the stream's alerts change model version (oldest first). */
  const out = [];
  const asc = alerts.slice().reverse();
  for (let i = 1; i < asc.length; i++) {
    if (asc[i].model_version !== asc[i - 1].model_version) out.push({ ts_ms: asc[i].ts_ms, version: asc[i].model_version });
  }
  return out;
}

function renderDetail() {
  const d = ui.detail;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("d-name").textContent = d.stream;
  const ongoing = d.episodes.some((e) => e.state === "firing");
  $("d-status").textContent = ongoing ? "incident ongoing" : d.status;
  $("d-status").className = `pill ${ongoing ? "alerting" : d.status}`;
  $("d-stats").innerHTML =
    `<span>score <b>${d.score == null ? "—" : d.score.toFixed(3)}</b></span>` +
    `<span>events <b>${d.count}</b></span><span>last <b>${esc(when(d.last_ts_ms))}</b></span>`;
  renderReason(d);
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
  if (!d.points.length) {
    VigilCharts.destroy();
    $("chart").innerHTML = `<div class="empty">no history kept for this stream (history_length is 0)</div>`;
  } else {
    VigilCharts.draw({
      points: d.points, feature: ui.feature, episodes: d.episodes, swaps: modelSwaps(d.alerts),
      threshold: d.threshold, from: ui.from, to: ui.to,
      onRange: (from, to) => { setRange(from, to); refresh(); },
    });
  }
  const el = $("d-episodes");
  el.replaceChildren();
  d.episodes.forEach((e) => el.appendChild(episodeItem(e)));
  if (!d.episodes.length) el.innerHTML = `<li class="sub">none among the kept alerts</li>`;
  const list = $("d-alerts");
  list.replaceChildren();
  if (d.alerts.length === 0) list.innerHTML = `<li class="sub">none kept in Redis</li>`;
  d.alerts.slice(0, 20).forEach((a) => list.appendChild(alertItem(a, false)));
}

$("d-silence").addEventListener("click", async () => {
  if (!ui.selected) return;
  try {
    const s = await post("/silences", { kind: "stream", value: ui.selected, duration_s: 3600, by: "dashboard" });
    toast(`${s.stream} silenced until ${when(s.until_ms)}`);
  } catch (err) {
    toast(String(err.message || err));
  }
});

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (ui.detail) renderDetail(); }, 150);
});

/* --- alerts -------------------------------------------------------------------- */
function alertItem(a, fresh) {
  const li = document.createElement("li");
  const resolved = a.state === "resolved";
  li.className = "alert-item" + (fresh ? " fresh" : "") + (resolved ? " resolved" : "");
  li.dataset.id = a.id;
  const text = a.reason ? a.reason.text
    : `${a.top_feature} ${fmt(a.values?.[a.top_feature])} vs expected ${fmt(a.expected?.[a.top_feature])}`;
  li.innerHTML =
    `<div class="top"><span class="stream">${esc(a.stream)}</span>` +
    `<span class="sc">${resolved ? "resolved" : a.score.toFixed(3)}</span></div>` +
    `<div class="sub">${esc(a.ts)} · ${esc(a.action || "open")}</div><div class="why">${esc(text)}</div>`;
  li.addEventListener("click", () => openStream(a.stream).catch(console.error));
  return li;
}

function pushAlert(a, fresh) {
  const feed = $("feed");
  if (feed.querySelector(`[data-id="${CSS.escape(a.id)}"]`)) return;
  feed.prepend(alertItem(a, fresh));
  while (feed.children.length > FEED_KEPT) feed.lastChild.remove();
}

async function readFeed(res, onId) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let data = null;
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) onId(line.slice(4));
        else if (line.startsWith("data: ")) data = line.slice(6);
      }
      if (data) onLiveAlert(JSON.parse(data));
    }
  }
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
      await readFeed(res, (id) => { lastId = id; });
    } catch (err) {
      console.warn("live feed:", err);
    }
    $("live").classList.add("off");
    await new Promise((r) => setTimeout(r, 3000));
  }
}

function onLiveAlert(a) {
  pushAlert(a, true);
  if (a.ts_ms > (ui.anchor || 0)) ui.anchor = a.ts_ms;
  if (a.stream === ui.selected) openStream(a.stream).catch(console.error);
}

/* --- streams now, models ------------------------------------------------------- */
async function loadStreams() {
  const page = await api(`/streams?${new URLSearchParams({ limit: String(ui.streamsLimit) })}`);
  const list = $("stream-list");
  list.replaceChildren();
  page.items.forEach((s) => list.appendChild(streamRow(s.stream, s.score, s.status)));
  $("more").hidden = page.next_offset == null;
  const newest = Math.max(0, ...page.items.map((s) => s.last_ts_ms || 0));
  if (newest > (ui.anchor || 0)) ui.anchor = newest;
}

$("more").addEventListener("click", () => {
  ui.streamsLimit += 50;  // the refresh keeps what was loaded
  loadStreams().catch(console.warn);
});

async function loadModels() {
  const m = await api("/models");
  $("models").innerHTML = m.versions
    .map((v) => `<span class="model${v.live ? " live" : ""}" title="${esc(v.source)}">${esc(v.version)}</span>`)
    .join("");
}

/* --- range controls, refresh, start --------------------------------------------- */
$("range-preset").addEventListener("change", (ev) => {
  ui.preset = ev.target.value;
  if (ui.preset !== "custom") presetRange(ui.anchor);
  refresh();
});
["range-from", "range-to"].forEach((id) => $(id).addEventListener("change", () => {
  const from = Date.parse($("range-from").value + "Z"), to = Date.parse($("range-to").value + "Z");
  if (from < to) { setRange(from, to); refresh(); }
}));
const shift = (k) => () => { const w = ui.to - ui.from; setRange(ui.from + k * w, ui.to + k * w); refresh(); };
const scaleBy = (k) => () => {
  const mid = (ui.from + ui.to) / 2, half = ((ui.to - ui.from) * k) / 2;
  setRange(mid - half, mid + half); refresh();
};
$("pan-left").addEventListener("click", shift(-0.5));
$("pan-right").addEventListener("click", shift(0.5));
$("zoom-out").addEventListener("click", scaleBy(2));
$("zoom-in").addEventListener("click", scaleBy(0.5));

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  ui.token = $("token-input").value.trim();
  localStorage.setItem("vigil.token", ui.token);
  $("token-dialog").hidden = true;
  start();
});

async function refresh() {
  if (ui.preset !== "custom") presetRange(ui.anchor);
  await Promise.all([loadLanes(), loadRanking(), loadEpisodes(), runSearch(),
    ui.selected ? openStream(ui.selected) : null]);
}

let started = false;
async function start() {
  readLink();
  $("search").value = ui.q;
  try {
    await Promise.all([loadStreams(), loadModels()]);
    const recent = await api("/alerts?limit=30");
    recent.items.reverse().forEach((a) => pushAlert(a, false));
    recent.items.forEach((a) => { if (a.ts_ms > (ui.anchor || 0)) ui.anchor = a.ts_ms; });
    if (ui.from != null) setRange(ui.from, ui.to, "custom");
    await refresh();
  } catch (err) {
    console.warn(err);
    return;
  }
  if (started) return;
  started = true;
  follow();
  setInterval(() => {
    Promise.all([loadStreams(), refresh()]).catch(console.warn);
  }, REFRESH_MS);
}

start();
