/* Vigil's own tiny canvas charts: a time series with an expected band, and a score strip.
   No library and no build step: draw straight onto a <canvas>, sized for the device's
   pixel ratio so lines stay sharp. Gaps (null) break lines and bands. */
"use strict";

const VigilChart = (() => {
  const C = {
    grid: "#2a3550", axis: "#8b96ad", actual: "#e6ebf5", expected: "#5aa9ff",
    band: "rgba(90, 169, 255, 0.16)", bandEdge: "rgba(90, 169, 255, 0.35)",
    alert: "#ff5d6c", score: "#f5b942", scoreFill: "rgba(245, 185, 66, 0.18)",
  };
  const PAD = { left: 58, right: 14, top: 12, bottom: 26 };

  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, w, h };
  }

  const finite = (x) => typeof x === "number" && Number.isFinite(x);

  function niceStep(span, count) {
    const raw = span / Math.max(count, 1);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  }

  function fmtNum(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 100) return v.toFixed(0);
    if (a >= 1) return v.toFixed(1);
    return v.toPrecision(2);
  }

  function fmtTime(ms, span) {
    const d = new Date(ms);
    const hm = d.toISOString().slice(11, 16);
    return span > 2 * 86400e3 ? d.toISOString().slice(5, 10) + " " + hm : hm;
  }

  function frame(ctx, w, h, t, lo, hi, yTicks) {
    const x0 = PAD.left, x1 = w - PAD.right, y0 = h - PAD.bottom, y1 = PAD.top;
    const tMin = t[0], tMax = t[t.length - 1] === tMin ? tMin + 1 : t[t.length - 1];
    const sx = (v) => x0 + ((v - tMin) / (tMax - tMin)) * (x1 - x0);
    const sy = (v) => y0 - ((v - lo) / (hi - lo)) * (y0 - y1);
    ctx.strokeStyle = C.grid;
    ctx.fillStyle = C.axis;
    ctx.lineWidth = 1;
    const step = niceStep(hi - lo, yTicks);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) {
      const y = Math.round(sy(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
      ctx.fillText(fmtNum(v), x0 - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const span = tMax - tMin;
    const ticks = Math.max(2, Math.floor((x1 - x0) / 110));
    for (let i = 0; i <= ticks; i++) {
      const v = tMin + (span * i) / ticks;
      ctx.fillText(fmtTime(v, span), sx(v), y0 + 7);
    }
    return { sx, sy, x0, x1, y0, y1 };
  }

  function line(ctx, t, ys, sx, sy, color, width, dash) {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.setLineDash(dash || []);
    ctx.beginPath();
    let open = false;
    for (let i = 0; i < t.length; i++) {
      if (!finite(ys[i])) { open = false; continue; }
      const x = sx(t[i]), y = sy(ys[i]);
      if (open) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      open = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  function band(ctx, t, lower, upper, sx, sy) {
    // One filled polygon per run of points that have both edges.
    let i = 0;
    while (i < t.length) {
      while (i < t.length && !(finite(lower[i]) && finite(upper[i]))) i++;
      const start = i;
      while (i < t.length && finite(lower[i]) && finite(upper[i])) i++;
      if (i - start < 2) continue;
      ctx.beginPath();
      for (let j = start; j < i; j++) ctx.lineTo(sx(t[j]), sy(upper[j]));
      for (let j = i - 1; j >= start; j--) ctx.lineTo(sx(t[j]), sy(lower[j]));
      ctx.closePath();
      ctx.fillStyle = C.band;
      ctx.fill();
    }
    line(ctx, t, upper, sx, sy, C.bandEdge, 1);
    line(ctx, t, lower, sx, sy, C.bandEdge, 1);
  }

  function empty(ctx, w, h, text) {
    ctx.fillStyle = C.axis;
    ctx.textAlign = "center";
    ctx.fillText(text, w / 2, h / 2);
  }

  /* data: {t, actual, expected, lower, upper, alert} — parallel arrays, t in epoch ms.
     The y range follows the model's view (expected, band) and the non-alert values, so
     one huge spike does not flatten everything else: an alert beyond the range is drawn
     as a marker pinned to the edge, labelled with its value. */
  function series(canvas, data) {
    const { ctx, w, h } = setup(canvas);
    const t = data.t;
    if (t.length === 0) return empty(ctx, w, h, "no history yet");
    const calm = data.actual.filter((v, i) => !data.alert[i]);
    let all = [...calm, ...data.expected, ...data.lower, ...data.upper].filter(finite);
    if (all.length === 0) all = data.actual.filter(finite);
    if (all.length === 0) return empty(ctx, w, h, "no finite values");
    let lo = Math.min(...all), hi = Math.max(...all);
    const pad = (hi - lo || Math.abs(hi) || 1) * 0.12;
    lo -= pad; hi += pad;
    const f = frame(ctx, w, h, t, lo, hi, 5);
    ctx.save();
    ctx.beginPath();
    ctx.rect(f.x0, f.y1, f.x1 - f.x0, f.y0 - f.y1);
    ctx.clip();
    band(ctx, t, data.lower, data.upper, f.sx, f.sy);
    line(ctx, t, data.expected, f.sx, f.sy, C.expected, 1.5, [5, 3]);
    line(ctx, t, data.actual, f.sx, f.sy, C.actual, 1.6);
    ctx.restore();
    for (let i = 0; i < t.length; i++) {
      if (!data.alert[i] || !finite(data.actual[i])) continue;
      const v = data.actual[i];
      const x = f.sx(t[i]);
      const y = Math.min(f.y0 - 6, Math.max(f.y1 + 6, f.sy(v)));
      ctx.strokeStyle = "rgba(255, 93, 108, 0.35)";
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x, f.y1); ctx.lineTo(x, f.y0); ctx.stroke();
      ctx.fillStyle = C.alert;
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = "#0f1420"; ctx.lineWidth = 1.5; ctx.stroke();
      if (v > hi || v < lo) {
        ctx.textAlign = x > f.x1 - 60 ? "right" : "left";
        ctx.textBaseline = "middle";
        ctx.fillText((v > hi ? "▲ " : "▼ ") + fmtNum(v), x + (ctx.textAlign === "left" ? 9 : -9), y);
      }
    }
  }

  /* data: {t, score, alert}; scores are in [0, 1]. */
  function score(canvas, data) {
    const { ctx, w, h } = setup(canvas);
    if (data.t.length === 0) return;
    const f = frame(ctx, w, h, data.t, 0, 1, 2);
    ctx.beginPath();
    ctx.moveTo(f.sx(data.t[0]), f.sy(0));
    data.t.forEach((v, i) => ctx.lineTo(f.sx(v), f.sy(finite(data.score[i]) ? data.score[i] : 0)));
    ctx.lineTo(f.sx(data.t[data.t.length - 1]), f.sy(0));
    ctx.closePath();
    ctx.fillStyle = C.scoreFill;
    ctx.fill();
    line(ctx, data.t, data.score, f.sx, f.sy, C.score, 1.2);
    ctx.fillStyle = C.alert;
    data.t.forEach((v, i) => {
      if (data.alert[i]) ctx.fillRect(f.sx(v) - 1.5, f.y1, 3, 6);
    });
    ctx.fillStyle = C.axis;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText("anomaly score", f.x0 + 6, f.y1 + 2);
  }

  return { series, score };
})();
