/* Two runs side by side, aligned by prompt; regressions (B less confident than A) first. */
"use strict";
(() => {
  const { el, api, href, fmt, pct, table, errorBox, mount, param, heatmap, legend, truncate } = LP;
  const DETAIL_TOKENS = 2000;
  const DROP = -0.1; // logprob drop that outlines a token in red
  const result = el("div", { id: "comparison" });
  const detail = el("div", { id: "detail" });

  function stat(k, v) { return el("div", { class: "stat" }, el("span", { class: "k", text: k }), el("span", { class: "v", text: v })); }

  function decorate(byPos) {
    return (span, t) => {
      const d = byPos.get(t.index);
      if (!d) return;
      if (d.status !== "same") span.classList.add("changed");
      else if (d.delta !== null && d.delta < DROP) span.classList.add("delta-down");
      else if (d.delta !== null && d.delta > -DROP) span.classList.add("delta-up");
      if (d.delta !== null) span.setAttribute("data-delta", d.delta.toFixed(4));
    };
  }

  async function showDetail(row, names) {
    LP.fill(detail, el("p", { class: "muted", text: "Loading tokens\u2026" }));
    try {
      const [ta, tb, al] = await Promise.all([
        api(`responses/${row.response_a}/tokens`, { limit: DETAIL_TOKENS }),
        api(`responses/${row.response_b}/tokens`, { limit: DETAIL_TOKENS }),
        api("compare/tokens", { a: row.response_a, b: row.response_b })]);
      const posA = new Map(); const posB = new Map();
      for (const p of al.pairs) {
        if (p.position_a !== null) posA.set(p.position_a, p);
        if (p.position_b !== null) posB.set(p.position_b, p);
      }
      const drops = al.pairs.filter((p) => p.status === "same" && p.delta !== null)
        .sort((x, y) => x.delta - y.delta).slice(0, 15);
      const side = (label, name, data, pos, s, respId) => el("div", { class: `side side-${s}` },
        el("h2", {}, `${label}: `, el("a", { href: href("response.html", { id: respId }), text: name })),
        data.total > data.tokens.length ? el("p", { class: "muted", text: `first ${data.tokens.length} of ${data.total} tokens` }) : null,
        heatmap(data.tokens, { decorate: decorate(pos) }));
      LP.fill(detail,
        el("h2", { text: "Prompt" }), el("pre", { text: row.prompt }),
        legend(),
        el("p", { class: "muted", text: "Outlined red: B is less confident than A at this token; green: more confident; struck through: not in the other response." }),
        el("div", { class: "cols" }, side("A", names.a, ta, posA, "a", row.response_a), side("B", names.b, tb, posB, "b", row.response_b)),
        el("h2", { text: "Largest per-token drops (B vs A)" }),
        drops.length ? table([
          { label: "token", render: (p) => el("span", { class: "mono", text: LP.show(p.token_a) }) },
          { label: "pos A", key: "position_a", num: true }, { label: "pos B", key: "position_b", num: true },
          { label: "p A", render: (p) => pct(Math.exp(p.logprob_a)), num: true },
          { label: "p B", render: (p) => pct(Math.exp(p.logprob_b)), num: true },
          { label: "\u0394 logprob", key: "delta", num: true, fmt: (v) => fmt(v, 3) }], drops) :
          el("p", { class: "muted", text: "no aligned tokens" }));
      LP.paintSwatches(detail);
      detail.scrollIntoView({ block: "start" });
    } catch (err) {
      LP.fill(detail, errorBox(err));
    }
  }

  async function compare(a, b) {
    LP.fill(result, el("p", { class: "muted", text: "Comparing\u2026" }));
    LP.fill(detail);
    try {
      const c = await api("compare", { a, b, tokens: 3 });
      const cols = [
        { label: "status", render: (r) => el("span", { class: `status-${r.status}`, text: r.status }) },
        { label: "\u0394 mean logprob (B\u2212A)", key: "delta_mean_logprob", num: true, fmt: (v) => fmt(v, 3) },
        { label: "A mean", key: "mean_logprob_a", num: true, fmt: (v) => fmt(v, 3) },
        { label: "B mean", key: "mean_logprob_b", num: true, fmt: (v) => fmt(v, 3) },
        { label: "prompt", render: (r) => truncate(r.prompt, 70) },
        { label: "A response", render: (r) => truncate(r.text_a, 60) },
        { label: "B response", render: (r) => truncate(r.text_b, 60) },
        { label: "worst token", render: (r) => r.tokens.length && r.tokens[0].delta !== null ? `${LP.show(r.tokens[0].token_a)} ${fmt(r.tokens[0].delta, 2)}` : "\u2013" },
      ];
      const names = { a: c.run_a, b: c.run_b };
      LP.fill(result,
        el("div", { class: "card stats" }, stat("A", c.run_a), stat("B", c.run_b), stat("common prompts", String(c.n_common)),
          stat("regressed", String(c.n_regressed)), stat("improved", String(c.n_improved)),
          stat("mean \u0394", fmt(c.mean_delta_mean_logprob, 3)), stat("only in A", String(c.only_a)), stat("only in B", String(c.only_b))),
        c.rows.length ? table(cols, c.rows, { onRow: (row, tr) => {
          result.querySelectorAll("tr.selected").forEach((x) => x.classList.remove("selected"));
          tr.classList.add("selected");
          showDetail(row, names);
        } }) : el("p", { class: "muted", text: "The runs share no prompt." }),
        c.prompts_only_a.length ? [el("h2", { text: `Prompts only in ${c.run_a}` }), el("ul", {}, c.prompts_only_a.slice(0, 50).map((p) => el("li", { text: truncate(p, 120) })))] : null,
        c.prompts_only_b.length ? [el("h2", { text: `Prompts only in ${c.run_b}` }), el("ul", {}, c.prompts_only_b.slice(0, 50).map((p) => el("li", { text: truncate(p, 120) })))] : null);
    } catch (err) {
      LP.fill(result, errorBox(err));
    }
  }

  async function init() {
    let names = [];
    try { names = await LP.runNames(); } catch (err) { mount(el("h1", { text: "Compare runs" }), errorBox(err)); return; }
    const a = param("a") || names[1] || names[0];
    const b = param("b") || names[0];
    const selA = LP.select("a", names, a, "run A (baseline)");
    const selB = LP.select("b", names, b, "run B (candidate)");
    const go = el("button", { type: "button", class: "primary", text: "Compare", onclick: () => {
      history.replaceState(null, "", href("compare.html", { a: selA.value, b: selB.value }));
      compare(selA.value, selB.value);
    } });
    mount(el("h1", { text: "Compare runs" }),
      el("div", { class: "row card" }, el("label", {}, "A (baseline)", selA), el("label", {}, "B (candidate)", selB), go),
      result, detail);
    if (names.length && a && b) compare(a, b);
    else if (!names.length) LP.fill(result, el("p", { class: "muted", text: "No runs to compare yet." }));
  }
  init();
})();
