"""Application commands: ``relevance``, ``support``, ``moderate``, ``autocomplete``, ``triage``.

Each is a thin shell over :mod:`logprobe.tasks` (relevance, moderate, autocomplete, triage);
the recipes with exact commands are in ``docs/RECIPES.md``. This module holds the retrieval
commands and registers the others from :mod:`.apps_moderate` and :mod:`.apps_route`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import CalibrationError, InvalidRequestError
from ..tasks.ranking_metrics import RankingReport
from ..tasks.relevance import (
    METHODS,
    Method,
    RelevanceResult,
    check_method,
    relevance,
    support,
)
from ..tasks.relevance_eval import (
    Question,
    load_questions,
    method_reports,
    order_report,
    overlap_report,
    random_baseline,
    score_questions,
    select_questions,
)
from ._tasks_common import engine_from, print_json, progress_bar, split_list, stdout_console
from .apps_moderate import moderate_cmd
from .apps_route import autocomplete_cmd, triage_cmd

MODEL_HELP = (
    "GGUF path, 'gemma', or an http(s):// OpenAI-compatible URL ('URL#model'); "
    "default: the embedded SmolLM2-135M-Instruct."
)


def read_calibrator_arg(path: Path | None) -> Any | None:
    """A calibrator JSON file (``logprobe calibrate`` format) or None; one-line error if bad."""
    if path is None:
        return None
    from ..calibration import read_calibrator

    try:
        return read_calibrator(path)
    except CalibrationError as e:
        raise InvalidRequestError(
            f"Invalid 'calibrator': {e.message}", param="calibrator"
        ) from None


def relevance_cmd(
    question: Optional[str] = typer.Argument(None, help="The question (or --dataset)."),
    passages: list[str] = typer.Argument(None, help="Candidate passages (or --file)."),
    file: Optional[Path] = typer.Option(None, "--file", help="Candidates, one per line."),
    method: str = typer.Option(
        "ql",
        help="Rank by: ql | judge | combined (ql ranked best on WikiQA with the embedded model).",
    ),
    weight: float = typer.Option(1.0, help="Query likelihood's weight in 'combined'."),
    calibrator: Optional[Path] = typer.Option(None, help="Calibrator JSON for P(yes)."),
    dataset: Optional[Path] = typer.Option(None, help="Labelled rows (qrels-style) to evaluate."),
    qid_col: str = typer.Option("qid", help="Question id column."),
    question_col: str = typer.Option("question", help="Question column."),
    passage_col: str = typer.Option("passage", help="Passage column."),
    label_col: str = typer.Option("label", help="Relevance grade column (0 = not relevant)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl | csv | tsv"),
    limit: Optional[int] = typer.Option(None, help="Only this many questions."),
    seed: Optional[int] = typer.Option(None, help="Seeded random questions with --limit."),
    keep_all: bool = typer.Option(
        False,
        "--all",
        help="Keep questions with no or only relevant candidates (default: leave them out).",
    ),
    k: int = typer.Option(10, help="Cut-off of nDCG@k."),
    out: Optional[Path] = typer.Option(None, help="Per-question results (JSONL)."),
    run: Optional[Path] = typer.Option(None, help="Write a TREC run file (--method's score)."),
    workers: int = typer.Option(2, help="Questions in flight (the engine batches them)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Rank passages for a question: P(yes) judgement, query likelihood, their combination."""
    how = check_method(method)
    cal = read_calibrator_arg(calibrator)
    if dataset is not None:
        if question is not None:
            raise InvalidRequestError("give a QUESTION or --dataset (not both)", param="question")
        loaded = load_questions(
            dataset,
            qid_col=qid_col,
            question_col=question_col,
            passage_col=passage_col,
            label_col=label_col,
            fmt=fmt,
        )
        qs = select_questions(loaded.questions, limit=limit, seed=seed, filtered=not keep_all)
        if not qs:
            raise InvalidRequestError(
                "Invalid 'dataset': no question has both relevant and "
                "non-relevant candidates (use --all).",
                param="dataset",
            )
        with engine_from(model, threads=threads) as engine:
            d = _relevance_dataset(engine, qs, cal, weight, workers, k, out, run, how)
        d["skipped_rows"] = loaded.skipped
        print_json(d) if json_out else _print_dataset(d)
        return
    if question is None:
        raise InvalidRequestError("give a QUESTION and passages, or --dataset", param="question")
    cands = list(passages or [])
    if file is not None:
        cands += split_list(f"@{file}", param="file") or []
    if not cands:
        raise InvalidRequestError(
            "Invalid 'passages': no candidate passages (give them after "
            "the question or with --file).",
            param="passages",
        )
    with engine_from(model, threads=threads) as engine:
        result = relevance(engine, question, cands, method=how, calibrator=cal, weight=weight)
    print_json(result.to_dict()) if json_out else _print_ranking(result)


