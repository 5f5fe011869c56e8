"""Evaluation stage of bench/experiment_task_calibration.py: fit on val, report on test, tables.

Every method goes through ``logprobe.calibration.calibration_report`` with the test rows as
``eval_preds`` (what ``logprobe calibrate VAL --method M --eval-file TEST`` prints), so the numbers
here are the CLI's numbers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from task_calibration_tasks import TASKS

METHODS = ("temperature", "platt", "isotonic", "vector", "matrix", "contextual", "auto")
TARGET = "errors_caught=0.8"


def _contextual(signature: Any, threads: int) -> Any:
    from logprobe.engines.llamacpp import LlamaEngine
    from logprobe.tasks import fit_contextual_for

    engine = LlamaEngine(n_threads=threads)
    try:
        return fit_contextual_for(engine, signature)
    finally:
        engine.close()


def evaluate_task(name: str, out: Path, *, n_boot: int, seed: int, threads: int) -> dict[str, Any]:
    from logprobe.calibration import (
        ReportOptions,
        calibration_report,
        parse_target,
        read_predictions,
    )

    val = read_predictions(out / f"{name}_val.jsonl")
    test = read_predictions(out / f"{name}_test.jsonl")
    signature = val.require_signature()
    start = time.perf_counter()
    ctx = _contextual(signature, threads)
    result: dict[str, Any] = {
        "task": name,
        "title": TASKS[name].title,
        "n_val": val.n,
        "n_test": test.n,
        "signature": signature.to_dict(),
        "contextual_prior": list(ctx.prior),
        "methods": {},
    }
    for method in METHODS:
        opts = ReportOptions(
            method=method,
            n_boot=n_boot,
            seed=seed,
            signature=signature,
            contextual=ctx,
            eval_preds=test,
            target=parse_target(TARGET),
        )
        report, _ = calibration_report(val, opts)
        result["methods"][method] = report["recalibration"]
    result["seconds"] = time.perf_counter() - start
    return result


def _v(cell: Any, digits: int = 3) -> str:
    if not cell or cell.get("value") is None:
        return "-"
    return f"{cell['value']:.{digits}f}"


def _ci(cell: Any, digits: int = 3) -> str:
    if not cell or cell.get("value") is None:
        return "-"
    ci = cell.get("ci")
    text = f"{cell['value']:.{digits}f}"
    return text if not ci else f"{text} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _g(d: Any, key: str) -> str:
    return "-" if not d or d.get(key) is None else f"{d[key]:.3f}"


def tables(results: list[dict[str, Any]]) -> str:
    """The markdown tables of docs/experiments/task_calibration.md."""
    lines = [
        "**Raw model on the test split** (95% bootstrap intervals; baseline = always the "
        "val split's most frequent label).",
        "",
        "| task | val / test rows | accuracy | macro-F1 | ECE | Brier (multi-class) | "
        "ROC-AUC | majority baseline accuracy | baseline macro-F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rec = r["methods"]["temperature"]
        b, base = rec["before"], rec["baseline"]
        lines.append(
            f"| {r['title']} | {r['n_val']} / {r['n_test']} | {_ci(b['accuracy'])} | "
            f"{_v(b['macro_f1'])} | {_ci(b['ece'])} | {_v(b['brier_multiclass'])} | "
            f"{_ci(b['roc_auc'])} | {_ci(base['accuracy'])} ({base.get('label')}) | "
            f"{_v(base['macro_f1'])} |"
        )
    lines += [
        "",
        "**After calibration, test split** (fitted on the val split only; "
        "Δ = after − before on the same bootstrap resamples).",
        "",
        "| task | method | accuracy | Δ accuracy | macro-F1 | ECE | Δ ECE | "
        "Brier (multi-class) | ROC-AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for method, rec in r["methods"].items():
            if "error" in rec:
                lines.append(f"| {r['task']} | {method} | {rec['error']} |||||||")
                continue
            if rec.get("after") is None:
                lines.append(
                    f"| {r['task']} | {method} → none | (no calibration: same as raw) |||||||"
                )
                continue
            a, d = rec["after"], rec["delta"]
            shown = method if method != "auto" else f"auto → {rec['method']}"
            lines.append(
                f"| {r['task']} | {shown} | {_ci(a['accuracy'])} | {_ci(d['accuracy'])} | "
                f"{_v(a['macro_f1'])} | {_ci(a['ece'])} | {_ci(d['ece'])} | "
                f"{_v(a['brier_multiclass'])} | {_v(a['roc_auc'])} |"
            )
    lines += [
        "",
        "**What `--method auto` chose** (5-fold cross-validated multi-class log loss "
        "on the val split; lower is better).",
        "",
        "| task | none | temperature | vector | matrix | contextual | chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        auto = r["methods"]["auto"].get("auto", {})
        s = auto.get("cv_log_loss", {})
        cells = " | ".join(
            "-" if m not in s else f"{s[m]:.4f}"
            for m in ("none", "temperature", "vector", "matrix", "contextual")
        )
        lines.append(f"| {r['task']} | {cells} | {auto.get('method')} |")
    lines += [
        "",
        "**Selective prediction on the test split**: target errors_caught = 0.8, "
        "threshold picked on the val split; the rule of thumb is mean token logprob of the "
        "answer > −0.5 publish, < −1.5 review (grey zone reviewed = strict, published = "
        "lenient); 'same budget' reviews as many rows as the rule does, least confident "
        "first.",
        "",
        "| task | gate | review rate | accuracy of the rest | errors caught |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        rec = r["methods"]["auto"]
        if rec.get("selective") is None:
            rec = r["methods"]["temperature"]
        sel = rec["selective"]
        rule = sel["raw"].get("rule_of_thumb", {})
        rows = [
            ("raw confidence ≥ threshold", sel["raw"].get("eval")),
            (f"{rec['method']}-calibrated confidence ≥ threshold", sel["calibrated"].get("eval")),
            ("rule of thumb, strict", rule.get("strict")),
            ("rule of thumb, lenient", rule.get("lenient")),
            (
                "calibrated confidence, same budget as strict rule",
                sel["calibrated"].get("at_rule_budget", {}).get("strict"),
            ),
            (
                "calibrated confidence, same budget as lenient rule",
                sel["calibrated"].get("at_rule_budget", {}).get("lenient"),
            ),
        ]
        for label, d in rows:
            lines.append(
                f"| {r['task']} | {label} | {_g(d, 'review_rate')} | "
                f"{_g(d, 'accuracy_of_rest')} | {_g(d, 'errors_caught')} |"
            )
    return "\n".join(lines)


def print_tables(out: Path) -> None:
    """Print the tables again from ``OUT/summary.json`` (no refitting)."""
    print(tables(json.loads((out / "summary.json").read_text())))


def evaluate_all(names: list[str], out: Path, *, n_boot: int, seed: int, threads: int) -> None:
    results = []
    for name in names:
        r = evaluate_task(name, out, n_boot=n_boot, seed=seed, threads=threads)
        print(f"{name}: evaluated in {r['seconds']:.0f} s", flush=True)
        results.append(r)
    (out / "summary.json").write_text(json.dumps(results, indent=1, allow_nan=False))
    print(tables(results))
