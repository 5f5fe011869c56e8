"""``logprobe score --dataset``: teacher-forced logprobs and perplexity of every row of a
JSONL/CSV/TSV file, one JSON line per row (keyed by ``index`` and ``line``), on the local
engine or on Ray actors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import InvalidRequestError
from ..execution import JsonlSink, run_dataset
from ..execution.rows import SCORE_ROWS, ScoreRow, check_top_logprobs, score_items, score_totals
from ._execution import ExecChoice, describe, open_executor, rate_progress
from ._output import print_json, stdout


def engine_model(model: str | None, base_url: str | None) -> str | None:
    """The ``--model`` spec of the execution layer: ``URL#name`` with ``--base-url``."""
    if base_url is None:
        return model
    if not model:
        raise InvalidRequestError(
            "--base-url needs --model NAME (the server's model name)", param="model"
        )
    return ",".join(f"{u.strip()}#{model}" for u in base_url.split(",") if u.strip())


def score_dataset(
    dataset: Path,
    *,
    out: Path | None,
    text_col: str,
    prompt_col: str | None,
    fmt: str | None,
    top_logprobs: int,
    model: str | None,
    threads: int | None,
    workers: int,
    resume: bool,
    choice: ExecChoice,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Score every row of ``dataset`` into ``out``; the summary's figures cover every row of
    this dataset in ``out`` (kept ones too)."""
    check_top_logprobs(top_logprobs)
    items = list(score_items(dataset, text_col=text_col, prompt_col=prompt_col, fmt=fmt))
    target = out or dataset.with_suffix(".scores.jsonl")
    wanted = {it.index for it in items}
    with (
        open_executor(choice, model, threads=threads, workers=workers, api_key=api_key) as executor,
        JsonlSink(target, key="index", resume=resume) as sink,
        rate_progress() as bar,
    ):
        task = bar.add_task("score", total=len(items))
        run = run_dataset(
            executor,
            ScoreRow(top_logprobs),
            items,
            sink,
            SCORE_ROWS,
            on_row=lambda *_: bar.advance(task),
        )
        totals = score_totals(r for r in sink.records() if r.get("index") in wanted)
        model_name, execution = executor.model_name, describe(executor)
    return {
        "out": str(target),
        "rows": run.rows,
        "written": run.written,
        "resumed": run.resumed,
        "skipped": len(run.skipped),
        "skipped_rows": run.skipped,
        "model": model_name,
        **totals,
        "execution": execution,
    }


def print_score_summary(d: dict[str, Any]) -> None:
    stdout.print(
        f"wrote {d['written']} scored rows to {d['out']} ({d['resumed']} kept from "
        f"before, {d['skipped']} skipped)"
    )
    if d["perplexity"] is not None:
        stdout.print(
            f"{d['texts']} texts, {d['n_scored']} tokens scored: perplexity "
            f"{d['perplexity']:.4f}, {d['bits_per_byte']:.4f} bits/byte"
        )
    err = Console(stderr=True)
    for s in d["skipped_rows"][:20]:
        err.print(f"skipped line {s['line']}: {s['error']}", markup=False, highlight=False)


__all__ = ["engine_model", "print_json", "print_score_summary", "score_dataset"]
