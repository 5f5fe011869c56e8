"""Task commands: ``classify``, ``choose``, ``rerank``, ``route`` and the ``eval`` group."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

from ..errors import InvalidRequestError
from ..tasks import (
    DEFAULT_CLASSIFY_TEMPLATE,
    ClassifyResult,
    choose,
    classify,
    classify_dataset,
    classify_signature,
    parse_label_map,
    rerank,
    route,
    route_report,
    subset,
    text_rows,
)
from ._execution import (
    ActorCpusOpt,
    ActorsOpt,
    ExecChoice,
    RayAddressOpt,
    RayOpt,
    describe,
    open_executor,
    rate_progress,
)
from ._tasks_common import (
    engine_from,
    local_engine,
    print_json,
    progress_bar,
    read_json_arg,
    split_list,
    stderr_console,
    stdout_console,
)
from .tasks_eval import eval_app

if TYPE_CHECKING:
    from ..execution import Executor

MODEL_HELP = (
    "GGUF path, 'gemma', or an http(s):// OpenAI-compatible URL ('URL#model'); "
    "default: the embedded SmolLM2-135M-Instruct."
)


def load_calibrator(signature: Any, forced: Path | None = None) -> Any | None:
    """The calibrator for this task: the one at ``forced`` (``--calibrator``; an error when it
    was fitted for another task), else the one saved under the task's signature (None when
    there is none). A per-model calibrator of an older logprobe is reported, not applied."""
    from ..calibration import (
        calibrator_path,
        check_same_task,
        load_task_calibrator,
        read_calibrator,
    )

    err = stderr_console()
    if forced is not None:
        cal = read_calibrator(forced)
        check_same_task(cal.signature, signature, where=str(forced))
        if cal.signature is None:
            err.print(
                f"note: {forced} records no task; applied because --calibrator forces it",
                highlight=False,
            )
        err.print(f"applying calibrator {forced} ({cal.method})", highlight=False)
        return cal
    found = load_task_calibrator(signature)
    if found is not None:
        err.print(
            f"applying calibrator {found[1]} ({found[0].method}, fitted on {found[0].n_fit} rows)",
            highlight=False,
        )
        return found[0]
    legacy = calibrator_path(signature.model)
    if legacy.is_file():
        err.print(
            f"note: {legacy} is a per-model calibrator of an older logprobe and is not "
            "applied (it may belong to another task); refit it with `logprobe calibrate "
            "--method ...` or force it with --calibrator",
            highlight=False,
        )
    return None


def _task_calibrator(
    engine: Any,
    labels: list[str],
    kwargs: dict[str, Any],
    calibrated: bool,
    forced: Path | None,
    model: str | None,
) -> Any | None:
    """The task signature of this classify call, and the calibrator that goes with it."""
    if forced is not None and not calibrated:
        raise InvalidRequestError(
            "--calibrator and --uncalibrated contradict each other", param="calibrator"
        )
    if not calibrated:
        return None
    remote = model is not None and model.startswith(("http://", "https://"))
    local = getattr(engine, "engine", engine)  # an executor holds its engine (or none: Ray)
    can_score = None if hasattr(local, "score_continuations") else not remote
    signature = classify_signature(
        local if hasattr(local, "model_name") else engine,
        labels,
        can_score=can_score,
        **{
            k: kwargs[k]
            for k in ("normalize", "template", "chat", "label_prefix", "method", "first_token_bias")
        },
    )
    return load_calibrator(signature, forced)


def _template(template: str | None, raw: bool) -> str | None:
    if raw:
        return None
    return DEFAULT_CLASSIFY_TEMPLATE if template is None else template.replace("\\n", "\n")


def _print_classification(result: ClassifyResult) -> None:
    table = Table(
        title=f"{result.label}  (confidence {result.confidence:.3f}, "
        f"margin {result.margin:.3f}, {result.decision})"
    )
    for col in ("label", "prob", "logprob", "tokens", "score"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for o in sorted(result.options, key=lambda o: -o.prob):
        table.add_row(
            o.text, f"{o.prob:.4f}", f"{o.logprob:.3f}", str(o.n_tokens), f"{o.score:.3f}"
        )
    console = stdout_console()
    console.print(table)
    note = f"normalize={result.normalize} method={result.method}"
    if result.approximate:
        note += " (approximation)"
    console.print(note)
    for n in result.notes:
        console.print(f"note: {n}")


def classify_cmd(
    text: Optional[str] = typer.Argument(None, help="Text to classify (or --dataset)."),
    labels: str = typer.Option(..., "--labels", "-l", help="Comma-separated labels, or @FILE."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    normalize: str = typer.Option("none", help="none | tokens | chars"),
    template: Optional[str] = typer.Option(None, help="Prompt with {text} and {labels}."),
    raw: bool = typer.Option(False, "--raw", help="Use the text itself as the prompt."),
    chat: bool = typer.Option(False, "--chat", help="Send the prompt as a user chat message."),
    label_prefix: Optional[str] = typer.Option(None, help="Put before each label (default ' ')."),
    abstain_margin: float = typer.Option(0.0, help="Abstain when top-2 margin is below this."),
    method: str = typer.Option("auto", help="auto | exact | first_token"),
    first_token_bias: Optional[float] = typer.Option(
        None, help="First-token method: add this logit bias to every label's first token."
    ),
    dataset: Optional[Path] = typer.Option(None, help="JSONL/CSV/TSV file to classify."),
    out: Optional[Path] = typer.Option(None, help="Predictions JSONL (dataset mode)."),
    text_col: str = typer.Option("text", help="Text column(s), comma-separated."),
    label_col: Optional[str] = typer.Option(None, help="Gold column (default gold/label)."),
    label_map: Optional[str] = typer.Option(None, help="Map gold values: '0=neg,1=pos'."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl | csv | tsv"),
    limit: Optional[int] = typer.Option(None, help="Only this many rows."),
    seed: Optional[int] = typer.Option(None, help="Random (seeded) rows with --limit."),
    workers: int = typer.Option(2, help="Rows in flight (the engine batches them)."),
    resume: bool = typer.Option(False, help="Keep rows already in --out; do the rest."),
    calibrated: bool = typer.Option(
        True,
        "--calibrated/--uncalibrated",
        help="Apply the calibrator saved for this task (same model, "
        "labels, prompt, method, normalisation) when one exists.",
    ),
    calibrator_file: Optional[Path] = typer.Option(
        None,
        "--calibrator",
        help="Apply this calibrator file (an error if it was fitted for another task).",
    ),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the embedded engine."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
    actor_cpus: ActorCpusOpt = 1.0,
) -> None:
    """Probability of each label (multi-token labels included), margin and decision."""
    label_list = split_list(labels, param="labels") or []
    if (text is None) == (dataset is None):
        raise InvalidRequestError("give a TEXT or --dataset (not both)", param="text")
    kwargs: dict[str, Any] = dict(
        normalize=normalize,
        template=_template(template, raw),
        chat=chat,
        label_prefix=label_prefix,
        abstain_margin=abstain_margin,
        method=method,
        first_token_bias=first_token_bias,
    )
    if text is not None:
        with engine_from(model, threads=threads) as engine:
            calibrator = _task_calibrator(
                engine, label_list, kwargs, calibrated, calibrator_file, model
            )
            result = classify(engine, text, label_list, calibrator=calibrator, **kwargs)
        print_json(result.to_dict()) if json_out else _print_classification(result)
        return
    assert dataset is not None
    choice = ExecChoice(ray, ray_address, actors, actor_cpus)
    with open_executor(choice, model, threads=threads, workers=workers) as executor:
        calibrator = _task_calibrator(
            executor, label_list, kwargs, calibrated, calibrator_file, model
        )
        summary = _classify_file(
            executor,
            dataset,
            label_list,
            out,
            text_col,
            label_col,
            label_map,
            fmt,
            limit,
            seed,
            resume,
            calibrator,
            kwargs,
        )
    if json_out:
        print_json(summary)
    else:
        _print_summary(summary)


def _classify_file(
    executor: Executor,
    dataset: Path,
    labels: list[str],
    out: Path | None,
    text_col: str,
    label_col: str | None,
    label_map: str | None,
    fmt: str | None,
    limit: int | None,
    seed: int | None,
    resume: bool,
    calibrator: Any,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    rows = list(
        text_rows(
            dataset,
            text_col=text_col,
            label_col=label_col,
            label_map=parse_label_map(label_map),
            labels=labels,
            fmt=fmt,
        )
    )
    rows = subset(rows, limit, seed)
    target = out or dataset.with_suffix(".predictions.jsonl")
    with rate_progress() as bar:
        task = bar.add_task("classify", total=len(rows))

        def on_row(*_: Any) -> None:
            bar.advance(task)

        summary = classify_dataset(
            None,
            rows,
            labels,
            target,
            resume=resume,
            on_row=on_row,
            executor=executor,
            calibrator=calibrator,
            **kwargs,
        )
    d = summary.to_dict()
    d["calibrated"] = calibrator is not None
    d["execution"] = describe(executor)
    return d


def _print_summary(d: dict[str, Any]) -> None:
    console = stdout_console()
    acc = d["accuracy"]
    console.print(
        f"wrote {d['written']} predictions to {d['out']} "
        f"({d['resumed']} kept from before, {d['skipped']} skipped)"
    )
    if acc is not None:
        console.print(
            f"accuracy {acc:.4f} on {d['labelled']} labelled rows; abstained on {d['abstained']}"
        )
    err = stderr_console()
    for s in d["skipped_rows"][:20]:
        err.print(f"skipped line {s['line']}: {s['error']}")


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
    ckw: dict[str, Any] = dict(normalize=normalize, template=_template(template, False))
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
        rows = subset(
            list(
                text_rows(
                    dataset,
                    text_col=text_col,
                    label_col=label_col,
                    label_map=parse_label_map(label_map),
                    labels=label_list,
                )
            ),
            limit,
            seed,
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
