"""``logprobe autocomplete`` and ``logprobe triage`` (one input, or a labelled dataset)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from ..errors import InvalidRequestError
from ..tasks.autocomplete import AutocompleteResult, autocomplete, expand_top_k
from ..tasks.datasets import parse_label_map, subset, text_rows
from ..tasks.runner import ordered_map
from ..tasks.triage import (
    TICKET_LABELS,
    TICKET_TEMPLATE,
    TriageResult,
    TriageThresholds,
    actions_for,
    content_free_prior,
    fit_triage,
    top_two,
    triage,
)
from ._tasks_common import engine_from, print_json, progress_bar, split_list, stdout_console
from .apps_moderate import require_columns

MODEL_HELP = (
    "GGUF path, 'gemma', or an http(s):// OpenAI-compatible URL ('URL#model'); "
    "default: the embedded SmolLM2-135M-Instruct."
)


def autocomplete_cmd(
    prefix: Optional[str] = typer.Argument(None, help="Text typed so far (or --dataset)."),
    candidates: list[str] = typer.Argument(
        None, help="Candidates to rank (default: the model's own top-k, expanded to whole words)."
    ),
    file: Optional[Path] = typer.Option(None, "--file", help="Candidates, one per line."),
    top_k: int = typer.Option(10, help="Next-token alternatives to expand."),
    dataset: Optional[Path] = typer.Option(
        None, help="JSONL of passages: predict each last word (LAMBADA)."
    ),
    text_col: str = typer.Option("text", help="Passage column."),
    limit: Optional[int] = typer.Option(None, help="Only this many passages."),
    seed: Optional[int] = typer.Option(None, help="Seeded random passages with --limit."),
    workers: int = typer.Option(2, help="Passages in flight."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Rank whole-word continuations of a prefix (given candidates or the model's top-k)."""
    if dataset is not None:
        if prefix is not None:
            raise InvalidRequestError("give a PREFIX or --dataset (not both)", param="prefix")
        with engine_from(model, threads=threads) as engine:
            d = _lambada(engine, dataset, text_col, limit, seed, top_k, workers)
        print_json(d) if json_out else _print_lambada(d)
        return
    if prefix is None:
        raise InvalidRequestError("give a PREFIX or --dataset", param="prefix")
    cands: list[str] | None = list(candidates) if candidates else None
    if file is not None:
        cands = (cands or []) + (split_list(f"@{file}", param="file") or [])
        if not cands:
            raise InvalidRequestError(
                f"Invalid 'candidates': {file} holds no candidates.", param="candidates"
            )
    with engine_from(model, threads=threads) as engine:
        result = autocomplete(engine, prefix, cands, top_k=top_k)
    print_json(result.to_dict()) if json_out else _print_completions(result)


def _lambada(
    engine: Any,
    path: Path,
    text_col: str,
    limit: int | None,
    seed: int | None,
    top_k: int,
    workers: int,
) -> dict[str, Any]:
    require_columns(path, [text_col])
    rows = subset([r for r in text_rows(path, text_col=text_col, label_col=None)], limit, seed)
    skipped = [{"line": r.line, "error": r.error} for r in rows if r.text is None]
    good = [r for r in rows if r.text is not None and " " in r.text.strip()]
    recs = []
    with progress_bar() as bar:
        task = bar.add_task("autocomplete", total=len(good))

        def one(r: Any) -> dict[str, Any]:
            ctx, target = r.text.rstrip().rsplit(" ", 1)
            res = expand_top_k(engine, ctx, top_k=top_k)
            return {
                "rank": res.rank_of(target) or 0,
                "token_top1": (res.top_token or "").strip() == target,
                "greedy": res.greedy_word == target,
            }

        for o in ordered_map(one, good, workers=workers):
            bar.advance(task)
            if o.result is None:
                skipped.append({"line": o.item.line, "error": o.error})
            else:
                recs.append(o.result)
    if not recs:
        raise InvalidRequestError("Invalid 'dataset': no usable passages.", param="dataset")
    rank = np.array([r["rank"] for r in recs], dtype=np.float64)
    return {
        "n": len(recs),
        "top_k": top_k,
        "skipped": skipped,
        "ranked_accuracy": float(np.mean(rank == 1)),
        "ranked_mrr": float(np.mean(np.where(rank > 0, 1 / np.maximum(rank, 1), 0.0))),
        "recall": float(np.mean(rank > 0)),
        "token_top1_accuracy": float(np.mean([r["token_top1"] for r in recs])),
        "greedy_word_accuracy": float(np.mean([r["greedy"] for r in recs])),
    }


