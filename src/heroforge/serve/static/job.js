// The job page: curves over kimg, verdicts, the sample grid with its history, snapshots.
"use strict";

(() => {
  const { el, getJSON, number, duration, withToken } = HF;
  const id = HF.pathId();
  const MAX_POINTS = 600;  // per curve: more than a plot this wide can show
  let grids = [];
  let followLatest = true;  // the slider stays on the newest grid until the user moves it

  const series = (ticks, key, name) => ({
    name: name || key,
    points: ticks.filter((t) => t[key] !== undefined).map((t) => [t.kimg, t[key]]),
  });

  function drawPlots(stats) {
    const ticks = stats.ticks;
    const markers = stats.verdicts.map((v) => ({
      x: v.kimg, color: v.verdict === "stable" ? "#6fd08c" : "#f07171",
      label: `${v.verdict} at ${v.kimg} kimg${(v.reasons || []).length ? ": " + v.reasons.join("; ") : ""}`,
    }));
    const losses = stats.keys.filter((k) => k.startsWith("loss/"));
    HF.plot(document.getElementById("plot-losses"), {
      title: "losses", series: losses.map((k) => series(ticks, k, k.slice(5))), markers,
    });
    HF.plot(document.getElementById("plot-ada"), {
      title: "ADA: augment p and overfitting r_t", markers,
      series: [series(ticks, "augment_p", "p"), series(ticks, "rt", "r_t")],
    });
    const metricKeys = ["fid", "kid", "precision", "recall"];
    HF.plot(document.getElementById("plot-fid"), {
      title: "FID (lower is better)", markers,
      series: [{ name: "FID", points: stats.metrics.filter((m) => m.fid !== null && m.fid !== undefined).map((m) => [m.kimg, m.fid]) }],
    });
    HF.plot(document.getElementById("plot-speed"), {
      title: "speed: seconds per kimg", series: [series(ticks, "sec_per_kimg", "s/kimg")],
    });
    const last = stats.metrics[stats.metrics.length - 1];
    const verdictRows = stats.verdicts.slice().reverse().map((v) =>
      el("tr", {},
        el("td", { class: "num" }, `${v.kimg} kimg`),
        el("td", { class: v.verdict === "stable" ? "good" : "bad" }, v.verdict),
        el("td", {}, (v.reasons || []).join("; ") || "-")));
    document.querySelector("#verdicts tbody").replaceChildren(...(verdictRows.length ? verdictRows
      : [el("tr", {}, el("td", { class: "dim" }, "no verdict yet (one at every cycle end and metrics measurement)"))]));
    if (last) {
      const text = metricKeys.filter((k) => last[k] !== undefined && last[k] !== null).map((k) => `${k} ${number(last[k], 3)}`).join(" · ");
      document.getElementById("plot-fid").append(el("div", { class: "dim" }, `latest at ${last.kimg} kimg: ${text}`));
    }
  }

  function showGrid() {
    const slider = document.getElementById("grid-slider");
    const image = document.getElementById("grid");
    const labelBox = document.getElementById("grid-label");
    if (!grids.length) { image.hidden = true; labelBox.textContent = "no grid yet (one at every checkpoint)"; return; }
    slider.max = grids.length - 1;
    if (followLatest) slider.value = grids.length - 1;
    const grid = grids[Number(slider.value)];
    const src = withToken(`/api/jobs/${id}/grids/${encodeURIComponent(grid.name)}`);
    if (image.getAttribute("src") !== src) image.src = src;
    image.hidden = false;
    labelBox.textContent = `${grid.kimg} kimg (${Number(slider.value) + 1} of ${grids.length})`;
  }

  function drawJob(job) {
    document.title = `heroforge · ${job.name}`;
    document.getElementById("title").textContent = `job ${job.id}: ${job.name}`;
    const fraction = job.target_kimg ? Math.min(1, job.kimg / job.target_kimg) : 0;
    document.getElementById("summary").replaceChildren(
      el("span", { class: `state ${job.state}` }, job.state),
      el("div", { class: "bar" }, el("span", { style: `width:${(fraction * 100).toFixed(2)}%` })),
      el("span", {}, `${number(job.kimg)} / ${number(job.target_kimg)} kimg`),
      el("span", { class: "dim" }, `ETA ${job.state === "running" ? duration(job.eta_s) : "-"}`),
      el("span", { class: "dim" }, `restarts ${job.restarts}`),
      el("span", { class: "dim" }, `time lost ${duration(job.lost_s)}`),
      el("span", { class: "dim" }, `run ${job.run ? job.run.name : "not started"}`));
    const run = job.run || { checkpoints: [] };
    const snaps = run.checkpoints.slice().reverse().map((c) =>
      el("tr", { "data-snapshot": c.name },
        el("td", {}, c.name),
        el("td", { class: "num" }, `${number(c.kimg)} kimg`),
        el("td", {}, [c.name === run.latest ? "latest" : null, c.name === run.best ? "best (what generate uses)" : null].filter(Boolean).join(", ")),
        el("td", {}, el("button", {
          disabled: c.name === run.best, "data-action": "best", onclick: () => useAsBest(c.name),
          title: "heroforge generate and the explorer will draw with this snapshot",
        }, "use as best"))));
    document.querySelector("#snapshots tbody").replaceChildren(...(snaps.length ? snaps
      : [el("tr", {}, el("td", { class: "dim" }, "no checkpoint yet"))]));
    const events = job.events.slice(-30).reverse().map((e) => {
      const { time, kind, ...rest } = e;
      return el("tr", {},
        el("td", { class: "dim" }, new Date(time * 1000).toLocaleString()),
        el("td", {}, kind),
        el("td", { class: "dim" }, Object.keys(rest).length ? JSON.stringify(rest) : ""));
    });
    document.querySelector("#events tbody").replaceChildren(...events);
  }

  // Writes best.json (as training does for the best stable FID), then redraws the table.
  async function useAsBest(name) {
    try {
      await HF.post(`/api/jobs/${id}/best`, { name });
      drawJob(await getJSON(`/api/jobs/${id}`));
    } catch (err) { HF.showError(err); }
  }

  async function refresh() {
    const job = await getJSON(`/api/jobs/${id}`);
    drawJob(job);
    if (!job.run) return;
    const [stats, gridList] = await Promise.all([
      getJSON(`/api/jobs/${id}/stats?max_points=${MAX_POINTS}`),
      getJSON(`/api/jobs/${id}/grids`),
    ]);
    drawPlots(stats);
    grids = gridList;
    showGrid();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("explore-link").href = withToken(`/explore/${id}`);
    const slider = document.getElementById("grid-slider");
    slider.addEventListener("input", () => {
      followLatest = Number(slider.value) === grids.length - 1;
      showGrid();
    });
    HF.poll(refresh, 5000);
  });
})();
