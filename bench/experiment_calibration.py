"""Calibration of the embedded model's label probabilities on SST-2, AG News and SMS spam.

Each example is classified by scoring every label as a continuation of one prompt
(``engine.score_continuations(prompt, [" positive", " negative"])``) and taking the softmax of
the labels' total logprobs. The predictions (``label, probs, confidence, gold, correct``, the
shape ``logprobe classify --dataset`` writes) go to ``OUT/<dataset>.jsonl``; then, for each
recalibration method, the rows are split 50/50 (seeded), the calibrator is fitted on one half
and ECE/Brier/ROC-AUC are measured before/after on the other, and the threshold that catches
80% of the errors is picked on the fit half and checked on the held-out half.

Run (about 5-10 minutes on 2 free cores; predictions are reused on a second run):

    .venv/bin/python bench/experiment_calibration.py --out build/calibration --img docs/img

Writes ``OUT/summary.json``, prints the markdown tables of docs/experiments/calibration.md and
draws ``IMG/calibration_<dataset>.png`` (reliability diagram + risk-coverage, held-out half).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from logprobe.calibration import (
    ReportOptions,
    calibration_report,
    parse_target,
    read_predictions,
    save_calibration_plot,
    split_indices,
)
from logprobe.calibration.report import calibrated_outputs, fit_on

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = ("temperature", "platt", "isotonic")
TARGET = "errors_caught=0.8"


@dataclass(frozen=True)
class Task:
    """A labelled dataset and the prompt that turns an example into label continuations."""

    name: str
    title: str
    template: str
    labels: dict[str, str]  # gold label -> continuation scored after the prompt
    load: Callable[[], list[tuple[str, str]]]


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def load_sst2() -> list[tuple[str, str]]:
    return [
        (r["text"].strip(), ["negative", "positive"][int(r["label"])])
        for r in _tsv(DATA / "sst2" / "dev.tsv")
    ]


def load_sms() -> list[tuple[str, str]]:
    rows = _tsv(DATA / "sms_spam" / "SMSSpamCollection.tsv")
    return [(r["SMS"].strip(), r["Label"]) for r in rows]


def load_ag_news() -> list[tuple[str, str]]:
    names = {"1": "World", "2": "Sports", "3": "Business", "4": "Technology"}
    with (DATA / "ag_news" / "test.csv").open(encoding="utf-8", newline="") as f:
        return [
            (f"{r['title']}. {r['description']}".replace("\\", " "), names[r["label"]])
            for r in csv.DictReader(f)
        ]


TASKS = {
    "sst2": Task(
        "sst2",
        "SST-2 dev",
        "Review: {x}\nSentiment (positive or negative):",
        {"positive": " positive", "negative": " negative"},
        load_sst2,
    ),
    "ag_news": Task(
        "ag_news",
        "AG News test",
        "Article: {x}\nTopic (World, Sports, Business or Technology):",
        {k: f" {k}" for k in ("World", "Sports", "Business", "Technology")},
        load_ag_news,
    ),
    "sms_spam": Task(
        "sms_spam",
        "SMS Spam Collection",
        "Message: {x}\nIs this a spam message or a normal message?\nAnswer: a",
        {"spam": " spam", "ham": " normal"},
        load_sms,
    ),
}


def softmax(logprobs: Sequence[float]) -> list[float]:
    top = max(logprobs)
    exps = [math.exp(v - top) for v in logprobs]
    total = sum(exps)
    return [e / total for e in exps]


def classify(engine: Any, task: Task, text: str, gold: str) -> dict[str, Any]:
    """One prediction row: softmax over the labels' total continuation logprobs."""
    scored = engine.score_continuations(task.template.format(x=text), list(task.labels.values()))
    probs = dict(zip(task.labels, softmax([s.logprob for s in scored]), strict=True))
    label = max(probs, key=probs.__getitem__)
    return {
        "label": label,
        "probs": probs,
        "confidence": probs[label],
        "gold": gold,
        "correct": label == gold,
    }


