"""``logprobe moderate``: one text, or a labelled dataset (report, and ``--fit`` calibration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.markup import escape

from ..errors import InvalidRequestError
from ..tasks.datasets import TextRow, read_rows
from ..tasks.moderate import (
    ModerationResult,
    Policy,
    calibrated_probs,
    decide,
    load_policy,
    moderate,
)
from ..tasks.moderate_fit import fit_moderation, load_fit, save_fit
from ..tasks.runner import ordered_map
from ._dataset_rows import dataset_rows
from ._tasks_common import engine_from, print_json, progress_bar, stdout_console

MODEL_HELP = "GGUF path or 'gemma'; default: the embedded SmolLM2-135M-Instruct."


def moderate_cmd(
    text: Optional[str] = typer.Argument(None, help="Text to moderate (or --dataset)."),
    policy: Path = typer.Option(..., "--policy", help="TOML policy: labels, thresholds."),
    calibration: Optional[Path] = typer.Option(
        None, help="Fit JSON from --fit (calibration and thresholds)."
    ),
    dataset: Optional[Path] = typer.Option(None, help="Labelled JSONL/CSV/TSV to evaluate."),
    text_col: str = typer.Option("text", help="Text column(s)."),
    label_col: Optional[str] = typer.Option(None, help="Gold column (default gold/label)."),
    label_map: Optional[str] = typer.Option(None, help="Map gold values: '0=not offensive,...'."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl | csv | tsv"),
    limit: Optional[int] = typer.Option(None, help="Only this many rows."),
    seed: Optional[int] = typer.Option(None, help="Seeded random rows with --limit."),
    fit: Optional[Path] = typer.Option(
        None, help="Fit calibration + thresholds on the dataset and write them here."
    ),
    target_precision: float = typer.Option(0.95, help="--fit: precision of flagged items."),
    allow_precision: float = typer.Option(0.95, help="--fit: precision of allowed items."),
    workers: int = typer.Option(2, help="Rows in flight (the engine batches them)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Flag, allow or send to review, by a TOML policy with calibrated probabilities."""
    pol = load_policy(policy)
    cals: Any = None
    if calibration is not None:
        loaded = load_fit(calibration, pol)
        pol, cals = pol.with_thresholds(loaded.thresholds), loaded.calibrators
    if (text is None) == (dataset is None):
        raise InvalidRequestError("give a TEXT or --dataset (not both)", param="text")
    with engine_from(model, threads=threads) as engine:
        if text is not None:
            r = moderate(engine, text, pol, calibrators=cals)
            print_json(r.to_dict()) if json_out else _print_one(r)
            return
        assert dataset is not None
        require_columns(
            dataset,
            [c.strip() for c in text_col.split(",")] + ([label_col] if label_col else []),
            fmt,
        )
        rows = dataset_rows(
            dataset,
            text_col=text_col,
            label_col=label_col,
            label_map=label_map,
            labels=pol.labels,
            fmt=fmt,
            limit=limit,
            seed=seed,
        )
        raw, gold, skipped = _raw_probs(engine, pol, rows, workers)
    if not raw:
        raise InvalidRequestError(
            f"Invalid 'dataset': no usable rows ({len(skipped)} skipped; "
            f"first: {skipped[0]['error'] if skipped else 'none'}).",
            param="dataset",
        )
    d: dict[str, Any] = {"rows": len(raw), "skipped": skipped}
    if fit is not None:
        if any(g is None for g in gold):
            raise InvalidRequestError("--fit needs a gold label on every row", param="fit")
        f = fit_moderation(
            pol,
            raw,
            [str(g) for g in gold],
            precision=target_precision,
            allow_precision=allow_precision,
        )
        save_fit(f, pol, fit)
        pol, cals = pol.with_thresholds(f.thresholds), f.calibrators
        d["fit"] = {"path": str(fit), **f.to_dict(pol.name)}
    d.update(_report(pol, raw, gold, cals))
    print_json(d) if json_out else _print_report(d)


