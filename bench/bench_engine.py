"""Embedded engine vs plain llama.cpp and llama-cpp-python, measured in one run.

Paths (same GGUF, same thread count, greedy, interleaved repetitions, medians reported):

  decode
    plain      llama.cpp low-level loop, no logprobs: llama_decode + llama.cpp's greedy sampler
    logprobe   LlamaEngine.complete(top_logprobs=20): logprob, rank, entropy and 20 alternatives
    lcp        llama_cpp.Llama(logits_all=True).create_completion(logprobs=20)
    lcp_chat   llama_cpp.Llama(logits_all=True).create_chat_completion(logprobs=True,
               top_logprobs=20)
  scoring (teacher forcing of a ~700-token text)
    prefill    llama.cpp low-level prefill, logits of the last position only (no logprobs)
    logprobe   LlamaEngine.score(text)   (every token's logprob, rank and entropy)
    lcp_echo   llama_cpp.Llama(logits_all=True).create_completion(echo=True, logprobs=1,
               max_tokens=1)

Also: model load time of LlamaEngine (a later load, after its vocabulary cache exists) and the
process's peak resident memory. Usage:

    python bench/bench_engine.py [--threads 2] [--reps 5] [--tokens 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import llama_cpp
import numpy as np

from logprobe.engines import GenerationParams
from logprobe.engines.llamacpp import LlamaEngine, default_model_path
from logprobe.engines.portability import reference_llama

PROMPT = "Once upon a time, in a small village by the sea, there lived"
SCORE_TEXT = (
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined movable metal type, oil-based inks and a screw press adapted from "
    "wine making. Books had been copied by hand for centuries, slowly and at great cost. "
) * 6


def plain_decode(model: Any, vocab: Any, threads: int, n_tokens: int) -> tuple[int, float]:
    """Greedy decode with llama.cpp's own sampler: the speed of llama.cpp without logprobs."""
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_threads, cp.n_threads_batch = 2048, 512, threads, threads
    ctx = llama_cpp.llama_init_from_model(model, cp)
    smpl = llama_cpp.llama_sampler_init_greedy()
    ids = _tokenize(vocab, PROMPT)
    t0 = time.perf_counter()
    arr = (llama_cpp.llama_token * len(ids))(*ids)
    llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(arr, len(ids)))
    n = 0
    one = (llama_cpp.llama_token * 1)()
    for _ in range(n_tokens):
        tok = llama_cpp.llama_sampler_sample(smpl, ctx, -1)
        n += 1
        one[0] = tok
        llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(one, 1))
    dt = time.perf_counter() - t0
    llama_cpp.llama_sampler_free(smpl)
    llama_cpp.llama_free(ctx)
    return n, dt


def plain_prefill(model: Any, vocab: Any, threads: int, text: str) -> tuple[int, float]:
    """Prefill only (logits of the last position), chunked like the engine: raw llama.cpp speed."""
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = 2048, 512, 512
    cp.n_threads, cp.n_threads_batch = threads, threads
    ctx = llama_cpp.llama_init_from_model(model, cp)
    ids = _tokenize(vocab, text)
    t0 = time.perf_counter()
    for a in range(0, len(ids), 512):
        chunk = ids[a : a + 512]
        arr = (llama_cpp.llama_token * len(chunk))(*chunk)
        llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(arr, len(chunk)))
    dt = time.perf_counter() - t0
    llama_cpp.llama_free(ctx)
    return len(ids), dt


