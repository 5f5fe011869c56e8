/* One response: metrics, review decision, flagged spans, prompt, token heatmap (paginated). */
"use strict";
(() => {
  const { el, api, href, fmt, pct, errorBox, mount, param, heatmap, legend, pager, decisionBadge, truncate } = LP;
  const id = param("id");
  const PAGE = 1000;
  const tokensBox = el("div", { id: "tokens" });
  const promptBox = el("div", { id: "prompt-tokens" });
  let flagged = null;

  function stat(k, v) { return el("div", { class: "stat" }, el("span", { class: "k", text: k }), el("span", { class: "v", text: v })); }

  async function loadTokens(offset, focus) {
    try {
      const data = await api(`responses/${id}/tokens`, { offset, limit: PAGE });
      const map = heatmap(data.tokens, { flagged });
      LP.fill(tokensBox, pager(data.total, data.offset, PAGE, (o) => loadTokens(o)), map);
      if (focus !== undefined) {
        const t = map.querySelector(`[data-index="${Number(focus)}"]`);
        if (t) { t.scrollIntoView({ block: "center" }); t.focus(); }
      }
    } catch (err) {
      LP.fill(tokensBox, errorBox(err));
    }
  }

  async function loadPromptTokens(offset) {
    try {
      const data = await api(`responses/${id}/tokens`, { offset, limit: PAGE, part: "prompt" });
      LP.fill(promptBox, pager(data.total, data.offset, PAGE, loadPromptTokens), heatmap(data.tokens));
    } catch (err) {
      LP.fill(promptBox, errorBox(err));
    }
  }

  function jump(tokenIndex) { loadTokens(Math.floor(tokenIndex / PAGE) * PAGE, tokenIndex); }

  function spanList(title, spans) {
    if (!spans || !spans.length) return null;
    return [el("h2", { text: title }), el("ul", { class: "spans" }, spans.map((s) =>
      el("li", {}, el("a", { role: "button", tabindex: "0", onclick: () => jump(s.token_start), text: LP.show(truncate(s.text, 80)) }),
        ` \u2014 ${s.kind}, tokens ${s.token_start}\u2013${s.token_end - 1}, p ${pct(s.prob)}, min p ${pct(s.min_prob)}`)))];
  }

  function decisionCard(analysis, note) {
    if (!analysis) return el("div", { class: "card" }, decisionBadge(null), " ", el("span", { class: "muted", text: note || "" }));
    return el("div", { class: "card", id: "decision" },
      el("div", {}, "Review decision: ", decisionBadge(analysis), el("span", { class: "muted", text: ` policy ${analysis.policy}` })),
      analysis.reasons && analysis.reasons.length ? el("ul", { class: "reasons" }, analysis.reasons.map((r) => el("li", { text: r.message }))) :
        el("p", { class: "muted", text: "no rule fired" }));
  }

  function promptView(r) {
    if (Array.isArray(r.messages)) {
      return r.messages.map((m) => el("div", {}, el("strong", { text: `${m.role || "user"}: ` }),
        el("pre", { text: typeof m.content === "string" ? m.content : JSON.stringify(m.content) })));
    }
    return el("pre", { id: "prompt-text", text: r.prompt });
  }

  async function load() {
    if (!id || !/^\d+$/.test(id)) { mount(errorBox("no response id given")); return; }
    try {
      const data = await api(`responses/${id}`);
      const r = data.response;
      const a = data.analysis;
      flagged = LP.flagsFrom(a);
      mount(
        el("p", {}, el("a", { href: href("run.html", { name: r.run }), text: `\u2190 run ${r.run}` })),
        el("h1", { text: `Response #${r.id}` }),
        el("div", { class: "card stats" },
          stat("model", r.model || "\u2013"), stat("provider", r.provider), stat("finish", r.finish_reason || "\u2013"),
          stat("tokens", String(r.n_tokens)), stat("mean logprob", fmt(r.mean_logprob, 3)),
          stat("min logprob", fmt(r.min_logprob, 3)), stat("perplexity", fmt(r.perplexity, 2)),
          stat("mean entropy", fmt(r.mean_entropy, 3)), stat("p < 0.5 tokens", String(r.n_low_confidence)),
          stat("confidence", pct(r.confidence)),
          stat("correct", r.correct === null ? "\u2013" : r.correct ? "yes" : "no"), stat("mode", r.logprob_mode)),
        decisionCard(a, data.note),
        a ? spanList("Low-confidence spans", a.low_spans) : null,
        a ? spanList("Critical spans", a.critical) : null,
        el("h2", { text: "Prompt" }), promptView(r),
        r.has_prompt_tokens ? [el("button", { type: "button", text: "Show prompt token logprobs", onclick: (e) => { e.target.remove(); loadPromptTokens(0); } }), promptBox] : null,
        el("h2", { text: "Response tokens" }),
        el("p", { class: "muted", text: "Hover or focus a token for its probability and alternatives; click to pin." }),
        legend(), tokensBox);
      loadTokens(0);
    } catch (err) {
      mount(el("h1", { text: "Response" }), errorBox(err));
    }
  }
  load();
})();
