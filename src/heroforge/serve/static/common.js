// Shared by every page: the token, API calls, building elements, formatting.
// Text from the server (picture names, error messages) only ever goes in as textContent.
"use strict";

const HF = (() => {
  const token = new URLSearchParams(location.search).get("token");

  // Links and <img src> cannot send a header: they carry the token in the query instead.
  function withToken(url) {
    if (!token) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  async function api(path, options = {}) {
    const headers = {};
    if (token) headers.Authorization = "Bearer " + token;
    let body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    const response = await fetch(path, {
      method: options.method || "GET", headers, body, signal: options.signal,
    });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const data = await response.json();
        detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      } catch (_) { /* not JSON: keep the status text */ }
      throw new Error(`${response.status}: ${detail}`);
    }
    return response;
  }

  const getJSON = async (path, options) => (await api(path, options)).json();
  const post = (path, json = {}) => getJSON(path, { method: "POST", json });

  // el("td", {class: "num", onclick: f}, "text", child, ...)
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;  // CSSOM: allowed by the page's CSP
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function duration(seconds) {
    if (seconds === undefined || seconds === null) return "-";
    const s = Math.round(seconds);
    const pad = (n) => String(n).padStart(2, "0");
    if (s >= 86400) return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
    if (s >= 3600) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
    return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  }

  function number(value, digits = 3) {
    if (value === undefined || value === null) return "-";
    const text = Number(value).toFixed(digits);
    return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
  }

  let hideTimer;
  function showError(err) {
    const box = document.getElementById("message");
    if (!box) return;
    box.textContent = err instanceof Error ? err.message : String(err);
    box.classList.add("show");
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => box.classList.remove("show"), 6000);
  }

  // Keeps the token on the navigation links of the page.
  function fixLinks(root = document) {
    for (const a of root.querySelectorAll("a[data-local]")) a.href = withToken(a.getAttribute("href"));
  }

  // Runs fn now and every `ms`, never two at a time; errors show and polling goes on.
  function poll(fn, ms) {
    let busy = false;
    const tick = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try { await fn(); } catch (err) { showError(err); } finally { busy = false; }
    };
    tick();
    return setInterval(tick, ms);
  }

  // The job id of /job/{id} and /explore/{id}.
  const pathId = () => location.pathname.split("/").filter(Boolean)[1];

  document.addEventListener("DOMContentLoaded", () => fixLinks());
  return { token, withToken, api, getJSON, post, el, duration, number, showError, fixLinks, poll, pathId };
})();