def predict(
    task: Task, limit: int | None, seed: int, out: Path, threads: int, workers: int
) -> tuple[Path, float]:
    """Classify (a seeded subset of) the task's data into ``out``; returns path and seconds."""
    from logprobe.engines.llamacpp import LlamaEngine

    items = task.load()
    if limit is not None and limit < len(items):
        items = random.Random(seed).sample(items, limit)
    start = time.perf_counter()
    engine = LlamaEngine(n_threads=threads)
    try:
        with ThreadPoolExecutor(workers) as pool, Progress(console=Console(stderr=True)) as bar:
            job = bar.add_task(f"{task.name}", total=len(items))
            rows = []
            for row in pool.map(lambda it: classify(engine, task, *it), items):
                rows.append(row)
                bar.advance(job)
                if not bar.console.is_terminal and len(rows) % 100 == 0:
                    print(
                        f"{task.name}: {len(rows)}/{len(items)} "
                        f"({time.perf_counter() - start:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        engine.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out)
    return out, time.perf_counter() - start


def evaluate(path: Path, task: Task, img: Path | None, seed: int, n_boot: int) -> dict[str, Any]:
    """Reports for every method on one predictions file, plus the held-out plot."""
    preds = read_predictions(path)
    target = parse_target(TARGET)
    result: dict[str, Any] = {"dataset": task.title, "n": preds.n, "methods": {}}
    for method in METHODS:
        opts = ReportOptions(method=method, fit_split=0.5, seed=seed, n_boot=n_boot, target=target)
        report, _ = calibration_report(preds, opts)
        result["methods"][method] = {
            "recalibration": report["recalibration"],
            "threshold": report["threshold"],
        }
        result["metrics"] = report["metrics"]
    raw_opts = ReportOptions(fit_split=0.5, seed=seed, n_boot=n_boot, target=target)
    raw, _ = calibration_report(preds, raw_opts)
    result["raw_threshold"] = raw["threshold"]
    if img is not None:
        fit_idx, eval_idx = split_indices(preds.n, 0.5, seed)
        fit, held = preds.subset(fit_idx), preds.subset(eval_idx)
        calibrated = {m: calibrated_outputs(fit_on(fit, m, None), held)[0] for m in METHODS}
        png = save_calibration_plot(
            img / f"calibration_{task.name}.png",
            held.confidence,
            held.correct,
            calibrated=calibrated,
            n_bins=10,
            title=f"{task.title}: SmolLM2-135M-Instruct, {held.n} held-out predictions",
        )
        result["plot"] = str(png)
    return result


def _v(table: dict[str, Any], key: str) -> str:
    row = table.get(key)
    return "-" if not row or row["value"] is None else f"{row['value']:.3f}"


def _ci(table: dict[str, Any], key: str) -> str:
    row = table.get(key)
    if not row or row["ci"] is None:
        return _v(table, key)
    return f"{_v(table, key)} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _metrics_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| dataset | n | accuracy | mean confidence | ECE | Brier | ROC-AUC | AURC | PRR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["metrics"]
        lines.append(
            f"| {r['dataset']} | {r['n']} | {_ci(m, 'accuracy')} | "
            f"{_v(m, 'mean_confidence')} | {_ci(m, 'ece')} | {_ci(m, 'brier')} | "
            f"{_ci(m, 'roc_auc')} | {_v(m, 'aurc')} | {_v(m, 'prr')} |"
        )
    return lines


def _params(rec: dict[str, Any]) -> str:
    if "x" in rec["params"]:
        return f"{len(rec['params']['x'])} knots"
    return ", ".join(f"{k} {v:.3g}" for k, v in rec["params"].items())


def _recalibration_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| dataset | method | fitted map | ECE before | ECE after | Brier before → after "
        "| ECE equal-mass before → after | NLL (multi-class) before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for method, d in r["methods"].items():
            rec = d["recalibration"]
            if "error" in rec:
                lines.append(f"| {r['dataset']} | {method} | error: {rec['error']} ||||||")
                continue
            b, a = rec["before"], rec["after"]
            lines.append(
                f"| {r['dataset']} | {method} | {_params(rec)} | {_ci(b, 'ece')} | "
                f"{_ci(a, 'ece')} | {_v(b, 'brier')} → {_v(a, 'brier')} | "
                f"{_v(b, 'ece_equal_mass')} → {_v(a, 'ece_equal_mass')} | "
                f"{_v(b, 'nll_multiclass')} → {_v(a, 'nll_multiclass')} |"
            )
    return lines


def _threshold_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| dataset | confidence | threshold | review rate (fit half) | errors caught "
        "(held-out) | review rate (held-out) | precision of accepted (held-out) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows = [("raw", r["raw_threshold"])]
        rows += [(m, d["threshold"]) for m, d in r["methods"].items()]
        for scale, t in rows:
            if "error" in t:
                lines.append(f"| {r['dataset']} | {scale} | error: {t['error']} |||||")
                continue
            h = t["held_out"]
            lines.append(
                f"| {r['dataset']} | {scale} | {t['threshold']:.3f} | "
                f"{_f(t['review_rate'])} | {_f(h['errors_caught'])} | "
                f"{_f(h['review_rate'])} | {_f(h['precision'])} |"
            )
    return lines


def markdown(results: list[dict[str, Any]]) -> str:
    """The tables of docs/experiments/calibration.md."""
    return "\n".join(
        [
            *_metrics_table(results),
            "",
            *_recalibration_table(results),
            "",
            f"Threshold for `{TARGET}`, picked on the fit half, checked on the held-out half:",
            "",
            *_threshold_table(results),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("build/calibration"))
    ap.add_argument("--img", type=Path, default=Path("docs/img"))
    ap.add_argument("--datasets", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--limit-ag", type=int, default=600)
    ap.add_argument("--limit-sms", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama.cpp threads per engine (1 is fastest on a busy 2-core machine)",
    )
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--fresh", action="store_true", help="classify again even if predictions exist")
    args = ap.parse_args(argv)
    limits = {"sst2": None, "ag_news": args.limit_ag, "sms_spam": args.limit_sms}
    results, timings = [], {}
    for name in args.datasets:
        task = TASKS[name]
        path = args.out / f"{name}.jsonl"
        if args.fresh or not path.is_file():
            _, secs = predict(task, limits[name], args.seed, path, args.threads, args.workers)
            timings[name] = secs
            print(f"{name}: classified in {secs:.0f} s -> {path}", file=sys.stderr)
        results.append(evaluate(path, task, args.img, args.seed, args.bootstrap))
    summary = {"target": TARGET, "seed": args.seed, "classify_seconds": timings, "results": results}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
