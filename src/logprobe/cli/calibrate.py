"""``logprobe calibrate``: calibration metrics, recalibration and threshold picking for a
predictions JSONL file (a thin shell over :mod:`logprobe.calibration`).

A fitted calibrator is saved under the task signature the rows record (model, labels, prompt,
method, normalisation), where ``logprobe classify`` finds it for the same task only; ``--save``
writes it elsewhere; ``--no-save`` only reports. It is never fitted and dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import CalibrationError
from ._calibrate_print import print_report

ALL_METHODS = ("temperature", "platt", "isotonic", "vector", "matrix", "contextual", "auto")


def _check_options(
    method: str | None,
    save: Path | None,
    no_save: bool,
    model: str | None,
    bootstrap: int,
    fit_split: float | None,
) -> None:
    if model is not None:
        raise CalibrationError(
            "--model is gone: a calibrator belongs to a task (model, labels, prompt, method, "
            "normalisation) recorded in the predictions rows and is saved under it by default; "
            "use --save PATH for a file of your choice",
            param="model",
        )
    if method is not None and method not in ALL_METHODS:
        raise CalibrationError(
            f"unknown --method {method!r}; choose one of {', '.join(ALL_METHODS)}", param="method"
        )
    if (save is not None or no_save) and method is None:
        raise CalibrationError(
            "--save/--no-save are about a fitted calibrator: choose one with --method",
            param="method",
        )
    if save is not None and no_save:
        raise CalibrationError("--save and --no-save contradict each other", param="save")
    if bootstrap < 0:
        raise CalibrationError("--bootstrap must be >= 0", param="bootstrap")
    if fit_split is not None and not 0 < fit_split <= 1:
        raise CalibrationError(
            f"fit fraction must be in (0, 1], got {fit_split}", param="fit_split"
        )


def _contextual(
    method: str | None, signature: Any, engine_spec: str | None, err: Console
) -> Any | None:
    """The contextual calibrator measured with the task's model (contextual, or auto when the
    model can be opened); None for other methods."""
    if method not in ("contextual", "auto"):
        return None
    if signature is None:
        if method == "contextual":
            raise CalibrationError(
                "contextual calibration rebuilds the task's prompt from the "
                "rows' task signature, and these rows have none",
                param="method",
            )
        return None
    from ..engines.llamacpp import default_model_path
    from ..tasks.contextual import fit_contextual_for
    from ._tasks_common import engine_from

    if engine_spec is None and signature.model != Path(default_model_path()).stem:
        if method == "auto":
            err.print(
                f"note: contextual calibration left out of auto: pass --engine for model "
                f"{signature.model!r}"
            )
            return None
        raise CalibrationError(
            f"contextual calibration needs model {signature.model!r}: pass --engine GGUF|URL#model",
            param="engine",
        )
    with engine_from(engine_spec) as engine:
        return fit_contextual_for(engine, signature)


def calibrate_command(
    file: Path = typer.Argument(
        ...,
        metavar="FILE.jsonl",
        help="Predictions JSONL: confidence, correct, optional probs/label/gold.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print every metric as JSON on stdout."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a reliability diagram and risk-coverage curve to this PNG."
    ),
    method: str | None = typer.Option(
        None,
        "--method",
        metavar="METHOD",
        help="temperature | platt | isotonic | vector | matrix | "
        "contextual | auto: fit on one split, report before/after "
        "on the other (or on --eval-file).",
    ),
    fit_split: float | None = typer.Option(
        None,
        "--fit-split",
        help="Share of rows to fit on (default 0.5 with --method, 1.0 with --eval-file).",
    ),
    eval_file: Path | None = typer.Option(
        None,
        "--eval-file",
        help="Evaluate on these predictions (same task) instead of a held-out split.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the bootstrap."),
    save: Path | None = typer.Option(
        None,
        "--save",
        help="Write the fitted calibrator here (default: under the rows' task signature).",
    ),
    no_save: bool = typer.Option(False, "--no-save", help="Only report; keep no calibrator."),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="Model for contextual calibration "
        "(GGUF path, 'gemma', URL#model); default: the embedded "
        "model when the rows come from it.",
    ),
    model: str | None = typer.Option(None, "--model", hidden=True),
    target: str | None = typer.Option(
        None,
        "--target",
        metavar="KIND=VALUE",
        help="errors_caught=0.8 | precision=0.95 | review_rate=0.1 | escalation_cost=0.2",
    ),
    bins: int = typer.Option(15, "--bins", help="Number of confidence bins."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples (0 = none)."),
) -> None:
    """Calibration metrics, recalibration and threshold picking for a predictions file."""
    from ..calibration import (
        ReportOptions,
        calibration_report,
        parse_target,
        read_predictions,
        save_calibrator,
    )

    _check_options(method, save, no_save, model, bootstrap, fit_split)
    preds = read_predictions(file)
    eval_preds = None if eval_file is None else read_predictions(eval_file)
    err = Console(stderr=True)
    for p in (preds, eval_preds):
        if p is not None and p.n_skipped:
            err.print(
                ("" if p is preds else f"{p.source}: ")
                + f"skipped {p.n_skipped} bad row(s): "
                + "; ".join(str(s) for s in p.skipped[:5])
                + (" ..." if p.n_skipped > 5 else ""),
                highlight=False,
            )
    if method is not None and save is None and not no_save:
        preds.require_signature()  # decided before fitting: never fit and drop silently
    signature = preds.signature
    opts = ReportOptions(
        n_bins=bins,
        n_boot=bootstrap,
        seed=seed,
        fit_split=fit_split,
        method=method,
        target=None if target is None else parse_target(target),
        signature=signature,
        contextual=_contextual(method, signature, engine, err),
        eval_preds=eval_preds,
    )
    with err.status("computing metrics and bootstrap intervals"):
        report, cal = calibration_report(preds, opts)
    rec = report.get("recalibration") or {}
    if method is not None and cal is None and "error" in rec and not no_save:
        raise CalibrationError(f"cannot fit {method}: {rec['error']}", param="method")
    if cal is not None and not no_save:
        report["saved_calibrator"] = str(save_calibrator(cal, save))
    elif method is not None:
        report["saved_calibrator"] = None
        report["not_saved_because"] = (
            "--no-save" if no_save else "auto chose no calibration (see recalibration.auto)"
        )
    if plot is not None:
        report["plot"] = str(_plot(plot, preds, cal, opts, report))
    if json_out:
        typer.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    console = Console(highlight=False, soft_wrap=True)
    print_report(report, console)
    if report.get("saved_calibrator"):
        what = (
            ""
            if signature is None or save is not None
            else f" for task {signature.describe()};\n  `logprobe classify` applies it to that task"
        )
        console.print(escape(f"calibrator written to {report['saved_calibrator']}{what}"))
    elif method is not None:
        console.print(f"no calibrator saved: {report['not_saved_because']}")
    if "plot" in report:
        console.print(f"plot written to {report['plot']}")


def _plot(path: Path, preds: Any, cal: Any, opts: Any, report: dict[str, Any]) -> Path:
    """Raw vs calibrated on the evaluation rows when recalibrating, else raw on all rows."""
    from ..calibration import save_calibration_plot, split_indices
    from ..calibration.compare import apply_calibrator

    title = f"{Path(str(preds.source)).name} ({preds.n} predictions)"
    rec = report.get("recalibration")
    if cal is not None and rec and rec.get("eval_n"):
        if opts.eval_preds is not None:
            held = opts.eval_preds
        else:
            _, eval_idx = split_indices(preds.n, rec["fit_split"], opts.seed)
            held = preds.subset(eval_idx)
        after = apply_calibrator(cal, held)
        return save_calibration_plot(
            path,
            held.confidence,
            held.correct,
            calibrated=after.confidence,
            calibrated_label=cal.method,
            n_bins=rec.get("n_bins", report["n_bins"]),
            title=f"{title}: {held.n} evaluation rows",
        )
    return save_calibration_plot(
        path, preds.confidence, preds.correct, n_bins=report["n_bins"], title=title
    )


def register(app: typer.Typer) -> None:
    """Add ``logprobe calibrate`` to ``app``."""
    app.command("calibrate")(calibrate_command)
