// Line plots in inline SVG: no library, nothing fetched. HF.plot(box, options) redraws box.
//   options.title   heading
//   options.series  [{name, color, points: [[x, y], ...]}]
//   options.markers [{x, color, label}]: vertical lines (stability verdicts)
//   options.xLabel  the x axis' unit
"use strict";

(() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 460, H = 220, LEFT = 52, RIGHT = 10, TOP = 10, BOTTOM = 28;
  const COLORS = ["#f2b33d", "#6fb6f0", "#6fd08c", "#f07171", "#c792ea", "#e0e0e0", "#ff9e64"];

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Axis ticks at 1, 2 or 5 times a power of ten, about `count` of them.
  function ticks(lo, hi, count = 5) {
    const raw = (hi - lo) / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  function range(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (lo === hi) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
    return [lo, hi];
  }

  const label = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(+v.toPrecision(4)));

  HF.plot = function plot(box, options) {
    box.replaceChildren(HF.el("h3", {}, options.title));
    const series = (options.series || [])
      .map((s, i) => ({ ...s, color: s.color || COLORS[i % COLORS.length] }))
      .filter((s) => s.points.length);
    if (!series.length) {
      box.append(HF.el("div", { class: "empty" }, "no data yet"));
      return;
    }
    const xs = series.flatMap((s) => s.points.map((p) => p[0]));
    const ys = series.flatMap((s) => s.points.map((p) => p[1]));
    const [x0, x1] = range(xs);
    let [y0, y1] = range(ys);
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    const sx = (x) => LEFT + ((x - x0) / (x1 - x0)) * (W - LEFT - RIGHT);
    const sy = (y) => H - BOTTOM - ((y - y0) / (y1 - y0)) * (H - TOP - BOTTOM);

    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": options.title });
    for (const y of ticks(y0, y1)) {
      root.append(svg("line", { class: "axis", x1: LEFT, x2: W - RIGHT, y1: sy(y), y2: sy(y), "stroke-dasharray": "2 3" }));
      root.append(svg("text", { x: LEFT - 4, y: sy(y) + 4, "text-anchor": "end" }, label(y)));
    }
    for (const x of ticks(x0, x1)) {
      root.append(svg("text", { x: sx(x), y: H - BOTTOM + 14, "text-anchor": "middle" }, label(x)));
    }
    root.append(svg("text", { x: W - RIGHT, y: H - 2, "text-anchor": "end" }, options.xLabel || "kimg"));
    root.append(svg("line", { class: "axis", x1: LEFT, x2: LEFT, y1: TOP, y2: H - BOTTOM }));
    root.append(svg("line", { class: "axis", x1: LEFT, x2: W - RIGHT, y1: H - BOTTOM, y2: H - BOTTOM }));
    for (const m of options.markers || []) {
      if (m.x < x0 || m.x > x1) continue;
      const line = svg("line", { x1: sx(m.x), x2: sx(m.x), y1: TOP, y2: H - BOTTOM, stroke: m.color, "stroke-dasharray": "4 3" });
      line.append(svg("title", {}, m.label));
      root.append(line);
    }
    for (const s of series) {
      const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
      root.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.5 }));
      if (s.points.length < 40) {  // few points (FID): show each one
        for (const p of s.points) root.append(svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color }));
      }
    }

    // Hover: a cursor line, and the legend shows each series' value nearest to it.
    const cursor = svg("line", { x1: 0, x2: 0, y1: TOP, y2: H - BOTTOM, stroke: "#888", visibility: "hidden" });
    root.append(cursor);
    const legend = HF.el("div", { class: "legend" });
    const values = series.map((s) => {
      const value = HF.el("span", { class: "dim" });
      legend.append(HF.el("span", {}, HF.el("i", { style: `background:${s.color}` }), s.name, " ", value));
      return value;
    });
    const at = HF.el("span", { class: "dim" });
    legend.append(at);
    root.addEventListener("mousemove", (event) => {
      const box2 = root.getBoundingClientRect();
      const x = x0 + (((event.clientX - box2.left) / box2.width) * W - LEFT) / (W - LEFT - RIGHT) * (x1 - x0);
      cursor.setAttribute("x1", sx(x)); cursor.setAttribute("x2", sx(x));
      cursor.setAttribute("visibility", "visible");
      at.textContent = `@ ${label(x)} ${options.xLabel || "kimg"}`;
      series.forEach((s, i) => {
        const near = s.points.reduce((best, p) => (Math.abs(p[0] - x) < Math.abs(best[0] - x) ? p : best));
        values[i].textContent = label(near[1]);
      });
    });
    root.addEventListener("mouseleave", () => cursor.setAttribute("visibility", "hidden"));
    box.append(root, legend);
  };
})();
