/* Playground: send a prompt to the engine (POST with the session's CSRF token) and watch the
   heatmap grow (Server-Sent Events read from the response body). */
"use strict";
(() => {
  const { el, api, href, errorBox, mount, heatmap, legend, decisionBadge } = LP;
  let source = null;

  async function init() {
    let info;
    try { info = await api("playground"); } catch (err) { mount(errorBox(err)); return; }
    if (!info.available) {
      mount(el("h1", { text: "Playground" }), errorBox("this viewer was started without an engine (logprobe ui --no-playground)"));
      return;
    }
    const prompt = el("textarea", { name: "prompt", "aria-label": "prompt", text: "The capital of France is" });
    const maxTokens = el("input", { type: "number", name: "max_tokens", min: 1, max: info.max_tokens, value: 48 });
    const temperature = el("input", { type: "number", name: "temperature", min: 0, max: 2, step: 0.1, value: 0 });
    const topLogprobs = el("input", { type: "number", name: "top_logprobs", min: 0, max: 20, value: 5 });
    const chat = el("input", { type: "checkbox", name: "chat" });
    const run = el("input", { type: "text", name: "run", placeholder: "(not saved)" });
    const start = el("button", { type: "button", class: "primary", id: "generate", text: "Generate" });
    const stop = el("button", { type: "button", id: "stop", text: "Stop", disabled: true });
    const status = el("span", { class: "live-status", id: "live-status" });
    const out = el("div", { id: "live" });

    function finish(text) {
      if (source) { source.abort(); source = null; }
      start.disabled = false; stop.disabled = true;
      status.textContent = text;
    }

    /* Read a text/event-stream body with fetch (unlike EventSource, it shows HTTP errors). */
    async function readEvents(response, on) {
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = "message"; const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          }
          if (on[event]) on[event](JSON.parse(data.join("\n")));
        }
      }
    }

    start.addEventListener("click", async () => {
      finish("");
      const map = heatmap([], { flagged: new Map() }); // spans are marked once the answer is complete
      map.id = "live-heatmap";
      const verdict = el("div", { id: "live-decision" });
      LP.fill(out, legend(), map, verdict);
      LP.paintSwatches(out);
      const body = {
        prompt: prompt.value, max_tokens: Number(maxTokens.value), temperature: Number(temperature.value),
        top_logprobs: Number(topLogprobs.value), chat: chat.checked, run: run.value.trim() || null,
      };
      let n = 0;
      const controller = new AbortController();
      source = controller;
      start.disabled = true; stop.disabled = false;
      status.textContent = "loading model / generating\u2026";
      try {
        const r = await LP.post("playground/generate", body, controller.signal);
        if (!r.ok) {
          let msg = `HTTP ${r.status}`;
          try { const b = await r.json(); msg = (b.error && b.error.message) || (b.detail && b.detail.map((d) => d.msg).join("; ")) || msg; } catch (_) { /* keep */ }
          throw new Error(msg);
        }
        await readEvents(r, {
          token: (t) => { map.addToken(t); n += 1; status.textContent = `${n} token(s)\u2026`; },
          done: (d) => {
            if (d.decision) LP.markFlags(map, LP.flagsFrom(d.decision));
            LP.fill(verdict, el("p", {}, "Review decision: ", decisionBadge(d.decision),
              d.response_id ? [" \u00b7 saved as ", el("a", { href: href("response.html", { id: d.response_id }), text: `response #${d.response_id}` })] : null));
            status.textContent = `done: ${d.n_tokens} token(s), finish reason ${d.finish_reason || "\u2013"}`;
          },
          error: (d) => { out.append(errorBox(d.message)); },
        });
        if (source === controller) { source = null; start.disabled = false; stop.disabled = true; }
      } catch (err) {
        if (err.name === "AbortError") return;
        out.append(errorBox(err));
        finish("stopped");
      }
    });
    stop.addEventListener("click", () => finish("stopped by you"));

    mount(el("h1", { text: "Playground" }),
      el("p", { class: "muted", text: `Model: ${info.model || "loaded on first use"}. Tokens stream in as the engine produces them, coloured by probability.` }),
      el("div", { class: "card" }, el("label", {}, "Prompt", prompt),
        el("div", { class: "row" }, el("label", {}, "max tokens", maxTokens), el("label", {}, "temperature", temperature),
          el("label", {}, "top logprobs", topLogprobs), el("label", {}, "chat template", chat),
          el("label", {}, "save to run", run), start, stop, status)),
      out);
  }
  init();
})();
