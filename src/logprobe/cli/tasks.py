"""Task commands: ``classify`` (in :mod:`.tasks_classify`), ``choose``, ``rerank``, ``route``
and the ``eval`` group (in :mod:`.tasks_eval`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ..errors import InvalidRequestError
from ..tasks import choose, rerank, route, route_report
from ._dataset_rows import dataset_rows
from ._tasks_common import (
    engine_from,
    local_engine,
    print_json,
    progress_bar,
    read_json_arg,
    split_list,
    stdout_console,
)
from .tasks_classify import MODEL_HELP, classify_cmd, classify_template
from .tasks_classify import load_calibrator as load_calibrator
from .tasks_eval import eval_app


def choose_cmd(
    prompt: str = typer.Argument(..., help="The prompt."),
    choices: Optional[str] = typer.Option(None, help="Comma-separated choices, or @FILE."),
    regex: Optional[str] = typer.Option(None, help="Output must match this regex."),
    json_schema: Optional[str] = typer.Option(None, help="JSON schema inline, @FILE or FILE.json."),
    lark: Optional[str] = typer.Option(None, help="A Lark grammar (llguidance dialect)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    chat: bool = typer.Option(False, "--chat", help="Send the prompt as a user chat message."),
    prefix: Optional[str] = typer.Option(None, help="Text before the constrained output."),
    normalize: str = typer.Option("none", help="none | tokens | chars (choices only)"),
    max_tokens: Optional[int] = typer.Option(None, help="Token budget (default: enough)."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    seed: Optional[int] = typer.Option(None, help="Sampling seed."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Constrained generation plus the distribution over the allowed choices."""
    schema = None if json_schema is None else read_json_arg(json_schema, param="json_schema")
    with engine_from(model, threads=threads) as engine:
        result = choose(
            local_engine(engine, "choose"),
            prompt,
            choices=split_list(choices, param="choices"),
            regex=regex,
            json_schema=schema,
            lark=lark,
            chat=chat,
            option_prefix=prefix,
            normalize=normalize,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
        )
    if json_out:
        print_json(result.to_dict())
        return
    console = stdout_console()
    console.print(f"output: {result.output!r}" + ("" if result.complete else " (incomplete)"))
    if result.options:
        table = Table(title=f"distribution over choices (best {result.best!r})")
        for col in ("choice", "prob", "logprob", "tokens"):
            table.add_column(col, justify="left" if col == "choice" else "right")
        for o in sorted(result.options, key=lambda o: -o.prob):
            table.add_row(o.text, f"{o.prob:.4f}", f"{o.logprob:.3f}", str(o.n_tokens))
        console.print(table)
    for i, s in enumerate(result.steps):
        alts = ", ".join(f"{a.token!r} {a.prob:.3f}" for a in s.alternatives[:5])
        console.print(f"step {i}: {s.token.token!r}  allowed={s.n_allowed}  [{alts}]")


