"""Minimal reproducer: what makes llama.cpp's logits depend on the batch (docs/ENGINE.md).

For one prompt it compares the logits rows of a greedy generation served
  - alone,
  - beside two other sequences (one shorter, one longer, prefilled first),
  - in the reverse admission order,
  - and teacher-forced scoring of the same tokens in one prompt batch (chunks of 512 and 48),
under each llama.cpp configuration below, on the low-level API only (no logprobe scheduler).

    .venv/bin/python bench/experiment_batch_invariance.py [--threads 2] [--lengths 40,300,600]

Prints the largest absolute logit difference per comparison (0 = bit for bit).
"""

from __future__ import annotations

import argparse
import ctypes

import llama_cpp as ll
import numpy as np

from logprobe.engines import _ggml
from logprobe.engines._llama import LlamaModel
from logprobe.engines.llamacpp import default_model_path

CONFIGS = {
    "unified KV, default kernels (logprobe <= 0.1 session 2)": dict(unified=True),
    "per-sequence KV, default kernels": dict(unified=False),
    "per-sequence KV, flash attention off": dict(unified=False, flash=0),
    "unified KV, reference kernels": dict(unified=True, ref=True),
    "per-sequence KV, reference kernels (logprobe now)": dict(unified=False, ref=True),
}


class Ctx:
    def __init__(
        self,
        model: LlamaModel,
        *,
        unified: bool,
        ref: bool = False,
        flash: int = -1,
        threads: int = 2,
        n_seq: int = 4,
        n_ctx_seq: int = 2048,
    ) -> None:
        cp = ll.llama_context_default_params()
        cp.n_ctx = n_ctx_seq * n_seq
        cp.n_batch = cp.n_ubatch = 512
        cp.n_seq_max = n_seq
        cp.n_threads = cp.n_threads_batch = threads
        cp.kv_unified = unified
        cp.flash_attn_type = flash
        self.ptr = ll.llama_init_from_model(model.ptr, cp)
        self.mem = ll.llama_get_memory(self.ptr)
        self.n_vocab = model.n_vocab
        self.batch = ll.llama_batch_init(512, 0, 1)
        if ref and not _ggml.set_reference_mode(ctypes.cast(self.ptr, ctypes.c_void_p).value):
            raise SystemExit("could not switch ggml's CPU backend to reference mode")

    def decode(
        self, toks: list[int], pos: list[int], seqs: list[int], out: list[bool]
    ) -> np.ndarray:
        b = self.batch
        for i, (t, p, s, o) in enumerate(zip(toks, pos, seqs, out, strict=True)):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = t, p, 1, o
            b.seq_id[i][0] = s
        b.n_tokens = len(toks)
        assert ll.llama_decode(self.ptr, b) == 0
        n = sum(out)
        return np.array(
            np.ctypeslib.as_array(ll.llama_get_logits(self.ptr), shape=(n, self.n_vocab))
        )

    def clear(self) -> None:
        ll.llama_memory_clear(self.mem, True)

    def close(self) -> None:
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ptr)


def prefill(
    c: Ctx, seq: int, ids: list[int], chunk: int = 512, all_rows: bool = False
) -> list[np.ndarray]:
    rows = []
    for a in range(0, len(ids), chunk):
        b = min(len(ids), a + chunk)
        out = [all_rows or i == len(ids) - 1 for i in range(a, b)]
        r = c.decode(ids[a:b], list(range(a, b)), [seq] * (b - a), out)
        rows.extend(r)
    return rows


def generate(c: Ctx, jobs: list[tuple[int, list[int]]], steps: int) -> dict[int, list]:
    """Prefill each job alone (in order), then decode all of them together, greedily."""
    res, cur = {}, {}
    for seq, ids in jobs:
        last = prefill(c, seq, ids)[-1]
        res[seq] = [last]
        cur[seq] = (int(last.argmax()), len(ids))
    for _ in range(steps):
        seqs = list(cur)
        rows = c.decode(
            [cur[s][0] for s in seqs], [cur[s][1] for s in seqs], seqs, [True] * len(seqs)
        )
        for i, s in enumerate(seqs):
            res[s].append(rows[i])
            cur[s] = (int(rows[i].argmax()), cur[s][1] + 1)
    return res


def maxdiff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x.astype(np.float64) - y).max()) for x, y in zip(a, b, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lengths", default="40,300,600")
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    model = LlamaModel(default_model_path())
    rng = np.random.default_rng(0)
    ids = lambda n: [int(x) for x in rng.integers(100, 40000, n)]  # noqa: E731
    prompts = {int(n): ids(int(n)) for n in args.lengths.split(",")}
    short, long_ = ids(100), ids(900)
    print("| configuration | prompt | beside others | reversed | scored (512) | scored (48) |")
    print("|---|---|---|---|---|---|")
    for name, cfg in CONFIGS.items():
        c = Ctx(model, threads=args.threads, **cfg)
        for n, p in prompts.items():
            c.clear()
            alone = generate(c, [(0, p)], args.steps)[0]
            c.clear()
            mixed = generate(c, [(1, short), (0, p), (2, long_)], args.steps)[0]
            c.clear()
            rev = generate(c, [(2, long_), (0, p)], args.steps)[0]
            toks = [int(r.argmax()) for r in alone]
            scored = []
            for chunk in (512, 48):
                c.clear()
                scored.append(prefill(c, 0, p + toks[:-1], chunk, all_rows=True)[len(p) - 1 :])
            print(
                f"| {name} | {n} | {maxdiff(alone, mixed):.3g} | {maxdiff(alone, rev):.3g} "
                f"| {maxdiff(alone, scored[0]):.3g} | {maxdiff(alone, scored[1]):.3g} |",
                flush=True,
            )
        c.close()


if __name__ == "__main__":
    main()
