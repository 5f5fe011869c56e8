"""Experiment: do llama.cpp's logits depend on where a sequence sits in the KV cache?

The same prompt is greedy-decoded in sequence 0 of one context, once with a clean cache and once
after N cells of another sequence (random tokens, masked out for sequence 0) were filled in
front of it, for a range of N. If attention depended only on the sequence's own tokens, every
run would give bit-identical logprobs. Printed per N: the first generated token whose logprob
differs and the largest difference. Also run with flash attention forced off.

    python bench/experiment_kv_layout.py [--threads 2] [--tokens 30]
"""

from __future__ import annotations

import argparse

import llama_cpp
import numpy as np

from logprobe.engines._llama import ContextConfig, LlamaContext, LlamaModel
from logprobe.engines._logprobs import log_softmax
from logprobe.engines.llamacpp import default_model_path

PROMPT = "The three primary colours are"


def run(flash_attn: int | None, threads: int, n_tokens: int, offsets: list[int]) -> list[str]:
    original = llama_cpp.llama_context_default_params

    def params() -> llama_cpp.llama_context_params:
        p = original()
        if flash_attn is not None:
            p.flash_attn_type = flash_attn
        return p

    llama_cpp.llama_context_default_params = params
    try:
        model = LlamaModel(default_model_path())
        ctx = LlamaContext(model, ContextConfig(n_ctx=2048, n_batch=512, n_seq_max=8,
                                                n_threads=threads))
    finally:
        llama_cpp.llama_context_default_params = original
    ids = model.tokenize(PROMPT, add_bos=True, special=False)

    def generate() -> np.ndarray:
        n = len(ids)
        row = np.array(ctx.decode(ids, np.arange(n), [0] * n, [False] * (n - 1) + [True])[-1])
        out = []
        for k in range(n_tokens):
            tok = int(row.argmax())
            out.append(log_softmax(row)[tok])
            row = np.array(ctx.decode([tok], [n + k], [0], [True])[-1])
        return np.array(out)

    ctx.clear()
    clean = generate()
    lines = []
    for junk in offsets:
        ctx.clear()
        filler = list(np.random.RandomState(0).randint(100, 40000, junk))
        ctx.decode(filler, np.arange(junk), [5] * junk, [False] * (junk - 1) + [True])
        d = np.abs(generate() - clean)
        first = int(np.argmax(d > 0)) if d.max() > 0 else None
        lines.append(f"| {junk} | {first if first is not None else '-'} | {d.max():.4f} |")
    ctx.close()
    model.close()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=30)
    args = ap.parse_args()
    offsets = [*range(216, 262, 3), 300, 400]
    for name, fa in (("flash attention: llama.cpp default (auto)", None),
                     ("flash attention: off", 0)):
        print(f"\n{name}\n\n| cells in front | first differing token | max abs difference |")
        print("|---|---|---|")
        print("\n".join(run(fa, args.threads, args.tokens, offsets)))


if __name__ == "__main__":
    main()