def _print_completions(r: AutocompleteResult) -> None:
    table = Table(
        title=f"after {r.prefix[-40:]!r} ({r.source}"
        + (f"; top token {r.top_token!r}" if r.top_token else "")
        + ")"
    )
    for col in ("rank", "completion", "logprob", "tokens", "prob"):
        table.add_column(col, justify="left" if col == "completion" else "right")
    for c in r.ranked:
        table.add_row(
            str(c.rank), escape(c.text), f"{c.logprob:.3f}", str(c.n_tokens), f"{c.prob:.3f}"
        )
    stdout_console().print(table)


def _print_lambada(d: dict[str, Any]) -> None:
    console = stdout_console()
    console.print(f"{d['n']} passages, top-{d['top_k']} expanded to whole words:")
    for key in (
        "ranked_accuracy",
        "ranked_mrr",
        "recall",
        "token_top1_accuracy",
        "greedy_word_accuracy",
    ):
        console.print(f"  {key}: {d[key]:.4f}")


def _thresholds(path: Path | None, margin: float | None, mass: float | None) -> TriageThresholds:
    base = TriageThresholds()
    if path is not None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            base = TriageThresholds(float(data["clarify_margin"]), float(data["escalate_mass"]))
        except FileNotFoundError:
            raise InvalidRequestError(
                f"Invalid 'thresholds': no such file {str(path)!r}.", param="thresholds"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InvalidRequestError(
                f"Invalid 'thresholds': {path.name} needs clarify_margin "
                f"and escalate_mass ({e!r}).",
                param="thresholds",
            ) from None
    return TriageThresholds(
        base.clarify_margin if margin is None else margin,
        base.escalate_mass if mass is None else mass,
    )


def triage_cmd(
    text: Optional[str] = typer.Argument(None, help="Support message (or --dataset)."),
    labels: str = typer.Option(
        ",".join(TICKET_LABELS), "--labels", "-l", help="Teams, comma-separated or @FILE."
    ),
    answer: Optional[str] = typer.Option(
        None,
        help="The customer's answer to the clarifying "
        "question (routes again, escalates if still unsure).",
    ),
    thresholds: Optional[Path] = typer.Option(None, help="JSON from --fit."),
    clarify_margin: Optional[float] = typer.Option(None, help="Clarify below this top-2 margin."),
    escalate_mass: Optional[float] = typer.Option(None, help="Escalate below this top-2 mass."),
    template: str = typer.Option(TICKET_TEMPLATE, help="Prompt with {text} and {labels}."),
    no_prior: bool = typer.Option(
        False, "--no-prior", help="Skip the content-free prior correction."
    ),
    strong: Optional[str] = typer.Option(None, help="Escalate to this model first: " + MODEL_HELP),
    dataset: Optional[Path] = typer.Option(None, help="Labelled tickets: fit and report."),
    text_col: str = typer.Option("text", help="Text column."),
    label_col: Optional[str] = typer.Option(None, help="Gold column (default gold/label)."),
    label_map: Optional[str] = typer.Option(None, help="Map gold values."),
    fit: Optional[Path] = typer.Option(None, help="Write the fitted thresholds here."),
    route_precision: float = typer.Option(0.9, help="--dataset: accuracy of routed tickets."),
    clarify_precision: float = typer.Option(
        0.9, help="--dataset: right team among the two offered."
    ),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Route a support message, ask a clarifying question, or escalate."""
    labs = split_list(labels, param="labels") or []
    th = _thresholds(thresholds, clarify_margin, escalate_mass)
    tpl = template.replace("\\n", "\n")
    if (text is None) == (dataset is None):
        raise InvalidRequestError("give a TEXT or --dataset (not both)", param="text")
    with engine_from(model, threads=threads) as engine:
        prior = None if no_prior else content_free_prior(engine, labs, tpl, False)
        if text is not None:
            if strong is not None:
                with engine_from(strong, threads=threads) as big:
                    r = triage(
                        engine,
                        text,
                        labels=labs,
                        thresholds=th,
                        template=tpl,
                        answer=answer,
                        strong=big,
                        prior=prior,
                    )
            else:
                r = triage(
                    engine,
                    text,
                    labels=labs,
                    thresholds=th,
                    template=tpl,
                    answer=answer,
                    prior=prior,
                )
            print_json(r.to_dict()) if json_out else _print_triage(r)
            return
        assert dataset is not None
        d = _triage_dataset(
            engine,
            dataset,
            labs,
            tpl,
            prior,
            text_col,
            label_col,
            label_map,
            route_precision,
            clarify_precision,
        )
    if fit is not None:
        fit.write_text(json.dumps(d["thresholds"], indent=2) + "\n", encoding="utf-8")
    print_json(d) if json_out else _print_triage_report(d)


def _triage_dataset(
    engine: Any,
    path: Path,
    labs: list[str],
    tpl: str,
    prior: Any,
    text_col: str,
    label_col: str | None,
    label_map: str | None,
    route_precision: float,
    clarify_precision: float,
) -> dict[str, Any]:
    require_columns(path, [text_col] + ([label_col] if label_col else []))
    rows = list(
        text_rows(
            path,
            text_col=text_col,
            label_col=label_col,
            label_map=parse_label_map(label_map),
            labels=labs,
        )
    )
    skipped = [{"line": r.line, "error": r.error} for r in rows if r.text is None]
    good = [r for r in rows if r.text is not None and r.gold is not None]
    if len(good) < 2:
        first = skipped[0]["error"] if skipped else "no gold labels"
        raise InvalidRequestError(
            f"Invalid 'dataset': fewer than two labelled rows "
            f"({len(skipped)} skipped; first: {first}).",
            param="dataset",
        )
    probs: list[dict[str, float]] = []
    gold: list[str] = []
    never = TriageThresholds(0.0, 0.0)
    with progress_bar() as bar:
        task = bar.add_task("triage", total=len(good))
        for o in ordered_map(
            lambda r: triage(
                engine, r.text or "", labels=labs, thresholds=never, template=tpl, prior=prior
            ),
            good,
            workers=2,
        ):
            bar.advance(task)
            if o.result is None:
                skipped.append({"line": o.item.line, "error": o.error})
                continue
            probs.append(dict(o.result.probs))
            gold.append(str(o.item.gold))
    if len(probs) < 2:
        raise InvalidRequestError(
            "Invalid 'dataset': fewer than two labelled rows.", param="dataset"
        )
    f = fit_triage(
        probs, gold, route_precision=route_precision, clarify_precision=clarify_precision
    )
    acts = actions_for(probs, f.thresholds)
    tops = [top_two(p)[0] for p in probs]
    n = len(probs)
    routed = [i for i, a in enumerate(acts) if a == "route"]
    clar = [i for i, a in enumerate(acts) if a == "clarify"]
    return {
        "rows": n,
        "skipped": skipped,
        "thresholds": f.to_dict(),
        "accuracy": sum(t[0] == g for t, g in zip(tops, gold, strict=True)) / n,
        "route_rate": len(routed) / n,
        "clarify_rate": len(clar) / n,
        "escalate_rate": acts.count("escalate") / n,
        "routed_accuracy": (
            sum(tops[i][0] == gold[i] for i in routed) / len(routed) if routed else None
        ),
        "clarify_top2_recall": (
            sum(gold[i] in tops[i] for i in clar) / len(clar) if clar else None
        ),
    }


def _print_triage(r: TriageResult) -> None:
    console = stdout_console()
    probs = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r.probs.items(), key=lambda x: -x[1]))
    head = {
        "route": f"route to {r.label}",
        "clarify": "ask a clarifying question",
        "escalate": f"escalate to {r.escalated_to}"
        + (f" (strong model routes to {r.label})" if r.label else ""),
    }[r.action]
    console.print(escape(f"{head}  ({probs})"))
    if r.question:
        console.print(escape(f"question: {r.question}"))
    for reason in r.reasons:
        console.print(escape(f"  {reason}"))


def _print_triage_report(d: dict[str, Any]) -> None:
    console = stdout_console()
    th = d["thresholds"]
    console.print(
        f"{d['rows']} tickets; clarify below margin {th['clarify_margin']:.3f}, "
        f"escalate below top-2 mass {th['escalate_mass']:.3f}"
    )
    for key in (
        "accuracy",
        "route_rate",
        "routed_accuracy",
        "clarify_rate",
        "clarify_top2_recall",
        "escalate_rate",
    ):
        v = d[key]
        console.print(f"  {key}: {'n/a' if v is None else f'{v:.4f}'}")
    for note in th["notes"]:
        console.print(f"  note: {note}")


__all__ = ["autocomplete_cmd", "triage_cmd"]