def _tokenize(vocab: Any, text: str) -> list[int]:
    data = text.encode()
    arr = (ctypes.c_int32 * (len(data) + 8))()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), arr, len(arr), False, False)
    return list(arr[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    path = default_model_path()

    t0 = time.perf_counter()
    LlamaEngine(path, n_threads=args.threads).close()  # first load: builds the vocabulary cache
    first_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    eng = LlamaEngine(path, n_threads=args.threads)
    load = time.perf_counter() - t0

    lcp = reference_llama(
        path, n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads, logits_all=True
    )
    model, vocab = lcp._model.model, lcp._model.vocab
    gen = GenerationParams.make(
        temperature=0,
        max_tokens=args.tokens,
        top_logprobs=20,
        logit_bias={t: -100.0 for t in eng.eog_ids},
    )
    bias = {str(t): -100.0 for t in eng.eog_ids}
    msgs = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]

    def ours_decode() -> tuple[int, float]:
        t = time.perf_counter()
        c = eng.complete(PROMPT, gen)
        return len(c.tokens), time.perf_counter() - t

    def lcp_decode() -> tuple[int, float]:
        t = time.perf_counter()
        r = lcp.create_completion(
            PROMPT, max_tokens=args.tokens, temperature=0, logprobs=20, logit_bias=bias
        )
        return r["usage"]["completion_tokens"], time.perf_counter() - t

    def lcp_chat() -> tuple[int, float]:
        t = time.perf_counter()
        r = lcp.create_chat_completion(
            msgs,
            max_tokens=args.tokens,
            temperature=0,
            logprobs=True,
            top_logprobs=20,
            logit_bias=bias,
        )
        return r["usage"]["completion_tokens"], time.perf_counter() - t

    def ours_score() -> tuple[int, float]:
        t = time.perf_counter()
        s = eng.score(SCORE_TEXT)
        return len(s.tokens), time.perf_counter() - t

    def lcp_echo() -> tuple[int, float]:
        t = time.perf_counter()
        r = lcp.create_completion(SCORE_TEXT, max_tokens=1, temperature=0, echo=True, logprobs=1)
        return r["usage"]["prompt_tokens"], time.perf_counter() - t

    paths: dict[str, Callable[[], tuple[int, float]]] = {
        "decode/plain": lambda: plain_decode(model, vocab, args.threads, args.tokens),
        "decode/logprobe": ours_decode,
        "decode/lcp": lcp_decode,
        "decode/lcp_chat": lcp_chat,
        "score/prefill": lambda: plain_prefill(model, vocab, args.threads, SCORE_TEXT),
        "score/logprobe": ours_score,
        "score/lcp_echo": lcp_echo,
    }
    for fn in paths.values():  # warm-up
        fn()
    speeds: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(args.reps):  # each path once per repetition, pairs back to back
        for name, fn in paths.items():
            n, dt = fn()
            speeds[name].append(n / dt)
    med = {k: statistics.median(v) for k, v in speeds.items()}

    def paired(a: str, b: str) -> float:
        """Median over repetitions of a/b measured back to back in the same repetition: a slow
        spell of the shared machine then hits both sides of each ratio."""
        return statistics.median(x / y for x, y in zip(speeds[a], speeds[b], strict=True))

    result = {
        "threads": args.threads,
        "reps": args.reps,
        "tokens": args.tokens,
        "tokens_per_s": {k: round(v, 1) for k, v in med.items()},
        "spread_tokens_per_s": {k: [round(min(v), 1), round(max(v), 1)] for k, v in speeds.items()},
        "ratios": {  # paired per repetition, then the median
            "decode logprobe/plain": round(paired("decode/logprobe", "decode/plain"), 3),
            "decode logprobe/lcp": round(paired("decode/logprobe", "decode/lcp"), 2),
            "decode logprobe/lcp_chat": round(paired("decode/logprobe", "decode/lcp_chat"), 2),
            "score logprobe/prefill": round(paired("score/logprobe", "score/prefill"), 3),
            "score logprobe/lcp_echo": round(paired("score/logprobe", "score/lcp_echo"), 2),
        },
        "ratios_per_rep": {
            "decode logprobe/plain": [
                round(x / y, 3)
                for x, y in zip(speeds["decode/logprobe"], speeds["decode/plain"], strict=True)
            ],
            "score logprobe/prefill": [
                round(x / y, 3)
                for x, y in zip(speeds["score/logprobe"], speeds["score/prefill"], strict=True)
            ],
        },
        "load_s": {"first": round(first_load, 3), "later": round(load, 3)},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "numpy": np.__version__,
        "llama_cpp_python": llama_cpp.__version__,
    }
    eng.close()
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
