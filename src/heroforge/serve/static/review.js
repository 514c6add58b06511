// Dataset review: the prepare manifest as thumbnails; clicks write overrides.csv.
"use strict";

(() => {
  const { el, getJSON, post, withToken } = HF;
  const PAGE = 200;  // cards drawn at a time: thousands of pictures would stall the page
  let data = { rows: [], sets: [], set: 0 };
  let shown = PAGE;

  // What the picture will be after the next `prepare`, given the override waiting in the file
  // (without one, prepare decides again from the scores: most likely as it did).
  function effective(row) {
    if (row.pending === "include") return "keep";
    if (row.pending === "exclude") return "exclude";
    return row.decision;
  }

  const body = (row) => (row.pending === "upper" || row.pending === "full" ? row.pending : row.body);

  async function setOverride(row, action) {
    try {
      const result = await post("/api/review/override", { set: data.set, source: row.source, action });
      row.pending = result.pending;
      render(false);
    } catch (err) { HF.showError(err); }
  }

  function card(row) {
    const now = effective(row);
    const canFlip = row.decision !== "error" && row.framed;
    const flip = () => {
      if (!canFlip) return;
      setOverride(row, now === "keep" ? "exclude" : "include");
    };
    const changed = (row.pending || null) !== (row.override || null);
    const classes = ["card", row.decision, changed ? "changed" : ""].join(" ");
    const thumb = row.sha256 && row.decision !== "error"
      ? el("img", { src: withToken(`/api/review/thumb/${row.sha256}.jpg?set=${data.set}`), alt: row.source,
        loading: "lazy", title: canFlip ? "click: keep / exclude" : "cannot be kept", onclick: flip })
      : el("div", { class: "dim" }, "(no picture)");
    const why = row.decision === "keep" ? "kept" : `${row.decision}: ${row.reason || ""}`;
    return el("div", { class: classes, "data-source": row.source },
      thumb,
      el("div", { class: "name" }, row.source),
      el("div", { class: row.decision === "keep" ? "good" : "bad" }, why),
      row.duplicate_of ? el("div", { class: "dim" }, `duplicate of ${row.duplicate_of}` +
        (row.duplicate_distance != null ? ` (colour distance ${row.duplicate_distance})` : "")) : null,
      row.duplicate_sha256 ? el("img", { class: "twin", alt: `duplicates ${row.duplicate_of}`, loading: "lazy",
        src: withToken(`/api/review/thumb/${row.duplicate_sha256}.jpg?set=${data.set}`),
        title: `the picture it duplicates: ${row.duplicate_of}` }) : null,
      el("div", { class: "dim" }, `body ${body(row) || "-"}${row.pending ? ` · override: ${row.pending}` : ""}`),
      el("div", { class: "pick" },
        el("button", { disabled: !canFlip, onclick: flip, "data-action": "flip" }, now === "keep" ? "exclude" : "include"),
        el("button", { disabled: row.decision === "error", "data-action": "body",
          onclick: () => setOverride(row, body(row) === "upper" ? "full" : "upper") },
        body(row) === "upper" ? "→ full" : "→ upper"),
        el("button", { disabled: !row.pending, "data-action": "clear", onclick: () => setOverride(row, null) }, "clear")));
  }

  function visible() {
    const decision = document.getElementById("decision").value;
    const reason = document.getElementById("reason").value;
    const changedOnly = document.getElementById("changed").checked;
    const text = document.getElementById("search").value.trim().toLowerCase();
    return data.rows.filter((row) =>
      (!decision || row.decision === decision)
      && (!reason || row.reason === reason)
      && (!changedOnly || (row.pending || null) !== (row.override || null))
      && (!text || row.source.toLowerCase().includes(text)));
  }

  function render(resetPaging = true) {
    if (resetPaging) shown = PAGE;
    const rows = visible();
    document.getElementById("cards").replaceChildren(...rows.slice(0, shown).map(card));
    document.getElementById("more").hidden = rows.length <= shown;
    const kept = data.rows.filter((r) => r.decision === "keep").length;
    const pending = data.rows.filter((r) => (r.pending || null) !== (r.override || null)).length;
    document.getElementById("counts").textContent =
      `${rows.length} shown of ${data.rows.length} · ${kept} kept · ${pending} changes waiting for prepare`;
  }

  async function load(set) {
    data = await getJSON(`/api/review?set=${set}`);
    const select = document.getElementById("set");
    select.replaceChildren(...data.sets.map((s) => el("option", { value: s.index, selected: s.index === data.set }, `${s.name} (${s.path})`)));
    const reasons = [...new Set(data.rows.map((r) => r.reason).filter(Boolean))].sort();
    const reasonBox = document.getElementById("reason");
    const current = reasonBox.value;
    reasonBox.replaceChildren(el("option", { value: "" }, "all"), ...reasons.map((r) => el("option", { value: r, selected: r === current }, r)));
    render();
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const name of ["decision", "reason", "changed"]) document.getElementById(name).addEventListener("change", () => render());
    document.getElementById("search").addEventListener("input", () => render());
    document.getElementById("set").addEventListener("change", (e) => load(Number(e.target.value)).catch(HF.showError));
    document.getElementById("more").addEventListener("click", () => { shown += PAGE; render(false); });
    load(0).catch(HF.showError);
  });
})();
