/* Calibration of a run: reliability diagram and risk-coverage curve (SVG, drawn here). */
"use strict";
(() => {
  const { el, svg, api, href, fmt, errorBox, mount, param } = LP;
  const W = 440, H = 380, M = { l: 48, r: 14, t: 30, b: 72 };
  const STRIP = 24; // height of the count histogram under the x axis
  const out = el("div", { id: "calibration" });

  const sx = (x) => M.l + x * (W - M.l - M.r);
  const sy = (y, top = 1) => H - M.b - (y / top) * (H - M.t - M.b);

  function axes(title, xLabel, yLabel, top = 1) {
    const g = [svg("text", { x: M.l, y: 18, class: "title", text: title }),
      svg("line", { x1: M.l, y1: H - M.b, x2: W - M.r, y2: H - M.b, class: "axis" }),
      svg("line", { x1: M.l, y1: M.t, x2: M.l, y2: H - M.b, class: "axis" }),
      svg("text", { x: (M.l + W - M.r) / 2, y: H - M.b + 30, "text-anchor": "middle", text: xLabel }),
      svg("text", { x: 12, y: (M.t + H - M.b) / 2, transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})`, "text-anchor": "middle", text: yLabel })];
    for (let i = 0; i <= 5; i++) {
      const v = i / 5;
      g.push(svg("text", { x: sx(v), y: H - M.b + 15, "text-anchor": "middle", text: v.toFixed(1) }));
      g.push(svg("text", { x: M.l - 6, y: sy(v * top, top) + 4, "text-anchor": "end", text: (v * top).toFixed(2) }));
    }
    return g;
  }

  function reliability(rel) {
    const maxCount = Math.max(1, ...rel.bins.map((b) => b.count));
    const parts = axes(`Reliability (ECE ${fmt(rel.ece, 3)})`, "confidence", "accuracy");
    parts.push(svg("line", { x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1), class: "diag" }));
    parts.push(svg("text", { x: M.l - 6, y: H - 10, "text-anchor": "end", text: "n" }));
    for (const b of rel.bins) {
      const x = sx(b.lower) + 1, w = Math.max(1, sx(b.upper) - sx(b.lower) - 2);
      const h = STRIP * (b.count / maxCount);
      parts.push(svg("rect", { x, y: H - 8 - h, width: w, height: h, class: "count" },
        svg("title", { text: `${b.count} predictions` })));
      if (b.accuracy === null) continue;
      parts.push(svg("rect", { x, y: sy(b.accuracy), width: w, height: sy(0) - sy(b.accuracy), class: "barrect", "data-bin": b.lower },
        svg("title", { text: `confidence ${fmt(b.lower, 2)}\u2013${fmt(b.upper, 2)}: accuracy ${fmt(b.accuracy, 3)}, mean confidence ${fmt(b.confidence, 3)}, n=${b.count}` })));
      const lo = Math.min(b.accuracy, b.confidence), hi = Math.max(b.accuracy, b.confidence);
      parts.push(svg("rect", { x, y: sy(hi), width: w, height: Math.max(0.5, sy(lo) - sy(hi)), class: "gaprect" }));
    }
    return svg("svg", { class: "chart", id: "reliability", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "reliability diagram" }, parts);
  }

  function riskCoverage(rc) {
    const top = Math.max(0.05, ...rc.risk, rc.error_rate) * 1.1;
    const parts = axes(`Risk\u2013coverage (AURC ${fmt(rc.aurc, 3)})`, "coverage", "risk (error rate)", top);
    const pts = rc.coverage.map((c, i) => `${sx(c).toFixed(1)},${sy(rc.risk[i], top).toFixed(1)}`).join(" ");
    const e = rc.error_rate;
    const oracle = [];
    for (let i = 1; i <= 50; i++) { const c = i / 50; oracle.push(`${sx(c).toFixed(1)},${sy(Math.max(0, c - (1 - e)) / c, top).toFixed(1)}`); }
    parts.push(svg("line", { x1: sx(0), y1: sy(e, top), x2: sx(1), y2: sy(e, top), class: "random" }, svg("title", { text: `random: ${fmt(e, 3)}` })));
    parts.push(svg("polyline", { points: oracle.join(" "), class: "oracle" }, svg("title", { text: "oracle" })));
    parts.push(svg("polyline", { points: pts, class: "curve" }, svg("title", { text: "this run" })));
    return svg("svg", { class: "chart", id: "risk-coverage", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "risk-coverage curve" }, parts);
  }

  function stat(k, v) { return el("div", { class: "stat" }, el("span", { class: "k", text: k }), el("span", { class: "v", text: v })); }

  async function load(run, source, confidence, bins) {
    LP.fill(out, el("p", { class: "muted", text: "Loading\u2026" }));
    try {
      const d = await api("run/calibration", { name: run, source, confidence, n_bins: bins });
      const rel = d.reliability, rc = d.risk_coverage;
      LP.fill(out,
        el("div", { class: "card stats" }, stat("run", d.run), stat("source", d.source), stat("confidence", d.confidence),
          stat("n", String(d.n)), stat("ECE", fmt(rel.ece, 4)), stat("MCE", fmt(rel.mce, 4)), stat("AURC", fmt(rc.aurc, 4)),
          stat("oracle AURC", fmt(rc.oracle_aurc, 4)), stat("error rate", fmt(rc.error_rate, 4))),
        el("div", { class: "row" }, reliability(rel), riskCoverage(rc)),
        el("p", { class: "muted", text: "Reliability: blue bars are the accuracy of each confidence bin, red bands the gap to its mean confidence, grey bars the number of predictions; the dashed diagonal is perfect calibration. Risk\u2013coverage: error rate among the most confident predictions kept (blue), against an oracle (green dashes) and random ordering (red dots)." }),
        d.notes.length ? el("ul", {}, d.notes.map((n) => el("li", { class: "muted", text: n }))) : null);
    } catch (err) {
      LP.fill(out, errorBox(err));
    }
  }

  async function init() {
    let names = [];
    try { names = await LP.runNames(); } catch (err) { mount(errorBox(err)); return; }
    const run = LP.select("run", names, param("run") || names[0], "run");
    const source = LP.select("source", ["auto", "artifact", "responses"], param("source") || "auto", "data source");
    const conf = LP.select("confidence", ["mean", "sequence", "min"], param("confidence") || "mean", "confidence");
    const bins = el("input", { type: "number", name: "bins", min: 1, max: 100, value: param("bins") || 10 });
    const go = () => {
      history.replaceState(null, "", href("calibration.html", { run: run.value, source: source.value, confidence: conf.value, bins: bins.value }));
      load(run.value, source.value, conf.value, bins.value);
    };
    for (const c of [run, source, conf, bins]) c.addEventListener("change", go);
    mount(el("h1", { text: "Calibration" }),
      el("p", { class: "muted", text: "From the run's predictions.jsonl artifact (logprobe runs attach RUN FILE), or from its responses labelled correct, with confidence exp(mean logprob), exp(sum logprob) or exp(min logprob)." }),
      el("div", { class: "row card" }, el("label", {}, "Run", run), el("label", {}, "Source", source),
        el("label", {}, "Confidence (responses)", conf), el("label", {}, "Bins", bins)),
      out);
    if (names.length) go(); else LP.fill(out, el("p", { class: "muted", text: "No runs yet." }));
  }
  init();
})();
