"""Content moderation on TweetEval "offensive" with a TOML policy and the embedded model.

``--fit`` validation tweets and ``--test`` test tweets are drawn with seed 0. Every tweet gets
the raw label probabilities of ``bench/data/moderation/offensive.toml`` (chat prompt, labels
scored as the assistant's reply). On the validation tweets a Platt map of ``P(offensive)`` and
the review thresholds are fitted (:func:`logprobe.tasks.moderate_fit.fit_moderation`) for each
precision target; on the test tweets we report macro-F1 (raw argmax and calibrated at 0.5), ECE
of ``P(offensive)`` before/after calibration, and for each target the flag / allow / review
rates with the precision of the automatic decisions. Baselines: majority class, a stratified
random guess (expected macro-F1, computed exactly), and the published systems (the RoB-Rt
predictions file scored on the same tweets).

    .venv/bin/python bench/experiment_moderation.py --out build/apps --fit 300 --test 300
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app_common import (  # noqa: E402
    DATA,
    SEED,
    append_jsonl,
    cached_jsonl,
    cis,
    ece_stat,
    engine,
    fmt,
    resampled,
    weighted_mean,
    write_json,
)

from logprobe.calibration import ece  # noqa: E402
from logprobe.tasks.moderate import Policy, calibrated_probs, decide, load_policy, moderate  # noqa: E402
from logprobe.tasks.moderate_fit import fit_moderation, save_fit  # noqa: E402

T = DATA / "tweet_eval_offensive"
POLICY = Path(__file__).resolve().parent / "data" / "moderation" / "offensive.toml"
NAMES = {"0": "not offensive", "1": "offensive"}
TARGETS = (0.95, 0.9, 0.8, 0.7, 0.6)


def split(name: str, n: int) -> list[tuple[str, str, str]]:
    """``n`` seeded (key, text, gold label) rows of a split (file order kept)."""
    text = (T / f"{name}_text.txt").read_text(encoding="utf-8").split("\n")[:-1]
    gold = (T / f"{name}_labels.txt").read_text(encoding="utf-8").split("\n")[:-1]
    idx = sorted(random.Random(SEED).sample(range(len(text)), min(n, len(text))))
    return [(f"{name}/{i}", text[i], NAMES[gold[i].strip()]) for i in idx]


def raw_probs(
    eng: Any, policy: Policy, rows: Sequence[tuple[str, str, str]], cache: Path
) -> list[dict[str, float]]:
    done = cached_jsonl(cache)
    todo = [r for r in rows if r[0] not in done]

    def one(row: tuple[str, str, str]) -> dict[str, Any]:
        return {"key": row[0], "raw": dict(moderate(eng, row[1], policy).raw_probs), "gold": row[2]}

    with ThreadPoolExecutor(4) as ex:
        for i, rec in enumerate(ex.map(one, todo)):
            append_jsonl(cache, rec)
            done[rec["key"]] = rec
            if i % 50 == 0:
                print(f"{cache.name}: {i}/{len(todo)}", file=sys.stderr, flush=True)
    return [done[r[0]]["raw"] for r in rows]


def macro_f1(pred: Sequence[bool], gold: Sequence[bool], w: np.ndarray | None = None) -> float:
    idx = np.arange(len(gold)) if w is None else resampled(w)
    p, g = np.asarray(pred)[idx], np.asarray(gold)[idx]
    return float(f1_score(g, p, average="macro", labels=[False, True], zero_division=0))


def best_f1_threshold(q: Sequence[float], y: Sequence[bool]) -> float:
    """The threshold on calibrated P(offensive) with the best macro-F1 on the fitting tweets."""
    cands = sorted(set(q))
    return max(cands, key=lambda t: (macro_f1([v >= t for v in q], y), -t))


def stratified_random_f1(gold: Sequence[bool]) -> float:
    """Expected-ish macro-F1 of guessing 'offensive' with the base rate (mean of 200 seeds)."""
    rate = float(np.mean(gold))
    rng = np.random.default_rng(SEED)
    return float(np.mean([macro_f1(list(rng.random(len(gold)) < rate), gold) for _ in range(200)]))


def published(rows: Sequence[tuple[str, str, str]]) -> float:
    preds = (T / "predictions" / "offensive.txt").read_text(encoding="utf-8").split("\n")[:-1]
    idx = [int(k.split("/")[1]) for k, *_ in rows]
    return macro_f1([preds[i].strip() == "1" for i in idx], [r[2] == "offensive" for r in rows])


def target_block(
    policy: Policy,
    fit_raw: list[dict[str, float]],
    fit_gold: list[str],
    test_raw: list[dict[str, float]],
    y: list[bool],
    target: float,
    out: Path,
) -> dict[str, Any]:
    fit = fit_moderation(policy, fit_raw, fit_gold, precision=target, allow_precision=target)
    save_fit(fit, policy, out / f"moderation_fit_p{int(target * 100)}.json")
    pol = policy.with_thresholds(fit.thresholds)
    dec = [decide(pol, calibrated_probs(pol, r, fit.calibrators))[0] for r in test_raw]
    flag = np.array([d == "flag" for d in dec])
    allow = np.array([d == "allow" for d in dec])
    yy = np.array(y)

    def prec(mask: np.ndarray, want: np.ndarray) -> Any:
        return lambda w: (
            None if (w * mask).sum() == 0 else float((w * mask * want).sum() / (w * mask).sum())
        )

    stats = {
        "review_rate": weighted_mean(~flag & ~allow),
        "flag_rate": weighted_mean(flag),
        "flag_precision": prec(flag, yy),
        "allow_precision": prec(allow, ~yy),
    }
    ones = np.ones(len(y))
    return {
        "target": target,
        "thresholds": {k: vars(t) for k, t in fit.thresholds.items()},
        "notes": fit.info.get("notes", []),
        **{k: f(ones) for k, f in stats.items()},
        "ci95": cis(stats, len(y)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("build/apps"))
    ap.add_argument("--fit", type=int, default=300)
    ap.add_argument("--test", type=int, default=300)
    args = ap.parse_args(argv)
    policy = load_policy(POLICY)
    eng = engine()
    fit_rows, test_rows = split("val", args.fit), split("test", args.test)
    fit_raw = raw_probs(eng, policy, fit_rows, args.out / "tweets_val.jsonl")
    test_raw = raw_probs(eng, policy, test_rows, args.out / "tweets_test.jsonl")
    fit_gold = [r[2] for r in fit_rows]
    y = [r[2] == "offensive" for r in test_rows]
    base = fit_moderation(policy, fit_raw, fit_gold, precision=0.5, allow_precision=0.5)
    p = [r["offensive"] for r in test_raw]
    q = [float(base.calibrators["offensive"].apply(v)) for v in p]
    pred_raw = [max(r, key=lambda k: r[k]) == "offensive" for r in test_raw]
    pred_cal = [v >= 0.5 for v in q]
    t_f1 = best_f1_threshold(
        [float(base.calibrators["offensive"].apply(r["offensive"])) for r in fit_raw],
        [g == "offensive" for g in fit_gold],
    )
    pred_tuned = [v >= t_f1 for v in q]
    stats = {
        "macro_f1_raw": lambda w: macro_f1(pred_raw, y, w),
        "macro_f1_calibrated": lambda w: macro_f1(pred_cal, y, w),
        "macro_f1_tuned": lambda w: macro_f1(pred_tuned, y, w),
        "ece_raw": ece_stat(p, y),
        "ece_calibrated": ece_stat(q, y),
    }
    result: dict[str, Any] = {
        "fit_tweets": len(fit_rows),
        "test_tweets": len(test_rows),
        "seed": SEED,
        "test_offensive": int(sum(y)),
        "platt": base.calibrators["offensive"].params(),
        "macro_f1_raw": macro_f1(pred_raw, y),
        "macro_f1_calibrated": macro_f1(pred_cal, y),
        "f1_threshold": t_f1,
        "macro_f1_tuned": macro_f1(pred_tuned, y),
        "ece_raw": ece(p, y, n_bins=10),
        "ece_calibrated": ece(q, y, n_bins=10),
        "ci95": cis(stats, len(y)),
        "baselines": {
            "majority": macro_f1([False] * len(y), y),
            "stratified_random": stratified_random_f1(y),
            "rob_rt_predictions_same_tweets": published(test_rows),
            "rob_rt_predictions_all_860": 0.8155,
            "best_offenseval_2019": 0.829,
        },
        "targets": [
            target_block(policy, fit_raw, fit_gold, test_raw, y, t, args.out) for t in TARGETS
        ],
    }
    write_json(args.out / "moderation.json", result)
    print(markdown(result))
    eng.close()
    return 0


def markdown(r: dict[str, Any]) -> str:
    ci, b = r["ci95"], r["baselines"]
    lines = [
        f"TweetEval offensive: fit on {r['fit_tweets']} validation tweets, tested on "
        f"{r['test_tweets']} test tweets ({r['test_offensive']} offensive), seed {r['seed']}.",
        "",
        "| system | macro-F1 |",
        "|---|---|",
        f"| majority class (not offensive) | {b['majority']:.3f} |",
        f"| random at the base rate (mean of 200) | {b['stratified_random']:.3f} |",
        f"| SmolLM2-135M, raw argmax | {fmt(r['macro_f1_raw'], ci['macro_f1_raw'])} |",
        f"| SmolLM2-135M, Platt, P >= 0.5 | "
        f"{fmt(r['macro_f1_calibrated'], ci['macro_f1_calibrated'])} |",
        f"| SmolLM2-135M, Platt, threshold {r['f1_threshold']:.3f} tuned on validation | "
        f"{fmt(r['macro_f1_tuned'], ci['macro_f1_tuned'])} |",
        f"| RoB-Rt predictions (TweetEval authors), same tweets | "
        f"{b['rob_rt_predictions_same_tweets']:.3f} |",
        "| RoB-Rt predictions, all 860 / best OffensEval 2019 system | 0.816 / 0.829 |",
        "",
        f"ECE of P(offensive) (10 bins): raw {fmt(r['ece_raw'], ci['ece_raw'])}, "
        f"after Platt {fmt(r['ece_calibrated'], ci['ece_calibrated'])}.",
        "",
        "| precision target | flag_at | allow_below | review rate | flagged | "
        "flag precision | allow precision |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in r["targets"]:
        th, c = t["thresholds"]["offensive"], t["ci95"]
        lines.append(
            f"| {t['target']:.2f} | {th['flag_at']:.3f} | {th['allow_below']:.3f} | "
            f"{fmt(t['review_rate'], c['review_rate'])} | {t['flag_rate']:.3f} | "
            f"{fmt(t['flag_precision'], c['flag_precision'])} | "
            f"{fmt(t['allow_precision'], c['allow_precision'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
