/* One run: metadata, artifacts, responses (paginated). */
"use strict";
(() => {
  const { el, api, href, fmt, table, pager, errorBox, mount, truncate, param } = LP;
  const name = param("name");
  const LIMIT = 50;
  const list = el("div", { id: "responses" });

  function stat(k, v) { return el("div", { class: "stat" }, el("span", { class: "k", text: k }), el("span", { class: "v", text: v })); }

  async function loadResponses(offset) {
    try {
      const data = await api("run/responses", { name, offset, limit: LIMIT });
      const cols = [
        { label: "id", render: (r) => el("a", { href: href("response.html", { id: r.id }), class: "response-link", text: `#${r.id}` }) },
        { label: "prompt", render: (r) => truncate(r.prompt, 90) },
        { label: "response", render: (r) => truncate(r.text, 90) },
        { label: "tokens", key: "n_tokens", num: true },
        { label: "mean logprob", key: "mean_logprob", num: true, fmt: (v) => fmt(v, 3) },
        { label: "min logprob", key: "min_logprob", num: true, fmt: (v) => fmt(v, 3) },
        { label: "perplexity", key: "perplexity", num: true, fmt: (v) => fmt(v, 2) },
        { label: "low-conf.", key: "n_low_confidence", num: true },
        { label: "correct", render: (r) => (r.correct === null ? "\u2013" : r.correct ? "yes" : "no") },
      ];
      LP.fill(list, pager(data.total, data.offset, LIMIT, loadResponses), table(cols, data.responses));
    } catch (err) {
      LP.fill(list, errorBox(err));
    }
  }

  async function load() {
    if (!name) { mount(errorBox("no run given: open a run from the runs list")); return; }
    try {
      const data = await api("run", { name });
      const r = data.run;
      const others = (await LP.runNames()).filter((n) => n !== r.name);
      const other = LP.select("other", others, others[0], "run to compare with");
      const go = el("button", { type: "button", text: "Compare", disabled: !others.length,
        onclick: () => { location.href = href("compare.html", { a: r.name, b: other.value }); } });
      mount(
        el("h1", { text: `Run ${r.name}` }),
        el("div", { class: "card stats" }, stat("model", r.model || "\u2013"), stat("version", r.model_version || "\u2013"),
          stat("responses", String(r.n_responses)), stat("mean logprob", fmt(r.mean_logprob, 3)),
          stat("tags", (r.tags || []).join(", ") || "\u2013"), stat("created (UTC)", r.created_at)),
        el("div", { class: "row" },
          el("a", { href: href("calibration.html", { run: r.name }), text: "Calibration of this run \u2192" }),
          el("span", {}, "Compare with ", other, " ", go)),
        r.prompt_template ? [el("h2", { text: "Prompt template" }), el("pre", { text: r.prompt_template })] : null,
        el("h2", { text: "Parameters" }), el("pre", { text: JSON.stringify(r.params, null, 2) }),
        data.artifacts.length ? [el("h2", { text: "Artifacts" }), table([
          { label: "name", key: "name" }, { label: "type", key: "media_type" }, { label: "bytes", key: "size", num: true }], data.artifacts)] : null,
        el("h2", { text: "Responses" }), list);
      loadResponses(0);
    } catch (err) {
      mount(el("h1", { text: "Run" }), errorBox(err));
    }
  }
  load();
})();
