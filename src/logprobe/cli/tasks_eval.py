"""``logprobe eval``: multiple-choice accuracy, log-likelihood, perplexity, model comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ..errors import InvalidRequestError
from ..execution.rows import MCRow, mc_report
from ..tasks import compare_texts, load_mc_items, loglikelihood, read_rows, subset
from ..tasks.datasets import MCItem
from ..tasks.evaluate import METRICS, MCReport, MCResult, rolling_perplexity
from ._execution import (
    ActorCpusOpt,
    ActorsOpt,
    ExecChoice,
    RayAddressOpt,
    RayOpt,
    open_executor,
    rate_progress,
)
from ._tasks_common import engine_from, local_engine, print_json, stdout_console

MODEL_HELP = "GGUF path or 'gemma'; default: the embedded SmolLM2-135M-Instruct."

eval_app = typer.Typer(
    help="Evaluate models by likelihood: mc, loglik, perplexity, compare.", no_args_is_help=True
)


@eval_app.command("mc")
def mc_cmd(
    file: Path = typer.Argument(..., help='JSONL items {"query", "choices": [...], "gold": int}.'),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    limit: Optional[int] = typer.Option(None, help="Only this many items."),
    seed: Optional[int] = typer.Option(None, help="With --limit: a seeded random subset."),
    chat_template: bool = typer.Option(
        False, "--chat-template", help="Wrap each query as a user chat message."
    ),
    choice_prefix: str = typer.Option(" ", help="Put before each choice."),
    workers: int = typer.Option(2, help="Items in flight (the engine batches them)."),
    out: Optional[Path] = typer.Option(
        None, help="Write per-item scores (JSONL) here, one flushed line per item."
    ),
    resume: bool = typer.Option(False, help="Keep the items already in --out; score the rest."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON metrics on stdout."),
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
    actor_cpus: ActorCpusOpt = 1.0,
) -> None:
    """Multiple-choice accuracy: acc, acc_norm_tokens, acc_norm_chars (with standard errors)."""
    items, bad = load_mc_items(file)
    items = subset(items, limit, seed)
    if not items:
        raise InvalidRequestError(
            f"Invalid 'file': no usable items in {str(file)!r} ({len(bad)} bad lines).",
            param="file",
        )
    if resume and out is None:
        raise InvalidRequestError("--resume needs --out", param="resume")
    kept = _kept_results(out, items) if resume and out is not None else {}
    todo = [it for it in items if it.line not in kept]
    sink = None if out is None else out.open("a" if resume else "w", encoding="utf-8")
    try:
        choice = ExecChoice(ray, ray_address, actors, actor_cpus)
        with (
            open_executor(choice, model, threads=threads, workers=workers) as executor,
            rate_progress() as bar,
        ):
            task = bar.add_task("eval mc", total=len(items), completed=len(kept))

            def on_item(_item: Any, result: Any, _error: str | None) -> None:
                bar.advance(task)
                if sink is not None and result is not None:
                    sink.write(json.dumps(result.to_dict()) + "\n")
                    sink.flush()

            fresh = mc_report(executor, MCRow(chat_template, choice_prefix), todo, on_item)
            model_name = executor.model_name
    finally:
        if sink is not None:
            sink.close()
    by_line = {**kept, **{r.item.line: r for r in fresh.results}}
    report = MCReport(tuple(by_line[it.line] for it in items if it.line in by_line), fresh.skipped)
    d = report.to_dict()
    d["resumed"] = len(kept)
    d["skipped"] = [{"line": ln, "error": e} for ln, e in bad] + d["skipped"]
    d.update(model=model_name, file=str(file), limit=limit, seed=seed, chat_template=chat_template)
    if json_out:
        print_json(d)
        return
    table = Table(
        title=f"{model_name}: {d['n']} items" + (" (chat template)" if chat_template else "")
    )
    for col in ("metric", "accuracy", "stderr"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for m in METRICS:
        table.add_row(m, f"{d[m]:.4f}", f"{d[m + '_stderr']:.4f}")
    stdout_console().print(table)
    if d["skipped"]:
        stdout_console().print(f"{len(d['skipped'])} items skipped (see --json)")


def _kept_results(out: Path, items: list[MCItem]) -> dict[int, MCResult]:
    """Results already in ``out`` for these items (by line number); torn lines are redone."""
    if not out.is_file():
        return {}
    wanted = {it.line: it for it in items}
    kept: dict[int, MCResult] = {}
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        out.write_bytes(data[: data.rfind(b"\n") + 1])  # drop a line cut short by a crash
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            item = wanted[int(rec["line"])]
            kept[item.line] = MCResult(
                item,
                tuple(float(x) for x in rec["logprobs"]),
                tuple(int(x) for x in rec["n_tokens"]),
                tuple(int(x) for x in rec["n_chars"]),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return kept


@eval_app.command("loglik")
def loglik_cmd(
    context: str = typer.Argument(..., help="The context."),
    continuations: list[str] = typer.Argument(..., help="Continuations to score."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Log-likelihood of each continuation after the context (and whether it is greedy)."""
    with engine_from(model, threads=threads) as engine:
        results = loglikelihood(engine, context, continuations)
    rows = [
        {"continuation": c, **r.to_dict()} for c, r in zip(continuations, results, strict=False)
    ]
    if json_out:
        print_json(rows)
        return
    table = Table()
    for col in ("continuation", "logprob", "tokens", "greedy"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["continuation"], f"{r['logprob']:.4f}", str(r["n_tokens"]), str(r["is_greedy"])
        )
    stdout_console().print(table)


