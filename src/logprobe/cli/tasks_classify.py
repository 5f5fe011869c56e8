"""``logprobe classify``: label probabilities for one text or a dataset, calibrated by the
calibrator saved for the task when there is one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

from ..errors import InvalidRequestError
from ..tasks import (
    DEFAULT_CLASSIFY_TEMPLATE,
    ClassifyResult,
    classify,
    classify_dataset,
    classify_signature,
)
from ._dataset_rows import dataset_rows
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
from ._tasks_common import engine_from, print_json, split_list, stderr_console, stdout_console

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


def classify_template(template: str | None, raw: bool) -> str | None:
    """The prompt template of ``--template``/``--raw`` (``\\n`` typed on a command line is a
    newline); the default classify template when neither is given."""
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
        template=classify_template(template, raw),
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
    rows = dataset_rows(
        dataset,
        text_col=text_col,
        label_col=label_col,
        label_map=label_map,
        labels=labels,
        fmt=fmt,
        limit=limit,
        seed=seed,
    )
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
