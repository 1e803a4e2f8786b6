/* Shared by the dashboard's scripts: the API client (bearer token in a header), the page
   state, and the deep link. The URL's hash names the stream, the time range and the
   search, so a link opens the same view: #stream=s-1&from=...&to=...&q=... */
"use strict";

const ui = {
  token: localStorage.getItem("vigil.token") || "",
  selected: null, feature: null, detail: null,
  from: null, to: null, preset: "21600000", anchor: null,  // time range (event time, ms)
  q: "", episodeState: "", streamsLimit: 50, threshold: 0.5,
};
const $ = (id) => document.getElementById(id);

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function when(ms) {
  return ms == null ? "—" : new Date(ms).toISOString().replace("T", " ").slice(0, 16) + "Z";
}

function duration(s) {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function scoreColor(s) {
  return s >= ui.threshold ? "var(--bad)" : s >= 0.3 ? "var(--warn)" : "var(--ok)";
}

function fmt(x) {
  return x == null ? "—" : Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-3)
    ? Number(x).toExponential(2) : Number(x).toPrecision(4).replace(/\.?0+$/, "");
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (ui.token) h.Authorization = `Bearer ${ui.token}`;
  return h;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const res = await fetch(path, opts);
  if (res.status === 401) {
    if (opts.method && opts.method !== "GET") throw new Error("this needs the admin token");
    askToken();
    throw new Error("unauthorized");
  }
  if (!res.ok) {
    let detail = `HTTP ${res.status}`;
    try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return res.status === 204 ? null : res.json();
}

function post(path, body) {
  return api(path, {
    method: "POST", body: JSON.stringify(body || {}),
    headers: { "Content-Type": "application/json" },
  });
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function askToken() {
  $("token-dialog").hidden = false;
  $("token-input").focus();
}

/* --- deep links ---------------------------------------------------------------- */
function readLink() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("token")) {
    ui.token = h.get("token");
    localStorage.setItem("vigil.token", ui.token);
  }
  ui.selected = h.get("stream") || null;
  ui.q = h.get("q") || "";
  const from = Number(h.get("from")), to = Number(h.get("to"));
  if (from > 0 && to > from) { ui.from = from; ui.to = to; ui.preset = "custom"; }
}

function writeLink() {
  const h = new URLSearchParams();
  if (ui.selected) h.set("stream", ui.selected);
  if (ui.from != null) { h.set("from", String(ui.from)); h.set("to", String(ui.to)); }
  if (ui.q) h.set("q", ui.q);
  history.replaceState(null, "", `${location.pathname}#${h}`);
}

/* --- the time range ------------------------------------------------------------ */
function setRange(from, to, preset) {
  ui.from = Math.round(from);
  ui.to = Math.round(to);
  ui.preset = preset || "custom";
  $("range-preset").value = ui.preset;
  const local = (ms) => new Date(ms).toISOString().slice(0, 16);
  $("range-from").value = local(ui.from);
  $("range-to").value = local(ui.to);
  writeLink();
}

function presetRange(anchor) {
  /* Presets end at the newest event seen, not the wall clock: replayed data is dated. */
  if (ui.preset === "custom" && ui.from != null) return;
  const span = Number(ui.preset);
  const end = Math.max(anchor || Date.now(), 0);
  setRange(end - span, end + 60000, ui.preset);
}
