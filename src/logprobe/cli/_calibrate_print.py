"""Human-readable output of ``logprobe calibrate`` (tables on stdout, with rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

METRIC_NAMES = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "mean_confidence": "mean confidence",
    "ece": "ECE (equal-width)",
    "ece_equal_mass": "ECE (equal-mass)",
    "mce": "MCE",
    "brier": "Brier (confidence)",
    "brier_multiclass": "Brier (multi-class)",
    "log_loss": "log loss (confidence)",
    "nll_multiclass": "NLL (multi-class)",
    "roc_auc": "ROC-AUC (conf. vs correct)",
    "aurc": "AURC",
    "prr": "prediction-rejection ratio",
}
_BEFORE_AFTER = (
    "accuracy",
    "macro_f1",
    "ece",
    "ece_equal_mass",
    "mce",
    "brier",
    "brier_multiclass",
    "log_loss",
    "nll_multiclass",
    "roc_auc",
)


def fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}"


def fmt_ci(ci: Any) -> str:
    return "-" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _value_ci(cell: Any) -> str:
    if not cell:
        return "-"
    return f"{fmt(cell['value'])} {fmt_ci(cell['ci'])}" if cell.get("ci") else fmt(cell["value"])


def print_report(report: dict[str, Any], console: Console) -> None:
    level = int(round(report["bootstrap"]["level"] * 100))
    task = report.get("signature")
    if task:
        console.print(
            escape(
                f"task: {task['model']} [{', '.join(task['labels'])}] prompt "
                f"{task['prompt_hash']} {task['method']}/{task['normalize']} "
                f"(id {task['id']})"
            )
        )
    table = Table(title=f"{report['source']}: {report['n']} predictions, {report['n_bins']} bins")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{level}% CI (bootstrap)", justify="right")
    for key, row in report["metrics"].items():
        table.add_row(METRIC_NAMES.get(key, key), fmt(row["value"]), fmt_ci(row["ci"]))
    console.print(table)
    rec = report.get("recalibration")
    if rec:
        print_recalibration(rec, console)
    thr = report.get("threshold")
    if thr:
        print_threshold(thr, console)
    for note in report["notes"]:
        console.print(f"note: {note}")


def print_recalibration(rec: dict[str, Any], console: Console) -> None:
    auto = rec.get("auto")
    if auto:
        console.print(escape(f"auto: {auto['reason']}"))
    if "error" in rec:
        console.print(f"recalibration ({rec['method']}) not possible: {rec['error']}")
        return
    params = ", ".join(
        f"{k}={v:.4g}" for k, v in rec["params"].items() if isinstance(v, int | float)
    )
    head = f"{rec['method']} fitted on {rec['fit_n']} rows" + (f" ({params})" if params else "")
    if rec["before"] is None:
        console.print(head + "; nothing held out to evaluate it")
        return
    where = (
        "held-out rows"
        if rec.get("eval_source") == "split"
        else f"rows of {rec.get('eval_source')}"
    )
    table = Table(title=f"{head}, evaluated on {rec['eval_n']} {where}")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    has_delta = bool(rec.get("delta"))
    if has_delta:
        table.add_column("after - before", justify="right")
    for key in _BEFORE_AFTER:
        if key in rec["before"]:
            row = [METRIC_NAMES[key], _value_ci(rec["before"][key]), _value_ci(rec["after"][key])]
            if has_delta:
                row.append(_value_ci(rec["delta"].get(key)))
            table.add_row(*row)
    console.print(table)
    base = rec.get("baseline") or {}
    if "accuracy" in base:
        console.print(
            f"majority-label baseline (always {base.get('label')!r}, the fit rows' most "
            f"frequent): accuracy {_value_ci(base['accuracy'])}, macro-F1 "
            f"{_value_ci(base.get('macro_f1'))}"
        )
    if rec.get("selective"):
        print_selective(rec["selective"], console)


def _gate(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return (
        f"review {fmt(d['review_rate'])}, accuracy of the rest {fmt(d['accuracy_of_rest'])}, "
        f"errors caught {fmt(d['errors_caught'])}"
    )


def print_selective(sel: dict[str, Any], console: Console) -> None:
    t = sel["calibrated"]["target"]
    console.print(
        f"selective prediction, target {t['kind']}={t['value']:g} (threshold picked on "
        "the fit rows, outcome on the evaluation rows):"
    )
    for name in ("raw", "calibrated"):
        part = sel[name]
        if "error" in part:
            console.print(f"  {name} confidence: {part['error']}")
        else:
            console.print(f"  {name} confidence >= {part['threshold']:.4f}: {_gate(part['eval'])}")
    rule = sel["raw"].get("rule_of_thumb")
    if rule:
        console.print(
            f"  rule of thumb (mean logprob > {rule['publish_above']:g} publish, "
            f"< {rule['review_below']:g} review; grey zone "
            f"{rule['grey_share']:.3f}):"
        )
        at = sel["calibrated"].get("at_rule_budget", {})
        for reading, grey in (("lenient", "published"), ("strict", "reviewed")):
            console.print(
                f"    grey zone {grey}: {_gate(rule[reading])}; calibrated confidence "
                f"at the same review rate: {_gate(at.get(reading))}"
            )


def print_threshold(thr: dict[str, Any], console: Console) -> None:
    t = thr["target"]
    if "error" in thr:
        console.print(f"threshold for {t['kind']}={t['value']:g}: {thr['error']}")
        return
    console.print(
        f"threshold for {t['kind']}={t['value']:g} ({thr['scale']} confidence, picked on "
        f"{thr['picked_on']}): accept if confidence >= {thr['threshold']:.4f} "
        f"(CI {fmt_ci(thr['threshold_ci'])})"
    )
    console.print(
        f"  review rate {fmt(thr['review_rate'])} {fmt_ci(thr['ci'].get('review_rate'))}, "
        f"precision of accepted {fmt(thr['precision'])}, errors caught "
        f"{fmt(thr['errors_caught'])} {fmt_ci(thr['ci'].get('errors_caught'))}"
        + (
            f", expected cost {fmt(thr['expected_cost'])}"
            if thr["expected_cost"] is not None
            else ""
        )
    )
    held = thr.get("held_out")
    if held:
        console.print(
            f"  on {held['n']} held-out rows: review rate {fmt(held['review_rate'])}, precision "
            f"{fmt(held['precision'])}, errors caught {fmt(held['errors_caught'])}"
        )


__all__ = ["METRIC_NAMES", "fmt", "fmt_ci", "print_report"]
