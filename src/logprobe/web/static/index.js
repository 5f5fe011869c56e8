/* Runs: list, filter, pick two to compare. */
"use strict";
(() => {
  const { el, api, href, fmt, table, errorBox, mount, truncate } = LP;
  const selected = [];
  const search = el("input", { type: "search", name: "search", placeholder: "name contains\u2026", value: LP.param("search") || "" });
  const model = el("input", { type: "search", name: "model", placeholder: "model contains\u2026", value: LP.param("model") || "" });
  const tag = el("input", { type: "search", name: "tag", placeholder: "tag", value: LP.param("tag") || "" });
  const compareBtn = el("button", { type: "button", class: "primary", id: "compare-selected", disabled: true, text: "Compare selected (0/2)" });
  const results = el("div", { id: "runs" });
  let timer = null;

  compareBtn.addEventListener("click", () => {
    if (selected.length === 2) location.href = href("compare.html", { a: selected[0], b: selected[1] });
  });

  function toggle(name, box) {
    const i = selected.indexOf(name);
    if (box.checked && i < 0) selected.push(name);
    if (!box.checked && i >= 0) selected.splice(i, 1);
    while (selected.length > 2) {
      const dropped = selected.shift();
      results.querySelectorAll("input[type=checkbox]").forEach((c) => { if (c.value === dropped) c.checked = false; });
    }
    compareBtn.disabled = selected.length !== 2;
    compareBtn.textContent = `Compare selected (${selected.length}/2)`;
  }

  async function load() {
    try {
      const data = await api("runs", { search: search.value, model: model.value, tag: tag.value });
      const cols = [
        { label: "", render: (r) => { const b = el("input", { type: "checkbox", value: r.name, checked: selected.includes(r.name), "aria-label": `select ${r.name}` }); b.addEventListener("change", () => toggle(r.name, b)); return b; } },
        { label: "run", render: (r) => el("a", { href: href("run.html", { name: r.name }), class: "run-link", text: r.name }) },
        { label: "model", render: (r) => truncate(r.model, 60) },
        { label: "responses", key: "n_responses", num: true },
        { label: "mean logprob", key: "mean_logprob", num: true, fmt: (v) => fmt(v, 3) },
        { label: "tags", render: (r) => (r.tags || []).join(", ") },
        { label: "created (UTC)", key: "created_at" },
      ];
      LP.fill(results,
        el("p", { class: "muted", text: `${data.runs.length} run(s)` }),
        data.runs.length ? table(cols, data.runs) :
          el("p", { class: "muted", text: "No runs yet: record some with `logprobe generate --run NAME` or `logprobe import FILE --run NAME`." }));
    } catch (err) {
      LP.fill(results, errorBox(err));
    }
  }

  for (const input of [search, model, tag]) {
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  }
  mount(el("h1", { text: "Runs" }),
    el("div", { class: "row card" },
      el("label", {}, "Name", search), el("label", {}, "Model", model), el("label", {}, "Tag", tag), compareBtn),
    results);
  load();
})();