def _relevance_dataset(
    engine: Any,
    qs: list[Question],
    cal: Any,
    weight: float,
    workers: int,
    k: int,
    out: Path | None,
    run: Path | None,
    how: Method,
) -> dict[str, Any]:
    sink = None if out is None else out.open("w", encoding="utf-8")
    try:
        with progress_bar() as bar:
            task = bar.add_task("relevance", total=len(qs))

            def on_q(q: Question, r: RelevanceResult | None, err: str | None) -> None:
                bar.advance(task)
                if sink is not None and r is not None:
                    sink.write(
                        json.dumps(
                            {"qid": q.qid, "grades": list(q.grades), **r.to_dict()},
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
                    sink.flush()

            scored, failed = score_questions(
                engine,
                qs,
                calibrator=cal,
                weight=weight,
                workers=workers,
                on_question=on_q,
                method=how,
            )
    finally:
        if sink is not None:
            sink.close()
    if run is not None:
        _write_run(run, scored)
    done = [q for q, _ in scored]
    reports: dict[str, RankingReport] = {
        **method_reports(scored, k=k),
        "word_overlap": overlap_report(done, k=k),
        "document_order": order_report(done, k=k),
    }
    return {
        "questions": len(done),
        "failed": failed,
        "calibrated": cal is not None,
        "k": k,
        "methods": {m: r.to_dict(n_boot=1000, seed=0) for m, r in reports.items()},
        "random": random_baseline(done, k=k),
    }


def _write_run(path: Path, scored: list[tuple[Question, RelevanceResult]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for q, r in scored:
            for c in r.ranked:
                f.write(f"{q.qid} Q0 {c.index} {c.rank} {c.score(r.method):.6f} logprobe\n")


def _print_ranking(r: RelevanceResult) -> None:
    table = Table(
        title=f"{r.question}  (ranked by {r.method}{', calibrated' if r.calibrated else ''})"
    )
    for col in ("rank", "passage", "P(yes)", "log P(q|p)", "P(q from p)", "combined"):
        table.add_column(col, justify="left" if col == "passage" else "right")
    for c in r.ranked:
        text = c.passage if len(c.passage) <= 70 else c.passage[:67] + "..."
        table.add_row(
            str(c.rank),
            escape(text),
            f"{c.p_yes:.3f}",
            f"{c.ql_logprob:.2f}",
            f"{c.ql_posterior:.3f}",
            f"{c.combined:.2f}",
        )
    stdout_console().print(table)


def _print_dataset(d: dict[str, Any]) -> None:
    console = stdout_console()
    table = Table(title=f"{d['questions']} questions (95% bootstrap intervals)")
    for col in ("method", "MAP", "MRR", f"nDCG@{d['k']}", "P@1"):
        table.add_column(col, justify="left" if col == "method" else "right")
    rnd = d["random"]
    table.add_row(
        "random (mean of 100)", *(f"{rnd[m]:.3f}" for m in ("map", "mrr", f"ndcg@{d['k']}", "p@1"))
    )
    for name, m in d["methods"].items():
        ci = m.get("ci95") or {}
        table.add_row(
            name, *(_cell(m[key], ci.get(key)) for key in ("map", "mrr", f"ndcg@{d['k']}", "p@1"))
        )
    console.print(table)
    for f in d["failed"][:10]:
        console.print(f"failed {f['qid']}: {f['error']}")


def _cell(v: float, ci: list[float] | None) -> str:
    return f"{v:.3f}" + ("" if not ci else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def support_cmd(
    passage: str = typer.Argument(..., help="The retrieved passage."),
    answer: str = typer.Argument(..., help="The proposed answer."),
    question: Optional[str] = typer.Option(None, help="The question (improves the prompt)."),
    calibrator: Optional[Path] = typer.Option(None, help="Calibrator JSON for P(supported)."),
    threshold: float = typer.Option(0.5, help="Supported when P >= this."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """RAG check: probability that the passage supports the proposed answer."""
    cal = read_calibrator_arg(calibrator)
    with engine_from(model, threads=threads) as engine:
        r = support(
            engine,
            passage,
            answer,
            question=question or "(not given)",
            calibrator=cal,
            threshold=threshold,
        )
    if json_out:
        print_json(r.to_dict())
        return
    verdict = "supported" if r.supported else "not supported"
    stdout_console().print(
        f"{verdict}: P = {r.p_supported:.3f} (raw {r.raw_p_supported:.3f}, "
        f"threshold {r.threshold:g}{', calibrated' if r.calibrated else ''})"
    )


def register(app: typer.Typer) -> None:
    """Add the application commands to ``app``."""
    app.command("relevance")(relevance_cmd)
    app.command("support")(support_cmd)
    app.command("moderate")(moderate_cmd)
    app.command("autocomplete")(autocomplete_cmd)
    app.command("triage")(triage_cmd)


__all__ = ["METHODS", "register"]
