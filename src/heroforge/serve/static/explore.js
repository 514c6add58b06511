// The explorer: seeds -> heroes; two of them -> their child, with a weight slider and a morph
// preview (the slider walked from A to B and back: a straight line between their w).
"use strict";

(() => {
  const { el, api, getJSON, withToken } = HF;
  const id = HF.pathId();
  const parents = { a: null, b: null };  // {seed, src}
  let childRequest = null;  // the child request in flight: a newer slider position aborts it
  let playing = false;
  let nextSlot = "a";

  const trunc = () => document.getElementById("trunc").value;

  async function draw(event) {
    if (event) event.preventDefault();
    const seeds = document.getElementById("seeds").value.trim();
    const data = await getJSON(`/api/jobs/${id}/generate?format=json&trunc=${trunc()}&seeds=${encodeURIComponent(seeds)}`);
    const cards = data.seeds.map((seed, i) => {
      const src = `data:image/png;base64,${data.images[i]}`;
      const card = el("div", { class: "card", "data-seed": seed },
        el("img", { src, class: "pixel", alt: `seed ${seed}`, onclick: () => pick(seed, src, null) }),
        el("div", { class: "name" }, `seed ${seed}`),
        el("div", { class: "pick" },
          el("button", { onclick: () => pick(seed, src, "a") }, "A"),
          el("button", { onclick: () => pick(seed, src, "b") }, "B")));
      return card;
    });
    document.getElementById("heroes").replaceChildren(...cards);
    // parents drawn with another truncation: show (and breed) them as drawn now
    for (const key of ["a", "b"]) {
      const i = parents[key] ? data.seeds.indexOf(parents[key].seed) : -1;
      if (i >= 0) parents[key].src = `data:image/png;base64,${data.images[i]}`;
    }
    showParents();
    await child();
  }

  // which = "a" / "b"; null (a click on the picture) fills A, then B, then A again...
  function pick(seed, src, which) {
    which = which || nextSlot;
    nextSlot = which === "a" ? "b" : "a";
    parents[which] = { seed, src };
    showParents();
    child().catch(HF.showError);
  }

  function showParents() {
    for (const key of ["a", "b"]) {
      const img = document.getElementById(`parent-${key}`);
      const caption = document.getElementById(`caption-${key}`);
      if (parents[key]) {
        img.src = parents[key].src;
        caption.textContent = `${key.toUpperCase()}: seed ${parents[key].seed}`;
      } else {
        img.removeAttribute("src");
        caption.textContent = `pick parent ${key.toUpperCase()}`;
      }
    }
    markCards();
    document.getElementById("play").disabled = !(parents.a && parents.b);
  }

  function markCards() {
    for (const card of document.querySelectorAll("#heroes .card")) {
      const seed = Number(card.dataset.seed);
      card.classList.toggle("a", parents.a?.seed === seed);
      card.classList.toggle("b", parents.b?.seed === seed);
    }
  }

  async function child() {
    if (!parents.a || !parents.b) return;
    const weight = document.getElementById("weight").value;
    document.getElementById("weight-value").textContent = weight;
    if (childRequest) childRequest.abort();
    const request = new AbortController();
    childRequest = request;
    try {
      const url = `/api/jobs/${id}/child?a=${parents.a.seed}&b=${parents.b.seed}&weight=${weight}&trunc=${trunc()}`;
      const blob = await (await api(url, { signal: request.signal })).blob();
      const img = document.getElementById("child");
      const old = img.src;
      img.src = URL.createObjectURL(blob);
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      img.dataset.weight = weight;
      document.getElementById("caption-child").textContent = `child, ${Math.round(weight * 100)} % B`;
    } catch (err) {
      if (err.name !== "AbortError") throw err;
    } finally {
      if (childRequest === request) childRequest = null;
    }
  }

  async function play() {
    const button = document.getElementById("play");
    if (playing) { playing = false; return; }
    playing = true;
    button.textContent = "stop";
    const slider = document.getElementById("weight");
    let step = 0.05;
    try {
      while (playing && parents.a && parents.b) {
        let next = Number(slider.value) + step;
        if (next > 1 || next < 0) { step = -step; next = Number(slider.value) + step; }
        slider.value = next.toFixed(2);
        await child();  // one frame at a time: as fast as the model draws, never a backlog
      }
    } catch (err) { HF.showError(err); }
    playing = false;
    button.textContent = "play morph";
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("job-link").href = withToken(`/job/${id}`);
    document.getElementById("title").textContent = `Explore job ${id}`;
    document.getElementById("seed-form").addEventListener("submit", (e) => draw(e).catch(HF.showError));
    document.getElementById("random").addEventListener("click", () => {
      const start = Math.floor(Math.random() * 100000);
      document.getElementById("seeds").value = `${start}-${start + 7}`;
      draw().catch(HF.showError);
    });
    const truncSlider = document.getElementById("trunc");
    truncSlider.addEventListener("change", () => draw().catch(HF.showError));
    truncSlider.addEventListener("input", () => { document.getElementById("trunc-value").textContent = truncSlider.value; });
    document.getElementById("weight").addEventListener("input", () => { if (!playing) child().catch(HF.showError); });
    document.getElementById("play").addEventListener("click", play);
    getJSON(`/api/jobs/${id}`).then((job) => {
      document.getElementById("title").textContent = `Explore job ${job.id}: ${job.name}`;
    }).catch(HF.showError);
    draw().catch(HF.showError);
  });
})();