def rerank_cmd(
    prompt: str = typer.Argument(..., help="The prompt."),
    candidates: list[str] = typer.Argument(None, help="Candidates (or --file)."),
    file: Optional[Path] = typer.Option(None, "--file", help="Candidates, one per line."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    normalize: str = typer.Option("tokens", help="none | tokens | chars"),
    chat: bool = typer.Option(False, "--chat", help="Send the prompt as a user chat message."),
    prefix: Optional[str] = typer.Option(None, help="Text before each candidate (default ' ')."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Candidates ordered by total and normalised logprob."""
    cands = list(candidates or [])
    if file is not None:
        cands += split_list(f"@{file}", param="file") or []
    with engine_from(model, threads=threads) as engine:
        result = rerank(
            engine, prompt, cands, normalize=normalize, chat=chat, candidate_prefix=prefix
        )
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(title=f"ranked by {result.normalize}")
    for col in ("rank", "candidate", "logprob", "per token", "per char", "prob"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for r in result.ranked:
        d = r.to_dict()
        table.add_row(
            str(r.rank),
            r.option.text,
            f"{d['logprob']:.3f}",
            f"{d['mean_logprob']:.3f}",
            f"{d['logprob_per_char']:.3f}",
            f"{d['prob']:.3f}",
        )
    stdout_console().print(table)


def route_cmd(
    text: Optional[str] = typer.Argument(None, help="Input (or --dataset for a report)."),
    strong: str = typer.Option(..., "--strong", help="Stronger model: " + MODEL_HELP),
    cheap: Optional[str] = typer.Option(None, "--cheap", help="Cheap model: " + MODEL_HELP),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Classify into these."),
    signal: Optional[str] = typer.Option(
        None, help="confidence | margin (labels); mean_logprob | min_prob | p10 (generation)"
    ),
    threshold: Optional[float] = typer.Option(None, help="Escalate below this signal value."),
    normalize: str = typer.Option("none", help="none | tokens | chars"),
    template: Optional[str] = typer.Option(None, help="Prompt with {text} and {labels}."),
    dataset: Optional[Path] = typer.Option(None, help="Labelled JSONL/CSV/TSV: threshold report."),
    text_col: str = typer.Option("text", help="Text column(s)."),
    label_col: Optional[str] = typer.Option(None, help="Gold column."),
    label_map: Optional[str] = typer.Option(None, help="Map gold values: '0=neg,1=pos'."),
    limit: Optional[int] = typer.Option(None, help="Only this many rows."),
    seed: Optional[int] = typer.Option(None, help="Random (seeded) rows with --limit."),
    target_accuracy: Optional[float] = typer.Option(
        None, help="Pick the cheapest threshold reaching this accuracy."
    ),
    cheap_cost: float = typer.Option(1.0, help="Cost of one cheap call."),
    strong_cost: float = typer.Option(10.0, help="Cost of one strong call."),
    threads: Optional[int] = typer.Option(None, help="CPU threads per embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Answer with a cheap model; escalate to a strong one when the cheap model is unsure."""
    label_list = split_list(labels, param="labels")
    ckw: dict[str, Any] = dict(normalize=normalize, template=classify_template(template, False))
    with engine_from(cheap, threads=threads) as small, engine_from(strong, threads=threads) as big:
        if dataset is None:
            if text is None:
                raise InvalidRequestError("give a TEXT or --dataset", param="text")
            kw = ckw if label_list is not None else {}
            decision = route(
                small, big, text, labels=label_list, signal=signal, threshold=threshold, **kw
            )
            d = decision.to_dict()
            print_json(d) if json_out else stdout_console().print(
                f"{d['answer']}  (model {d['model']}, {d['signal']}={d['signal_value']}, "
                f"escalated={d['escalated']})"
            )
            return
        if label_list is None:
            raise InvalidRequestError("a --dataset report needs --labels", param="labels")
        rows = dataset_rows(
            dataset,
            text_col=text_col,
            label_col=label_col,
            label_map=label_map,
            labels=label_list,
            limit=limit,
            seed=seed,
        )
        with progress_bar() as bar:
            task = bar.add_task("route", total=len(rows))
            report = route_report(
                small,
                big,
                rows,
                label_list,
                signal=signal or "confidence",
                cheap_cost=cheap_cost,
                strong_cost=strong_cost,
                target_accuracy=target_accuracy,
                on_row=lambda _r: bar.advance(task),
                **ckw,
            )
    d = report.to_dict()
    if json_out:
        print_json(d)
        return
    _print_route_report(d)


def _print_route_report(d: dict[str, Any]) -> None:
    console = stdout_console()
    console.print(
        f"cheap {d['cheap_model']}: accuracy {d['cheap_accuracy']:.4f}; strong "
        f"{d['strong_model']}: {d['strong_accuracy']:.4f}  (n={d['n']})"
    )
    table = Table(title=f"escalate when {d['signal']} < threshold")
    for col in ("threshold", "accuracy", "escalation", "cost/item"):
        table.add_column(col, justify="right")
    for p in d["sweep"]:
        table.add_row(
            f"{p['threshold']:.4f}",
            f"{p['accuracy']:.4f}",
            f"{p['escalation_rate']:.3f}",
            f"{p['cost_per_item']:.2f}",
        )
    console.print(table)
    if d["chosen"] is not None:
        c = d["chosen"]
        console.print(
            f"chosen threshold {c['threshold']:.4f}: accuracy {c['accuracy']:.4f}, "
            f"escalation {c['escalation_rate']:.3f}, cost {c['cost_per_item']:.2f}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("classify")(classify_cmd)
    app.command("choose")(choose_cmd)
    app.command("rerank")(rerank_cmd)
    app.command("route")(route_cmd)
    app.add_typer(eval_app, name="eval")