def _texts(file: Path, text_col: str) -> list[str]:
    """Documents of a file: JSONL/CSV/TSV rows (``text_col``) or a whole plain-text file."""
    if file.suffix.lower() in (".jsonl", ".ndjson", ".json", ".csv", ".tsv"):
        texts = []
        for row in read_rows(file):
            if row.record is None:
                raise InvalidRequestError(f"Invalid 'file': {row.error}", param="file")
            value = row.record.get(text_col)
            if not isinstance(value, str):
                raise InvalidRequestError(
                    f"Invalid 'file': line {row.line} has no string field {text_col!r}",
                    param="file",
                )
            texts.append(value)
        return texts
    if not file.is_file():
        raise InvalidRequestError(f"Invalid 'file': no such file {str(file)!r}.", param="file")
    return [file.read_text(encoding="utf-8")]


@eval_app.command("perplexity")
def perplexity_cmd(
    file: Path = typer.Argument(..., help="A text file, or JSONL/CSV/TSV of documents."),
    text_col: str = typer.Option("text", help="Column holding each document."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    window: Optional[int] = typer.Option(None, help="Tokens per window (default n_ctx/2)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Rolling perplexity of documents (windows for documents longer than the context)."""
    texts = _texts(file, text_col)
    with engine_from(model, threads=threads) as engine:
        local = local_engine(engine, "perplexity")
        results = [rolling_perplexity(local, t, window=window) for t in texts]
    total_lp = sum(r.logprob for r in results)
    n_tok = sum(r.n_tokens for r in results)
    n_bytes = sum(r.n_bytes for r in results)
    from ..tasks.evaluate import Perplexity

    overall = Perplexity(total_lp, n_tok, n_bytes, sum(r.windows for r in results)).to_dict()
    d: dict[str, Any] = {
        "documents": len(results),
        **overall,
        "per_document": [r.to_dict() for r in results],
    }
    if json_out:
        print_json(d)
        return
    stdout_console().print(
        f"{len(results)} documents, {n_tok} tokens: perplexity "
        f"{overall['perplexity']:.3f}, {overall['bits_per_byte']:.4f} bits/byte"
    )


@eval_app.command("compare")
def compare_cmd(
    file: Path = typer.Argument(..., help="A text file, or JSONL/CSV/TSV of texts."),
    model_a: Optional[str] = typer.Option(None, "--model-a", "-a", help="Baseline: " + MODEL_HELP),
    model_b: str = typer.Option(..., "--model-b", "-b", help="Candidate: " + MODEL_HELP),
    text_col: str = typer.Option("text", help="Column holding each text."),
    threshold: float = typer.Option(1.0, help="A drop of more than this many nats regresses."),
    top: int = typer.Option(20, help="Show this many worst regressions."),
    threads: Optional[int] = typer.Option(None, help="CPU threads per embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Score the same texts under two models; report per-token regressions (B worse than A)."""
    texts = _texts(file, text_col)
    with engine_from(model_a, threads=threads) as a, engine_from(model_b, threads=threads) as b:
        report = compare_texts(a, b, texts, threshold=threshold)
    d = report.to_dict(top=top)
    if json_out:
        print_json(d)
        return
    console = stdout_console()
    console.print(
        f"A {d['model_a']}: {d['bits_per_byte_a']:.4f} bits/byte; B {d['model_b']}: "
        f"{d['bits_per_byte_b']:.4f} bits/byte; {d['segments']} aligned segments, "
        f"{d['regressions']} regressions, {d['improvements']} improvements "
        f"(|delta| > {threshold} nats)"
    )
    table = Table(title="worst regressions")
    for col in ("text", "segment", "A", "B", "delta"):
        table.add_column(col)
    for w in d["worst"]:
        table.add_row(
            str(w["text_index"]),
            repr(w["text"]),
            f"{w['logprob_a']:.2f}",
            f"{w['logprob_b']:.2f}",
            f"{w['delta']:.2f}",
        )
    console.print(table)
