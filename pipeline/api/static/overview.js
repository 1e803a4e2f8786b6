/* The overview that finds incidents: swim lanes (streams x time, colour = peak score),
   streams ranked by their peak in the range, episodes with their state and labels,
   and search by stream id or by a field of the events' meta. */
"use strict";

function streamRow(s, score, extra) {
  const li = document.createElement("li");
  li.className = "stream-row" + (s === ui.selected ? " selected" : "");
  li.dataset.stream = s;
  const pct = Math.max(2, Math.round(score * 100));
  li.innerHTML =
    `<span class="dot ${esc(extra || "")}"></span>` +
    `<span class="name" title="${esc(s)}">${esc(s)}</span>` +
    `<span class="bar"><i style="width:${pct}%;background:${scoreColor(score)}"></i></span>` +
    `<span class="score">${score.toFixed(2)}</span>`;
  li.addEventListener("click", () => openStream(s));
  return li;
}

function laneColor(p) {
  if (p == null) return "transparent";
  if (p >= ui.threshold) return `rgba(255,93,108,${0.45 + 0.55 * p})`;
  return `rgba(245,185,66,${0.35 + 0.5 * p})`;
}

async function loadLanes() {
  const q = new URLSearchParams({ from_ms: String(ui.from), to_ms: String(ui.to), limit: "20" });
  const lanes = await api(`/incidents/lanes?${q}`);
  const el = $("lanes");
  el.replaceChildren();
  el.style.setProperty("--cols", String(lanes.buckets.length));
  if (!lanes.lanes.length) {
    el.innerHTML = `<div class="sub">no stream reached the clear score in this range</div>`;
    return lanes;
  }
  for (const lane of lanes.lanes) {
    const row = document.createElement("div");
    row.className = "lane" + (lane.stream === ui.selected ? " selected" : "");
    row.dataset.stream = lane.stream;
    row.innerHTML = `<span class="lane-name" title="${esc(lane.stream)}">${esc(lane.stream)}</span>`;
    const cells = document.createElement("span");
    cells.className = "cells";
    lane.peaks.forEach((p, i) => {
      const c = document.createElement("i");
      c.style.background = laneColor(p);
      c.title = `${lane.stream} · ${when(lanes.buckets[i])} · peak ${p == null ? "below clear" : p.toFixed(2)}`;
      c.addEventListener("click", (ev) => {
        ev.stopPropagation();
        setRange(lanes.buckets[i], lanes.buckets[i] + lanes.bucket_ms);
        openStream(lane.stream);
        refresh();
      });
      cells.appendChild(c);
    });
    row.appendChild(cells);
    row.addEventListener("click", () => openStream(lane.stream));
    el.appendChild(row);
  }
  return lanes;
}

async function loadRanking() {
  const q = new URLSearchParams({ from_ms: String(ui.from), to_ms: String(ui.to), limit: "50" });
  const r = await api(`/incidents/ranking?${q}`);
  const list = $("ranking");
  list.replaceChildren();
  r.items.forEach((s) => list.appendChild(streamRow(s.stream, s.peak, s.peak >= ui.threshold ? "alerting" : "normal")));
  return r;
}

function labelText(label) {
  if (!label) return "";
  const parts = [];
  if (label.acknowledged_by) parts.push(`acked by ${label.acknowledged_by}`);
  if (label.false_positive === true) parts.push("false positive");
  if (label.false_positive === false) parts.push("confirmed");
  if (label.note) parts.push(`“${label.note}”`);
  return parts.join(" · ");
}

function episodeItem(e) {
  const li = document.createElement("li");
  li.className = `episode ${e.state}`;
  li.dataset.episode = e.id;
  li.dataset.stream = e.stream;
  const ongoing = e.state === "firing";
  // an ongoing episode has lasted until the newest event seen, not only to its last alert
  const lasted = ongoing && ui.anchor > e.start_ms ? (ui.anchor - e.start_ms) / 1000 : e.duration_s;
  const meta = Object.entries(e.meta || {}).slice(0, 4)
    .map(([k, v]) => `<span class="kv">${esc(k)}=${esc(typeof v === "object" ? JSON.stringify(v) : v)}</span>`).join("");
  li.innerHTML =
    `<div class="top"><span class="pill ${ongoing ? "alerting" : "resolved"} state">${ongoing ? "ongoing" : "resolved"}</span>` +
    `<span class="stream">${esc(e.stream)}</span><span class="sc">peak ${e.peak.toFixed(2)}</span></div>` +
    `<div class="sub">${esc(when(e.start_ms))} · ${ongoing ? "for" : "anomalous for"} ${esc(duration(lasted))}</div>` +
    `<div class="why">${esc(e.reason || "")}</div>` +
    (meta ? `<div class="metas">${meta}</div>` : "") +
    `<div class="label">${esc(labelText(e.label))}</div>` +
    `<div class="actions"><button class="ack">Acknowledge</button>` +
    `<button class="fp">False positive</button></div>`;
  li.querySelector(".ack").addEventListener("click", (ev) => {
    ev.stopPropagation();
    labelEpisode(e.id, "ack", { by: "dashboard" });
  });
  li.querySelector(".fp").addEventListener("click", (ev) => {
    ev.stopPropagation();
    const note = prompt("Why is this a false positive? (optional)") || "";
    labelEpisode(e.id, "false-positive", { note });
  });
  li.addEventListener("click", () => {
    setRange(e.start_ms - 30 * 60000, (ongoing ? ui.to : e.last_ts_ms + 30 * 60000));
    openStream(e.stream);
    refresh();
  });
  return li;
}

async function labelEpisode(id, action, body) {
  try {
    await post(`/episodes/${id}/${action}`, body);
    toast(action === "ack" ? "acknowledged" : "marked as false positive");
    refresh();
  } catch (err) {
    toast(String(err.message || err));
  }
}

async function loadEpisodes() {
  const q = new URLSearchParams({ limit: "50" });
  if (ui.episodeState) q.set("state", ui.episodeState);
  const r = await api(`/episodes?${q}`);
  const list = $("episodes");
  list.replaceChildren();
  r.items.forEach((e) => list.appendChild(episodeItem(e)));
  if (!r.items.length) list.innerHTML = `<li class="sub">no episodes among the kept alerts</li>`;
}

async function runSearch() {
  const box = $("search-results");
  if (!ui.q) { box.hidden = true; return; }
  const [streams, eps] = await Promise.all([
    api(`/streams?${new URLSearchParams({ q: ui.q, limit: "20" })}`),
    api(`/episodes?${new URLSearchParams({ q: ui.q, limit: "20" })}`),
  ]);
  box.hidden = false;
  $("search-what").textContent = `“${ui.q}”: ${streams.items.length} streams, ${eps.items.length} episodes`;
  const list = $("search-streams");
  list.replaceChildren();
  streams.items.forEach((s) => list.appendChild(streamRow(s.stream, s.score, s.status)));
  const el = $("search-episodes");
  el.replaceChildren();
  eps.items.forEach((e) => el.appendChild(episodeItem(e)));
}

$("episode-filter").addEventListener("click", (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  document.querySelectorAll("#episode-filter button").forEach((x) => x.classList.toggle("on", x === b));
  ui.episodeState = b.dataset.state;
  loadEpisodes().catch(console.warn);
});

let searchTimer = null;
$("search").addEventListener("input", (ev) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    ui.q = ev.target.value.trim();
    writeLink();
    runSearch().catch((err) => toast(String(err.message || err)));
  }, 250);
});
