// The queue page: every job with its progress, refreshed every few seconds, and its actions.
"use strict";

(() => {
  const { el, post, duration, number, withToken } = HF;

  function progress(job) {
    const fraction = job.target_kimg ? Math.min(1, (job.kimg || 0) / job.target_kimg) : 0;
    return el("td", {},
      el("div", { class: "bar", title: `${(fraction * 100).toFixed(1)} %` },
        el("span", { style: `width:${(fraction * 100).toFixed(2)}%` })),
      el("span", { class: "bar-text" }, `${number(job.kimg)} / ${number(job.target_kimg)} kimg`));
  }

  async function act(job, action, body) {
    if (action === "cancel" && !confirm(`Cancel job ${job.id} (${job.name})? It cannot be undone.`)) return;
    try {
      await post(`/api/jobs/${job.id}/${action}`, body);
      await refresh();
    } catch (err) { HF.showError(err); }
  }

  function actions(job) {
    const final = ["done", "failed", "cancelled"].includes(job.state);
    const paused = job.state === "paused" || job.request === "pause";
    return el("td", {},
      el("div", { class: "row" },
        el("button", { disabled: final || paused, onclick: () => act(job, "pause"), "data-action": "pause" }, "pause"),
        el("button", { disabled: !paused, onclick: () => act(job, "resume"), "data-action": "resume" }, "resume"),
        el("button", { disabled: final, onclick: () => act(job, "cancel"), "data-action": "cancel" }, "cancel"),
        el("a", { href: withToken(`/explore/${job.id}`) }, "explore")));
  }

  function priority(job) {
    const input = el("input", { type: "number", value: job.priority, step: 1, "aria-label": "priority" });
    const set = () => act(job, "priority", { priority: Number(input.value) });
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") set(); });
    return el("td", {}, input, " ", el("button", { onclick: set }, "set"));
  }

  function row(job) {
    const note = job.request ? `${job.request} requested` : job.reason || "";
    const verdict = job.verdict ? el("span", { class: job.verdict === "stable" ? "good" : "bad" }, job.verdict) : "-";
    return el("tr", { "data-job": job.id },
      el("td", { class: "num" }, job.id),
      el("td", {}, el("a", { href: withToken(`/job/${job.id}`) }, job.name)),
      el("td", {}, el("span", { class: `state ${job.state}` }, job.state), " ", el("span", { class: "dim" }, note)),
      progress(job),
      el("td", { class: "num" }, job.state === "running" ? duration(job.eta_s) : "-"),
      el("td", { class: "num" }, number(job.sec_per_kimg, 1)),
      el("td", { class: "num" }, job.restarts),
      el("td", { class: "num" }, duration(job.lost_s)),
      el("td", { class: "num" }, number(job.fid, 2)),
      el("td", {}, verdict),
      priority(job),
      actions(job));
  }

  // A run folder no queue started (heroforge serve --runs): read-only, no actions.
  function runRow(run) {
    const grid = run.grid ? withToken(`/api/runs/${run.id}/grids/${encodeURIComponent(run.grid)}`) : null;
    const ended = run.ending ? ` at ${number(run.ending.nimg / 1000)} kimg` : "";
    return el("tr", { "data-run": run.id },
      el("td", { title: run.path }, run.name),
      el("td", {}, el("span", { class: `state ${run.state}` }, run.state), el("span", { class: "dim" }, ended)),
      progress(run),
      el("td", { class: "num" }, number(run.sec_per_kimg, 1)),
      el("td", { class: "num" }, number(run.best_fid, 2)),
      el("td", {}, run.precision || "-"),
      el("td", { class: "dim" }, run.data || "-"),
      el("td", {}, grid ? el("a", { href: grid }, el("img", { class: "pixel thumb", src: grid, alt: run.grid })) : "-"),
      el("td", { class: run.reason ? "bad" : "dim" }, run.reason || (run.ending && run.ending.error) || ""));
  }

  async function refreshRuns() {
    const runs = await HF.getJSON("/api/runs");
    document.getElementById("runs-section").hidden = !runs.length;
    document.querySelector("#runs tbody").replaceChildren(...runs.map(runRow));
  }

  let editing = false;  // a refresh must not replace the priority box being typed in
  document.addEventListener("focusin", (e) => { editing = e.target.matches("input"); });
  document.addEventListener("focusout", () => { editing = false; });

  async function refresh() {
    const jobs = await HF.getJSON("/api/jobs");
    await refreshRuns();
    if (editing) return;
    const body = document.querySelector("#jobs tbody");
    body.replaceChildren(...(jobs.length ? jobs.map(row)
      : [el("tr", {}, el("td", { colspan: 12, class: "dim" }, "the queue is empty (heroforge queue submit --help)"))]));
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  document.addEventListener("DOMContentLoaded", () => HF.poll(refresh, 3000));
})();
