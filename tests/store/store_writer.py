"""Writer process for the concurrency tests: ``python store_writer.py URL RUN N TOKENS``.

Records N responses of TOKENS tokens each into RUN, printing ``begin i`` before and
``done i`` after each transaction (the parent uses them to SIGKILL it mid-write).
"""

from __future__ import annotations

import os
import sys

from logprobe.store import Store
from logprobe.types import Alternative, Choice, Completion, TokenLogprob


def response(i: int, n_tokens: int) -> Completion:
    toks = tuple(
        TokenLogprob(
            token=f" t{k}",
            bytes=f" t{k}".encode(),
            logprob=-((k + i) % 50) / 10,
            id=k,
            top_logprobs=(Alternative(f" t{k}", f" t{k}".encode(), -((k + i) % 50) / 10),),
        )
        for k in range(n_tokens)
    )
    return Completion(
        choices=(Choice(text="".join(t.token for t in toks), tokens=toks),), model="writer"
    )


def main() -> None:
    url, run, n, n_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with Store.open(url) as store:
        for i in range(n):
            comp = response(i, n_tokens)  # built first: "begin" means the transaction starts now
            print(f"begin {i}", flush=True)
            store.record(run, f"prompt {os.getpid()} {i}", comp)
            print(f"done {i}", flush=True)


if __name__ == "__main__":
    main()
