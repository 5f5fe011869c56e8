"""A small but realistic store for the viewer tests: two runs to compare, a calibration run,
a run whose prompts and tokens are HTML/script, and (on demand) a 100k-token response."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from logprobe.store import Store
from logprobe.types import Alternative, Choice, Completion, TokenLogprob, Usage

XSS = "<img src=x onerror=window.__pwned=1>"
XSS_SCRIPT = "<script>window.__pwned=2</script>"


def _tok(text: str, p: float, alts: list[tuple[str, float]]) -> TokenLogprob:
    lp = math.log(p)
    top = [(text, p), *alts]
    top.sort(key=lambda a: -a[1])
    return TokenLogprob(
        token=text,
        bytes=text.encode(),
        logprob=lp,
        rank=1 + [a[0] for a in top].index(text),
        top_logprobs=tuple(Alternative(a, a.encode(), math.log(q)) for a, q in top),
    )


def answer(pieces: list[tuple[str, float, list[tuple[str, float]]]], model: str) -> Completion:
    toks = tuple(_tok(t, p, alts) for t, p, alts in pieces)
    text = "".join(t for t, _, _ in pieces)
    return Completion(
        choices=(Choice(text=text, tokens=toks, finish_reason="stop"),),
        model=model,
        usage=Usage(6, len(toks)),
    )


BASELINE = {
    "The capital of France is": [
        (" Paris", 0.93, [(" Lyon", 0.03), (" London", 0.02)]),
        (".", 0.8, [(",", 0.1)]),
    ],
    "2 + 2 =": [(" 4", 0.97, [(" 5", 0.01), (" four", 0.01)])],
    "The first man on the moon was": [
        (" Neil", 0.7, [(" Buzz", 0.2)]),
        (" Armstrong", 0.95, [(" Young", 0.01)]),
        (" in", 0.4, [(".", 0.3)]),
        (" 1969", 0.6, [(" 1968", 0.2)]),
    ],
}
CANDIDATE = {
    "The capital of France is": [
        (" Paris", 0.31, [(" Lyon", 0.3), (" London", 0.2)]),
        (".", 0.8, [(",", 0.1)]),
    ],
    "2 + 2 =": [(" 4", 0.99, [(" 5", 0.004)])],
    "The first man on the moon was": [
        (" Buzz", 0.45, [(" Neil", 0.4)]),
        (" Aldrin", 0.8, [(" Lightyear", 0.05)]),
    ],
}


STORY = [  # (token, probability, alternatives)
    (" Apollo", 0.92, [(" The", 0.04)]),
    (" 11", 0.97, [(" 12", 0.01)]),
    (" landed", 0.55, [(" touched", 0.2), (" arrived", 0.1)]),
    (" on", 0.93, [(" in", 0.03)]),
    (" the", 0.9, [(" July", 0.05)]),
    (" Moon", 0.85, [(" moon", 0.12)]),
    (" on", 0.6, [(" in", 0.3)]),
    (" July", 0.88, [(" June", 0.05)]),
    (" 20", 0.41, [(" 21", 0.32), (" 16", 0.15)]),
    (",", 0.95, [(" in", 0.02)]),
    (" 1969", 0.97, [(" 1968", 0.02)]),
    (".", 0.7, [(",", 0.2)]),
    (" Neil", 0.75, [(" The", 0.1)]),
    (" Armstrong", 0.98, [(" Young", 0.005)]),
    (" stepped", 0.35, [(" was", 0.3), (" walked", 0.2)]),
    (" out", 0.45, [(" onto", 0.35)]),
    (" first", 0.62, [(" at", 0.1)]),
    (",", 0.5, [(" and", 0.3)]),
    (" followed", 0.7, [(" with", 0.1)]),
    (" by", 0.99, [(" closely", 0.004)]),
    (" Buzz", 0.9, [(" Michael", 0.06)]),
    (" Aldrin", 0.97, [(" Lightyear", 0.001)]),
    (" about", 0.12, [(" some", 0.3), (" 19", 0.25)]),
    (" 19", 0.08, [(" 20", 0.4), (" 15", 0.2), (" 30", 0.1)]),
    (" minutes", 0.9, [(" seconds", 0.04)]),
    (" later", 0.93, [(" after", 0.05)]),
    (".", 0.96, [("!", 0.01)]),
]


@dataclass
class ViewerData:
    paris_a: int  # response ids
    paris_b: int
    xss_response: int
    story: int
    calib_run: str = "calib"


def populate(store: Store) -> ViewerData:
    store.create_run(
        "baseline",
        model="SmolLM2-135M-Instruct",
        model_version="q4_1",
        prompt_template="{question}",
        params={"temperature": 0},
        tags=["nightly"],
    )
    store.create_run(
        "candidate",
        model="SmolLM2-135M-Instruct",
        model_version="q4_0",
        params={"temperature": 0.7},
        tags=["nightly", "quantized"],
    )
    ids = {}
    for run, table in (("baseline", BASELINE), ("candidate", CANDIDATE)):
        for prompt, pieces in table.items():
            rid = store.record(run, prompt, answer(pieces, "SmolLM2-135M-Instruct"))
            ids[(run, prompt)] = rid.response_ids[0]
    story = store.record(
        "baseline", "Tell me about the Apollo 11 landing.", answer(STORY, "SmolLM2-135M-Instruct")
    ).response_ids[0]
    # calibration: 60 labelled answers whose confidence tracks correctness, plus an artifact
    rows = []
    for i in range(60):
        p = 0.35 + 0.6 * (i % 20) / 19
        correct = (i * 7919) % 100 < 100 * p - 5
        store.record(
            "calib", f"question {i}", answer([(" yes", p, [(" no", 1 - p)])], "m"), correct=correct
        )
        rows.append({"confidence": round(min(0.99, p + 0.05), 4), "correct": correct})
    store.add_artifact(
        "calib",
        "predictions.jsonl",
        "".join(json.dumps(r) + "\n" for r in rows),
        "application/jsonl",
    )
    # hostile strings everywhere: run name, prompt, tokens, alternatives
    store.create_run(f"evil {XSS}", model=XSS_SCRIPT, tags=[XSS])
    xss = store.record(
        f"evil {XSS}",
        f"{XSS_SCRIPT} {XSS}",
        answer(
            [(XSS, 0.3, [(XSS_SCRIPT, 0.2)]), ('" onmouseover="window.__pwned=3', 0.05, [])],
            XSS_SCRIPT,
        ),
    ).response_ids[0]
    return ViewerData(
        paris_a=ids[("baseline", "The capital of France is")],
        paris_b=ids[("candidate", "The capital of France is")],
        xss_response=xss,
        story=story,
    )


def huge(store: Store, n: int = 100_000) -> int:
    toks = tuple(
        TokenLogprob(
            token=f" w{i}",
            bytes=f" w{i}".encode(),
            logprob=-((i * 7919) % 1000) / 250,
            top_logprobs=tuple(
                Alternative(f" a{k}", f" a{k}".encode(), -1.0 - k) for k in range(5)
            ),
        )
        for i in range(n)
    )
    comp = Completion(
        choices=(Choice(text="".join(t.token for t in toks), tokens=toks),), model="huge"
    )
    return store.record("huge", "a very long story", comp).response_ids[0]
