/* The stream charts, drawn with uPlot (vendored, MIT): values with the expected line and
   the usual band, alert points, episodes as shaded spans, model swaps as dashed lines;
   and the score strip with the threshold line. Both share one cursor (hover values in
   the legend) and one x range: dragging across a chart zooms the whole page's range. */
"use strict";

const VigilCharts = (() => {
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  let plots = [];

  function destroy() {
    plots.forEach((p) => p.destroy());
    plots = [];
  }

  function spans(u, episodes, swaps) {
    /* Episodes shaded (ongoing ones run to the right edge), model swaps dashed. */
    const ctx = u.ctx;
    const { top, height, left, width } = u.bbox;
    ctx.save();
    for (const e of episodes) {
      const end = e.state === "resolved" ? e.last_ts_ms : u.scales.x.max * 1000;
      const x0 = Math.max(u.valToPos(e.start_ms / 1000, "x", true), left);
      const x1 = Math.min(u.valToPos(end / 1000, "x", true), left + width);
      if (x1 <= x0) continue;
      ctx.fillStyle = e.state === "resolved" ? "rgba(245,185,66,0.10)" : "rgba(255,93,108,0.16)";
      ctx.fillRect(x0, top, Math.max(x1 - x0, 2), height);
    }
    ctx.strokeStyle = css("--accent");
    ctx.setLineDash([4, 4]);
    for (const s of swaps) {
      const x = u.valToPos(s.ts_ms / 1000, "x", true);
      if (x < left || x > left + width) continue;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    }
    ctx.restore();
  }

  function onZoom(onRange) {
    return (u, key) => {
      if (key !== "x" || !u.select || u.select.width < 2) return;
      const min = u.posToVal(u.select.left, "x"), max = u.posToVal(u.select.left + u.select.width, "x");
      u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
      onRange(min * 1000, max * 1000);
    };
  }

  function common(el, height, onRange) {
    return {
      width: Math.max(el.clientWidth, 300), height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      cursor: { sync: { key: "vigil" }, drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      hooks: { setSelect: [(u) => onZoom(onRange)(u, "x")] },
      axes: [
        { stroke: css("--muted"), grid: { stroke: "#222b40" } },
        { stroke: css("--muted"), grid: { stroke: "#222b40" }, size: 60 },
      ],
    };
  }

  function draw(view) {
    /* view: {points, feature, episodes, swaps, threshold, from, to, onRange} */
    destroy();
    const el = $("chart"), sel = $("score-chart");
    el.replaceChildren(); sel.replaceChildren();
    const pts = view.points, f = view.feature;
    const x = pts.map((p) => p.ts_ms / 1000);
    const scale = { x: { time: true, range: () => [view.from / 1000, view.to / 1000] } };
    const values = Object.assign(common(el, 300, view.onRange), {
      scales: scale,
      series: [
        { label: "time (UTC)", value: (u, v) => (v == null ? "—" : when(v * 1000)) },
        { label: "actual", stroke: css("--text"), width: 1.5, value: (u, v) => fmt(v) },
        { label: "expected", stroke: css("--accent"), width: 1.5, value: (u, v) => fmt(v) },
        { label: "usual low", stroke: "rgba(90,169,255,0.35)", width: 1, value: (u, v) => fmt(v) },
        { label: "usual high", stroke: "rgba(90,169,255,0.35)", width: 1, value: (u, v) => fmt(v) },
        {
          label: "alert", stroke: css("--bad"), paths: () => null,
          points: { show: true, size: 9, fill: css("--bad"), stroke: css("--bad") },
          value: (u, v) => (v == null ? "" : "alert"),
        },
      ],
      bands: [{ series: [4, 3], fill: "rgba(90,169,255,0.16)" }],
    });
    values.hooks.draw = [(u) => spans(u, view.episodes, view.swaps)];
    const data = [
      x,
      pts.map((p) => p.values[f]),
      pts.map((p) => p.expected[f]),
      pts.map((p) => p.lower[f]),
      pts.map((p) => p.upper[f]),
      pts.map((p) => (p.alert ? p.values[f] : null)),
    ];
    plots.push(new uPlot(values, data, el));

    const score = Object.assign(common(sel, 130, view.onRange), {
      scales: Object.assign({ y: { range: [0, 1] } }, scale),
      series: [
        { label: "time (UTC)", value: (u, v) => (v == null ? "—" : when(v * 1000)) },
        { label: "score", stroke: css("--warn"), fill: "rgba(245,185,66,0.15)", width: 1.5,
          value: (u, v) => fmt(v) },
        { label: "threshold", stroke: css("--bad"), dash: [6, 4], width: 1,
          value: () => fmt(view.threshold) },
      ],
    });
    score.hooks.draw = [(u) => spans(u, view.episodes, [])];
    plots.push(new uPlot(score, [x, pts.map((p) => p.score), pts.map(() => view.threshold)], sel));
  }

  return { draw, destroy };
})();
