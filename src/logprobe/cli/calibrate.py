"""``logprobe calibrate``: calibration metrics, recalibration and threshold picking for a
predictions JSONL file (a thin shell over :mod:`logprobe.calibration`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import CalibrationError


_METRIC_NAMES = {
    "accuracy": "accuracy",
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


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}"


def _fmt_ci(ci: Any) -> str:
    return "-" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _print_report(report: dict[str, Any], console: Console) -> None:
    level = int(round(report["bootstrap"]["level"] * 100))
    table = Table(title=f"{report['source']}: {report['n']} predictions, {report['n_bins']} bins")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{level}% CI (bootstrap)", justify="right")
    for key, row in report["metrics"].items():
        table.add_row(_METRIC_NAMES.get(key, key), _fmt(row["value"]), _fmt_ci(row["ci"]))
    console.print(table)
    rec = report.get("recalibration")
    if rec:
        _print_recalibration(rec, console)
    thr = report.get("threshold")
    if thr:
        _print_threshold(thr, console)
    for note in report["notes"]:
        console.print(f"note: {note}")


def _print_recalibration(rec: dict[str, Any], console: Console) -> None:
    if "error" in rec:
        console.print(f"recalibration ({rec['method']}) not possible: {rec['error']}")
        return
    params = ", ".join(f"{k}={v:.4g}" for k, v in rec["params"].items()
                       if isinstance(v, int | float))
    head = f"{rec['method']} fitted on {rec['fit_n']} rows" + (f" ({params})" if params else "")
    if rec["before"] is None:
        console.print(head + "; nothing held out to evaluate it")
        return
    table = Table(title=f"{head}, evaluated on {rec['eval_n']} held-out rows")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key in ("ece", "ece_equal_mass", "mce", "brier", "brier_multiclass", "log_loss",
                "nll_multiclass", "roc_auc"):
        if key in rec["before"]:
            table.add_row(_METRIC_NAMES[key], _fmt(rec["before"][key]["value"]),
                          _fmt(rec["after"][key]["value"]))
    console.print(table)


def _print_threshold(thr: dict[str, Any], console: Console) -> None:
    t = thr["target"]
    if "error" in thr:
        console.print(f"threshold for {t['kind']}={t['value']:g}: {thr['error']}")
        return
    console.print(
        f"threshold for {t['kind']}={t['value']:g} ({thr['scale']} confidence, picked on "
        f"{thr['picked_on']}): accept if confidence >= {thr['threshold']:.4f} "
        f"(CI {_fmt_ci(thr['threshold_ci'])})"
    )
    console.print(
        f"  review rate {_fmt(thr['review_rate'])} {_fmt_ci(thr['ci'].get('review_rate'))}, "
        f"precision of accepted {_fmt(thr['precision'])}, errors caught "
        f"{_fmt(thr['errors_caught'])} {_fmt_ci(thr['ci'].get('errors_caught'))}"
        + (f", expected cost {_fmt(thr['expected_cost'])}" if thr["expected_cost"] is not None
           else "")
    )
    held = thr.get("held_out")
    if held:
        console.print(
            f"  on {held['n']} held-out rows: review rate {_fmt(held['review_rate'])}, precision "
            f"{_fmt(held['precision'])}, errors caught {_fmt(held['errors_caught'])}"
        )


def calibrate_command(
    file: Path = typer.Argument(..., metavar="FILE.jsonl", help="Predictions JSONL: "
                                "confidence, correct, optional probs/label/gold."),
    json_out: bool = typer.Option(False, "--json", help="Print every metric as JSON on stdout."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a reliability diagram and "
                                     "risk-coverage curve to this PNG."),
    method: str | None = typer.Option(None, "--method", metavar="METHOD",
                                      help="temperature | platt | isotonic: fit on one split, "
                                      "report before/after on the other."),
    fit_split: float | None = typer.Option(None, "--fit-split", help="Share of rows to fit on "
                                           "(default 0.5 with --method; 1.0 = fit on all)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the bootstrap."),
    save: Path | None = typer.Option(None, "--save", help="Write the fitted calibrator here."),
    model: str | None = typer.Option(None, "--model", help="Model the calibrator belongs to; "
                                     "without --save it goes to $LOGPROBE_HOME/calibrators/."),
    target: str | None = typer.Option(None, "--target", metavar="KIND=VALUE",
                                      help="errors_caught=0.8 | precision=0.95 | "
                                      "review_rate=0.1 | escalation_cost=0.2"),
    bins: int = typer.Option(15, "--bins", help="Number of confidence bins."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples (0 = none)."),
) -> None:
    """Calibration metrics, recalibration and threshold picking for a predictions file."""
    from ..calibration import (
        METHODS,
        ReportOptions,
        calibration_report,
        parse_target,
        read_predictions,
        save_calibrator,
    )

    if method is not None and method not in METHODS:
        raise CalibrationError(f"unknown --method {method!r}; choose one of {', '.join(METHODS)}",
                               param="method")
    if (save is not None or model is not None) and method is None:
        raise CalibrationError("--save/--model store a calibrator: choose one with --method "
                               "temperature|platt|isotonic", param="method")
    if bootstrap < 0:
        raise CalibrationError("--bootstrap must be >= 0", param="bootstrap")
    opts = ReportOptions(
        n_bins=bins, n_boot=bootstrap, seed=seed, fit_split=fit_split,
        method=method,
        target=None if target is None else parse_target(target), model=model,
    )
    preds = read_predictions(file)
    err = Console(stderr=True)
    if preds.n_skipped:
        err.print(f"skipped {preds.n_skipped} bad row(s): "
                  + "; ".join(str(s) for s in preds.skipped[:5])
                  + (" ..." if preds.n_skipped > 5 else ""), highlight=False)
    with err.status("computing metrics and bootstrap intervals"):
        report, cal = calibration_report(preds, opts)
    if method is not None and cal is None and (save is not None or model is not None):
        raise CalibrationError(f"cannot save: {report['recalibration'].get('error')}",
                               param="method")
    if cal is not None and (save is not None or model is not None):
        report["saved_calibrator"] = str(save_calibrator(cal, save))
    if plot is not None:
        report["plot"] = str(_plot(plot, preds, cal, opts, report))
    if json_out:
        typer.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    console = Console(highlight=False, soft_wrap=True)
    _print_report(report, console)
    for key, what in (("saved_calibrator", "calibrator written to"), ("plot", "plot written to")):
        if key in report:
            console.print(f"{what} {report[key]}")


def _plot(path: Path, preds: Any, cal: Any, opts: Any, report: dict[str, Any]) -> Path:
    """Raw vs calibrated on the held-out split when recalibrating, else raw on all rows."""
    from ..calibration import save_calibration_plot, split_indices
    from ..calibration.report import calibrated_outputs

    title = f"{Path(str(preds.source)).name} ({preds.n} predictions)"
    rec = report.get("recalibration")
    if cal is not None and rec and rec.get("eval_n"):
        _, eval_idx = split_indices(preds.n, rec["fit_split"], opts.seed)
        held = preds.subset(eval_idx)
        return save_calibration_plot(
            path, held.confidence, held.correct, calibrated=calibrated_outputs(cal, held)[0],
            calibrated_label=cal.method, n_bins=rec.get("n_bins", report["n_bins"]),
            title=f"{title}: {held.n} held-out rows",
        )
    return save_calibration_plot(path, preds.confidence, preds.correct,
                                 n_bins=report["n_bins"], title=title)


def register(app: typer.Typer) -> None:
    """Add ``logprobe calibrate`` to ``app``."""
    app.command("calibrate")(calibrate_command)
