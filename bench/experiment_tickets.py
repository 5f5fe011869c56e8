"""Ticket routing with clarification on the 224 hand-written tickets (bench/data/tickets).

The set is split 50/50 with seed 0 (``logprobe.calibration.split_indices``): thresholds are
fitted on one half (:func:`logprobe.tasks.triage.fit_triage`, routed messages right >= 90% of
the time, clarified messages with the right team among the two offered >= 90%), and the other
half is routed with them. A clarified test message is answered by a simulated customer who
picks the right team's topic from the question when it is offered (else answers "neither of
those"), and routed again from the message plus that free-text answer
(:func:`logprobe.tasks.triage.triage` with ``answer=``); a message still unsure is escalated to
a person. The report also gives the simpler flow where the customer's pick between the two
offered teams routes the ticket directly. Baselines: one team for everything, keyword rules,
and the plain argmax with and without the content-free prior correction.

    .venv/bin/python bench/experiment_tickets.py --out build/apps
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app_common import (  # noqa: E402
    SEED,
    append_jsonl,
    cached_jsonl,
    cis,
    engine,
    fmt,
    weighted_mean,
    write_json,
)

from logprobe.calibration import split_indices  # noqa: E402
from logprobe.tasks.classify import classify  # noqa: E402
from logprobe.tasks.triage import (  # noqa: E402
    TICKET_LABELS,
    TICKET_TEMPLATE,
    TOPICS,
    actions_for,
    content_free_prior,
    fit_triage,
    prior_corrected,
    top_two,
    triage,
)

TICKETS = Path(__file__).resolve().parent / "data" / "tickets" / "tickets.jsonl"
LABELS = list(TICKET_LABELS)
KEYWORDS = {
    "billing": (
        "charge",
        "refund",
        "invoice",
        "bill",
        "payment",
        "price",
        "paid",
        "card",
        "discount",
        "vat",
        "tax",
        "subscription",
        "fee",
        "cost",
    ),
    "bug report": (
        "error",
        "crash",
        "broken",
        "doesn't work",
        "not working",
        "fails",
        "bug",
        "wrong",
        "stuck",
        "slow",
        "freezes",
        "missing",
    ),
    "feature request": (
        "add",
        "would be",
        "could you",
        "please let",
        "wish",
        "support for",
        "option",
        "would love",
        "feature",
        "possible to",
    ),
    "account access": (
        "log in",
        "login",
        "password",
        "2fa",
        "two-factor",
        "locked",
        "sign in",
        "account",
        "access",
        "suspended",
    ),
}


def keyword_label(text: str) -> str:
    """Baseline: the team whose keywords occur most (ties: the first team in KEYWORDS)."""
    t = text.lower()
    hits = {k: sum(w in t for w in ws) for k, ws in KEYWORDS.items()}
    return max(hits, key=lambda k: hits[k])


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in TICKETS.read_text(encoding="utf-8").splitlines()]


def distributions(eng: Any, rows: Sequence[dict[str, Any]], cache: Path) -> list[dict[str, Any]]:
    done = cached_jsonl(cache)
    todo = [r for r in rows if r["id"] not in done]

    def one(r: dict[str, Any]) -> dict[str, Any]:
        res = classify(eng, r["text"], LABELS, template=TICKET_TEMPLATE)
        return {"key": r["id"], "raw": dict(res.probs), "gold": r["label"]}

    with ThreadPoolExecutor(4) as ex:
        for rec in ex.map(one, todo):
            append_jsonl(cache, rec)
            done[rec["key"]] = rec
    return [done[r["id"]] for r in rows]


def clarified_outcome(
    eng: Any, row: dict[str, Any], pair: Sequence[str], th: Any, prior: dict[str, float]
) -> dict[str, Any]:
    answer = TOPICS[row["label"]] if row["label"] in pair else "neither of those"
    r = triage(eng, row["text"], thresholds=th, answer=answer, prior=prior)
    return {"id": row["id"], "answer": answer, "action": r.action, "label": r.label}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("build/apps"))
    ap.add_argument("--route-precision", type=float, default=0.9)
    ap.add_argument("--clarify-precision", type=float, default=0.9)
    args = ap.parse_args(argv)
    rows = load()
    eng = engine()
    prior = content_free_prior(eng, LABELS, TICKET_TEMPLATE, False)
    recs = distributions(eng, rows, args.out / "tickets_probs.jsonl")
    probs = [prior_corrected(r["raw"], prior) for r in recs]
    fit_idx, test_idx = split_indices(len(rows), 0.5, SEED)
    fit = fit_triage(
        [probs[i] for i in fit_idx],
        [rows[i]["label"] for i in fit_idx],
        route_precision=args.route_precision,
        clarify_precision=args.clarify_precision,
    )
    th = fit.thresholds
    test = [rows[i] for i in test_idx]
    tprobs = [probs[i] for i in test_idx]
    acts = actions_for(tprobs, th)
    pairs = [top_two(p)[0] for p in tprobs]
    clar = [i for i, a in enumerate(acts) if a == "clarify"]
    with ThreadPoolExecutor(4) as ex:
        second = dict(
            zip(
                clar,
                ex.map(lambda i: clarified_outcome(eng, test[i], pairs[i], th, prior), clar),
                strict=True,
            )
        )
    eng.close()
    gold = [r["label"] for r in test]
    final: list[str | None] = []
    for i, a in enumerate(acts):
        if a == "route":
            final.append(pairs[i][0])
        elif a == "clarify" and second[i]["action"] == "route":
            final.append(second[i]["label"])
        else:
            final.append(None)  # a person routes it
    person = np.array([f is None for f in final])
    # the customer picks one of the two offered teams: right when the gold team was offered
    picked = [
        pairs[i][0] if a == "route" else gold[i] if a == "clarify" and gold[i] in pairs[i] else None
        for i, a in enumerate(acts)
    ]
    routed = np.array([a == "route" for a in acts])
    cols = {
        "argmax_accuracy_prior": np.array([p[0] == g for p, g in zip(pairs, gold, strict=True)]),
        "argmax_accuracy_raw": np.array(
            [
                max(recs[i]["raw"], key=recs[i]["raw"].get) == g
                for i, g in zip(test_idx, gold, strict=True)
            ]
        ),
        "keyword_accuracy": np.array([keyword_label(r["text"]) == r["label"] for r in test]),
        "route_rate": routed,
        "clarify_rate": np.array([a == "clarify" for a in acts]),
        "escalate_rate": np.array([a == "escalate" for a in acts]),
        "person_rate": person,
        "automatic_accuracy": np.array([f == g for f, g in zip(final, gold, strict=True)]),
        "pick_person_rate": np.array([p is None for p in picked]),
        "pick_right": np.array([p == g for p, g in zip(picked, gold, strict=True)]),
    }
    stats: dict[str, Any] = {k: weighted_mean(v.astype(float)) for k, v in cols.items()}
    right = np.array([f == g for f, g in zip(final, gold, strict=True)], dtype=float)
    auto = (~person).astype(float)
    stats["accuracy_of_automatic"] = lambda w: (
        None if (w * auto).sum() == 0 else float((w * auto * right).sum() / (w * auto).sum())
    )
    clar_f = np.array([a == "clarify" for a in acts], dtype=float)
    offered = np.array([g in p for p, g in zip(pairs, gold, strict=True)], dtype=float)
    stats["clarified_right_team_offered"] = lambda w: (
        None
        if (w * clar_f).sum() == 0
        else float((w * clar_f * offered).sum() / (w * clar_f).sum())
    )
    routed_f = routed.astype(float)
    first_ok = cols["argmax_accuracy_prior"].astype(float)
    stats["accuracy_of_first_pass_routed"] = lambda w: (
        None
        if (w * routed_f).sum() == 0
        else float((w * routed_f * first_ok).sum() / (w * routed_f).sum())
    )
    ones = np.ones(len(test))
    result = {
        "n_fit": len(fit_idx),
        "n_test": len(test),
        "seed": SEED,
        "prior": prior,
        "thresholds": fit.to_dict(),
        "route_precision": args.route_precision,
        "clarify_precision": args.clarify_precision,
        **{k: f(ones) for k, f in stats.items()},
        "ci95": cis(stats, len(test)),
        "clarified": list(second.values()),
    }
    write_json(args.out / "tickets.json", result)
    print(markdown(result))
    return 0


def markdown(r: dict[str, Any]) -> str:
    ci, th = r["ci95"], r["thresholds"]
    rows = [
        ("one team for everything", None),
        ("keyword rules", "keyword_accuracy"),
        ("argmax, raw label probabilities", "argmax_accuracy_raw"),
        ("argmax, content-free prior corrected", "argmax_accuracy_prior"),
    ]
    lines = [
        f"{r['n_test']} test tickets (thresholds fitted on the other {r['n_fit']}, seed "
        f"{r['seed']}): clarify when the top-2 margin < {th['clarify_margin']:.3f}, escalate "
        f"when the top-2 mass < {th['escalate_mass']:.3f}.",
        "",
        "| router | accuracy |",
        "|---|---|",
        "| one team for everything | 0.250 |",
    ]
    lines += [f"| {n} | {fmt(r[k], ci[k])} |" for n, k in rows[1:]]
    lines += ["", "| at the fitted thresholds | share of test tickets |", "|---|---|"]
    for name, key in (
        ("routed on the first pass", "route_rate"),
        ("accuracy of those routed on the first pass", "accuracy_of_first_pass_routed"),
        ("asked a clarifying question", "clarify_rate"),
        ("escalated on the first pass", "escalate_rate"),
        ("ended with a person (escalated, or still unsure after the answer)", "person_rate"),
        ("routed automatically and right (of all tickets)", "automatic_accuracy"),
        ("accuracy of all automatic routings", "accuracy_of_automatic"),
        ("clarified tickets whose team was one of the two offered", "clarified_right_team_offered"),
        ("if the customer picks between the two teams: right (of all tickets)", "pick_right"),
        ("if the customer picks: ends with a person", "pick_person_rate"),
    ):
        lines.append(f"| {name} | {fmt(r[key], ci.get(key))} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