def require_columns(path: Path, columns: list[str], fmt: str | None = None) -> None:
    """Reject a dataset whose first row lacks one of ``columns`` (one line, before any work)."""
    for row in read_rows(path, fmt=fmt):
        if row.record is None:
            continue
        missing = [c for c in columns if c not in row.record]
        if missing:
            raise InvalidRequestError(
                f"Invalid 'dataset': missing column {missing[0]!r} (columns: "
                f"{', '.join(map(str, row.record))}).",
                param="dataset",
            )
        return


def _raw_probs(
    engine: Any, pol: Policy, rows: list[TextRow], workers: int
) -> tuple[list[dict[str, float]], list[str | None], list[dict[str, Any]]]:
    skipped = [{"line": r.line, "error": r.error} for r in rows if r.error or r.text is None]
    good = [r for r in rows if not r.error and r.text is not None]
    if not good:
        raise InvalidRequestError(
            f"Invalid 'dataset': no usable rows ({len(skipped)} skipped; "
            f"first: {skipped[0]['error'] if skipped else 'none'}).",
            param="dataset",
        )
    raw: list[dict[str, float]] = []
    gold: list[str | None] = []
    with progress_bar() as bar:
        task = bar.add_task("moderate", total=len(good))
        for o in ordered_map(lambda r: moderate(engine, r.text or "", pol), good, workers=workers):
            bar.advance(task)
            if o.result is None:
                skipped.append({"line": o.item.line, "error": o.error})
                continue
            raw.append(dict(o.result.raw_probs))
            gold.append(o.item.gold)
    return raw, gold, skipped


def _report(
    pol: Policy, raw: list[dict[str, float]], gold: list[str | None], cals: Any
) -> dict[str, Any]:
    from ..calibration import ece
    from ..calibration.recalibrate import require_sklearn

    require_sklearn("the moderation report's macro-F1")
    from sklearn.metrics import f1_score

    q = [calibrated_probs(pol, r, cals) for r in raw]
    decisions = [decide(pol, p)[0:2] for p in q]
    counts = {k: sum(1 for d, _ in decisions if d == k) for k in ("flag", "allow", "review")}
    out: dict[str, Any] = {
        "decisions": counts,
        "calibrated": bool(cals),
        "review_rate": counts["review"] / len(q),
    }
    if any(g is None for g in gold):
        return out
    pred = [max(p, key=lambda k: p[k]) for p in q]
    out["macro_f1"] = float(
        f1_score(gold, pred, average="macro", labels=list(pol.labels), zero_division=0)
    )
    out["accuracy"] = float(np.mean([a == b for a, b in zip(pred, gold, strict=True)]))
    for label in pol.flaggable:
        y = [g == label for g in gold]
        flagged = [d == "flag" and lb == label for d, lb in decisions]
        n_flag = sum(flagged)
        hits = sum(f and t for f, t in zip(flagged, y, strict=True))
        out[f"flag_precision:{label}"] = hits / n_flag if n_flag else None
        out[f"ece_raw:{label}"] = ece([r[label] for r in raw], y, n_bins=10)
        if cals:
            out[f"ece_calibrated:{label}"] = ece([p[label] for p in q], y, n_bins=10)
    return out


def _print_one(r: ModerationResult) -> None:
    console = stdout_console()
    probs = ", ".join(f"{k} {v:.3f}" for k, v in r.probs.items())
    console.print(
        escape(f"{r.decision}: {r.label}  ({probs}{'; calibrated' if r.calibrated else ''})")
    )
    for reason in r.reasons:
        console.print(escape(f"  {reason}"))


def _print_report(d: dict[str, Any]) -> None:
    console = stdout_console()
    c = d["decisions"]
    console.print(
        f"{d['rows']} rows: flag {c['flag']}, allow {c['allow']}, review {c['review']}"
        f" (review rate {d['review_rate']:.3f}); {len(d['skipped'])} skipped"
    )
    for key, value in d.items():
        if key.startswith(("macro_f1", "accuracy", "flag_precision", "ece_")):
            console.print(f"{key}: {'n/a' if value is None else f'{value:.4f}'}")
    if "fit" in d:
        console.print(f"fit written to {d['fit']['path']}: thresholds {d['fit']['thresholds']}")


__all__ = ["moderate_cmd", "require_columns"]
