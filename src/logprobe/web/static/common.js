/* logprobe viewer: shared helpers. Data from the API only ever reaches the page through
   textContent, text nodes and setAttribute on attributes we choose: never innerHTML. */
"use strict";

const LP = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const BUCKETS = [
    [0.9, "#1a9850", "p \u2265 0.9"],
    [0.5, "#a6d96a", "0.5 \u2264 p < 0.9"],
    [0.2, "#fee08b", "0.2 \u2264 p < 0.5"],
    [0.05, "#fdae61", "0.05 \u2264 p < 0.2"],
    [0.0, "#d73027", "p < 0.05"],
  ];
  const UNKNOWN = "#bdbdbd";

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c)); // strings become text nodes
    }
    return node;
  }

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    return append(e, children);
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    }
    return append(e, children);
  }

  function href(page, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== "") q.set(k, v);
    }
    const s = q.toString();
    return s ? `${page}?${s}` : page;
  }

  /* A 401 means the session cookie is missing or expired: go to the login page, then back. */
  function toLogin() {
    location.assign(href("login", { next: location.pathname + location.search }));
  }

  async function api(path, params) {
    const url = new URL(href("api/" + path, params), document.baseURI);
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    if (r.status === 401) { toLogin(); throw new Error("log in first"); }
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (!r.ok) {
      const msg = (body && body.error && body.error.message) ||
        (body && Array.isArray(body.detail) && body.detail.map((d) => d.msg).join("; ")) ||
        `HTTP ${r.status}`;
      throw new Error(msg);
    }
    return body;
  }

  const param = (name) => new URLSearchParams(location.search).get(name);

  function fmt(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "\u2013";
    if (typeof x !== "number") return String(x);
    if (Math.abs(x) >= 1e5) return x.toExponential(2);
    return x.toFixed(digits);
  }

  function pct(p) {
    if (p === null || p === undefined) return "\u2013";
    if (p > 0 && p < 0.001) return "<0.1%";
    return `${(100 * p).toFixed(1)}%`;
  }

  function color(p) {
    if (p === null || p === undefined) return UNKNOWN;
    for (const [lo, c] of BUCKETS) if (p >= lo) return c;
    return BUCKETS[BUCKETS.length - 1][1];
  }

  function textColor(bg) {
    const n = parseInt(bg.slice(1), 16);
    const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
    return 0.299 * r + 0.587 * g + 0.114 * b < 140 ? "#fff" : "#111";
  }

  const show = (s) => JSON.stringify(s === null || s === undefined ? "" : s);

  function bytesHex(b) {
    if (!Array.isArray(b)) return "\u2013";
    return b.map((x) => x.toString(16).padStart(2, "0")).join(" ");
  }

  /* ---- tooltip with a token's details and alternatives ---- */
  let tip = null;
  let pinned = null;

  function tipEl() {
    if (!tip) {
      tip = el("div", { id: "lp-tip", class: "tip", role: "tooltip", hidden: true });
      document.body.append(tip);
      document.addEventListener("keydown", (e) => { if (e.key === "Escape") hideTip(true); });
      document.addEventListener("click", (e) => {
        if (pinned && !tip.contains(e.target) && !e.target.classList.contains("tok")) hideTip(true);
      });
    }
    return tip;
  }

  function tokenDetails(t) {
    const rows = [
      ["token", show(t.token)],
      ["probability", pct(t.prob)],
      ["logprob", fmt(t.logprob, 4)],
      ["rank", t.rank === null || t.rank === undefined ? "\u2013" : String(t.rank)],
      ["entropy", fmt(t.entropy, 3)],
      ["bytes", bytesHex(t.bytes)],
    ];
    if (t.critical) rows.push(["critical", t.critical]);
    const info = el("table", { class: "kv" },
      rows.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v }))));
    const alts = t.alternatives || [];
    const altTable = el("table", { class: "alts" },
      el("thead", {}, el("tr", {}, el("th", { text: "alternative" }), el("th", { text: "p" }),
        el("th", { text: "logprob" }))),
      el("tbody", {}, alts.map((a) => el("tr", { class: a.chosen ? "chosen" : null },
        el("td", { class: "mono", text: show(a.token) }),
        el("td", {}, el("span", { class: "bar" }, el("span", { class: "fill", style: null })),
          " ", pct(a.prob)),
        el("td", { text: fmt(a.logprob, 3) })))));
    altTable.querySelectorAll(".fill").forEach((f, i) => {
      f.style.width = `${Math.round(100 * (alts[i].prob || 0))}%`;
    });
    return [info, alts.length ? altTable : el("p", { class: "muted", text: "no alternatives stored" })];
  }

  function showTip(anchor, t, pin) {
    const box = tipEl();
    fill(box, tokenDetails(t));
    box.hidden = false;
    const r = anchor.getBoundingClientRect();
    const left = Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - box.offsetWidth - 8);
    box.style.left = `${Math.max(4, left)}px`;
    const below = r.bottom + 6 + box.offsetHeight <= document.documentElement.clientHeight;
    const top = below || r.top - 6 - box.offsetHeight < 0 ? r.bottom + 6 : r.top - 6 - box.offsetHeight;
    box.style.top = `${window.scrollY + top}px`;
    if (pin) pinned = anchor;
  }

  function hideTip(force) {
    if (tip && (force || !pinned)) { tip.hidden = true; pinned = null; }
  }

  /* ---- token heatmap (event delegation: one listener per container) ---- */
  function heatmap(tokens, opts = {}) {
    const box = el("div", { class: "heatmap" });
    const byIndex = new Map();
    const flagged = opts.flagged || null; // Map index -> "low" | critical kind
    const addToken = (t) => {
      byIndex.set(String(t.index), t);
      const shown = t.text === "" || t.text === undefined ? "\u00b7" : t.text;
      const s = el("span", { class: "tok", tabindex: "0", "data-index": t.index });
      s.textContent = shown;
      if (t.text === "") s.classList.add("empty");
      const bg = t.color || color(t.prob);
      s.style.backgroundColor = bg;
      s.style.color = textColor(bg);
      const flag = flagged ? flagged.get(t.index) : (t.critical || (t.low_span ? "low" : null));
      if (flag) {
        s.classList.add(flag === "low" ? "low" : "crit");
        s.setAttribute("data-flag", flag);
      }
      if (opts.decorate) opts.decorate(s, t);
      box.append(s);
      return s;
    };
    tokens.forEach(addToken);
    box.addToken = addToken;
    const find = (e) => {
      const s = e.target.closest ? e.target.closest(".tok") : null;
      return s && box.contains(s) ? [s, byIndex.get(s.getAttribute("data-index"))] : [null, null];
    };
    box.addEventListener("mouseover", (e) => { const [s, t] = find(e); if (s && !pinned) showTip(s, t, false); });
    box.addEventListener("mouseout", (e) => { const [s] = find(e); if (s) hideTip(false); });
    box.addEventListener("focusin", (e) => { const [s, t] = find(e); if (s) showTip(s, t, false); });
    box.addEventListener("click", (e) => { const [s, t] = find(e); if (s) { pinned = null; showTip(s, t, true); } });
    return box;
  }

  /* Token index -> "low" | critical kind, from an analysis (decision) dict's spans. */
  function flagsFrom(analysis) {
    if (!analysis) return null;
    const m = new Map();
    for (const s of analysis.low_spans || []) for (let i = s.token_start; i < s.token_end; i++) m.set(i, "low");
    for (const s of analysis.critical || []) for (let i = s.token_start; i < s.token_end; i++) m.set(i, s.kind);
    return m;
  }

  function markFlags(box, flags) {
    box.querySelectorAll(".tok").forEach((s) => {
      const flag = flags.get(Number(s.getAttribute("data-index")));
      s.classList.toggle("low", flag === "low");
      s.classList.toggle("crit", Boolean(flag) && flag !== "low");
      if (flag) s.setAttribute("data-flag", flag); else s.removeAttribute("data-flag");
    });
  }

  function legend() {
    return el("div", { class: "legend" }, BUCKETS.map(([, c, label]) =>
      el("span", { class: "swatch-item" }, el("span", { class: "swatch", "data-color": c }), label)),
      el("span", { class: "swatch-item" }, el("span", { class: "swatch", "data-color": UNKNOWN }), "no logprob"),
      el("span", { class: "swatch-item" }, el("span", { class: "tok low sample", text: "low" }), "low-confidence span"),
      el("span", { class: "swatch-item" }, el("span", { class: "tok crit sample", text: "crit" }), "critical token"));
  }

  function paintSwatches(root) {
    root.querySelectorAll(".swatch[data-color]").forEach((s) => { s.style.backgroundColor = s.getAttribute("data-color"); });
  }

  function table(columns, rows, opts = {}) {
    const head = el("tr", {}, columns.map((c) => el("th", { text: c.label, class: c.num ? "num" : null })));
    const body = rows.map((row) => {
      const tr = el("tr", {}, columns.map((c) => {
        const v = c.render ? c.render(row) : row[c.key];
        return el("td", { class: c.num ? "num" : c.cls || null }, v instanceof Node ? v : (c.fmt ? c.fmt(v) : v === null || v === undefined ? "\u2013" : String(v)));
      }));
      if (opts.onRow) { tr.classList.add("clickable"); tr.addEventListener("click", (e) => opts.onRow(row, tr, e)); }
      return tr;
    });
    return el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, body));
  }

  function pager(total, offset, limit, onPage) {
    const last = Math.max(0, Math.ceil(total / limit) - 1);
    const page = Math.floor(offset / limit);
    const go = (p) => onPage(Math.min(last, Math.max(0, p)) * limit);
    const input = el("input", { type: "number", min: 1, max: last + 1, value: page + 1, class: "pageno", "aria-label": "page" });
    input.addEventListener("change", () => go(Number(input.value) - 1));
    return el("div", { class: "pager" },
      el("button", { type: "button", disabled: page <= 0, onclick: () => go(page - 1), text: "\u2190 prev" }),
      el("span", {}, `${total ? offset + 1 : 0}\u2013${Math.min(total, offset + limit)} of ${total} \u00b7 page `),
      input, el("span", {}, ` of ${last + 1}`),
      el("button", { type: "button", disabled: page >= last, onclick: () => go(page + 1), text: "next \u2192" }));
  }

  function errorBox(err) {
    return el("div", { class: "error", role: "alert", text: `error: ${err && err.message ? err.message : err}` });
  }

  function decisionBadge(d) {
    if (!d) return el("span", { class: "badge none", text: "no decision" });
    return el("span", { class: `badge ${d.decision}`, text: d.decision });
  }

  function truncate(s, n = 120) {
    s = s === null || s === undefined ? "" : String(s);
    return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
  }

  async function runNames() {
    const data = await api("runs");
    return data.runs.map((r) => r.name);
  }

  function select(name, options, value, label) {
    const s = el("select", { name, "aria-label": label || name },
      options.map((o) => el("option", { value: o, text: o, selected: o === value })));
    return s;
  }

  /* Replace a node's children; null/false entries are skipped (replaceChildren would print "null"). */
  function fill(node, ...children) {
    node.replaceChildren();
    append(node, children);
    paintSwatches(node);
    return node;
  }

  function mount(...children) {
    return fill(document.getElementById("app"), ...children);
  }

  /* POST JSON to a viewer write endpoint with the session's CSRF token. */
  async function post(path, body, signal) {
    const session = await api("session");
    const r = await fetch(new URL("api/" + path, document.baseURI), {
      method: "POST", signal,
      headers: { "Content-Type": "application/json", Accept: "text/event-stream, application/json",
        "X-CSRF-Token": session.csrf },
      body: JSON.stringify(body),
    });
    if (r.status === 401) { toLogin(); throw new Error("log in first"); }
    return r;
  }

  return { el, fill, post, toLogin, flagsFrom, markFlags, svg, href, api, param, fmt, pct, color, textColor, show, heatmap, legend, paintSwatches,
    table, pager, errorBox, decisionBadge, truncate, runNames, select, mount, showTip, hideTip, BUCKETS };
})();
