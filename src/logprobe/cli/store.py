"""``logprobe import``, ``logprobe runs list|show|compare|attach|delete`` and ``logprobe ui``:
thin shells over :mod:`logprobe.store` and :mod:`logprobe.web`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import InvalidRequestError
from ..store import Store, import_file
from ..store.report import check_format, write_rows
from ._execution import ActorCpusOpt, ActorsOpt, ExecChoice, RayAddressOpt, RayOpt, open_executor

DB_HELP = (
    "Database URL (sqlite:///PATH or postgresql+psycopg://...); default $LOGPROBE_DB or "
    "$LOGPROBE_HOME/logprobe.db."
)
FORMAT_HELP = "Output format: table, jsonl or csv."
RUN_COLUMNS = ["name", "model", "n_responses", "mean_logprob", "tags", "created_at"]
RESPONSE_COLUMNS = [
    "id",
    "prompt",
    "text",
    "n_tokens",
    "mean_logprob",
    "min_logprob",
    "perplexity",
    "n_low_confidence",
    "correct",
    "finish_reason",
]
COMPARE_COLUMNS = [
    "status",
    "delta_mean_logprob",
    "mean_logprob_a",
    "mean_logprob_b",
    "prompt",
    "text_a",
    "text_b",
    "n_changed_tokens",
    "worst_tokens",
]
TOKEN_COLUMNS = [
    "prompt",
    "status",
    "delta",
    "token_a",
    "token_b",
    "logprob_a",
    "logprob_b",
    "position_a",
    "position_b",
]

runs_app = typer.Typer(
    help="List, show and compare stored runs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
_err = Console(stderr=True, highlight=False)


def _db_option() -> Any:
    return typer.Option(None, "--db", help=DB_HELP)


def import_command(
    file: Path = typer.Argument(..., help="JSON (one response or a list) or JSONL file."),
    run: str = typer.Option(..., "--run", help="Run to import into (created if new)."),
    db: str | None = _db_option(),
    append: bool = typer.Option(False, "--append", help="Add to an existing run."),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Import the valid items and report the bad ones "
        "(default: any bad item imports nothing).",
    ),
    model: str | None = typer.Option(None, "--model", help="Model name recorded on the run."),
    provider: str | None = typer.Option(
        None,
        "--provider",
        help="Response shape (e.g. openai_chat, vllm, tgi); default: detected per item.",
    ),
    tag: list[str] = typer.Option([], "--tag", help="Tag the new run (repeatable)."),
    json_out: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
    actor_cpus: ActorCpusOpt = 1.0,
) -> None:
    """Import saved provider responses (any shape logprobe.normalize reads) into a run."""
    choice = ExecChoice(ray, ray_address, actors, actor_cpus)
    with (
        Store.open(db) as store,
        open_executor(choice, None, workers=1, needs_engine=False) as executor,
    ):
        size = file.stat().st_size if file.is_file() else None
        with Progress(
            TextColumn("importing {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=_err,
            transient=True,
            disable=not _err.is_terminal,
        ) as bar:
            task = bar.add_task(file.name, total=size)
            report = import_file(
                store,
                file,
                run,
                append=append,
                skip_invalid=skip_invalid,
                model=model,
                tags=tag,
                provider=provider,
                progress=lambda n: bar.advance(task, n),
                executor=executor,
            )
    if json_out:
        typer.echo(json.dumps(report.to_dict(), allow_nan=False))
    else:
        typer.echo(
            f"imported {report.imported} response(s), {report.n_tokens} tokens, into run "
            f"{report.run!r} in {report.seconds:.2f}s"
        )
    for issue in report.skipped:
        _err.print(f"skipped {issue}", markup=False)


@runs_app.command("list")
def list_command(
    db: str | None = _db_option(),
    tag: str | None = typer.Option(None, "--tag", help="Only runs with this tag."),
    model: str | None = typer.Option(None, "--model", help="Only runs whose model contains this."),
    search: str | None = typer.Option(None, "--search", help="Only names containing this."),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """List runs, newest first."""
    check_format(fmt)
    with Store.open(db) as store:
        rows = [r.to_dict() for r in store.runs(tag=tag, model=model, search=search)]
    write_rows(rows, fmt, out, RUN_COLUMNS, title=f"{len(rows)} run(s)")


@runs_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Run name."),
    db: str | None = _db_option(),
    limit: int = typer.Option(50, "--limit", help="Responses to show (0 = all)."),
    offset: int = typer.Option(0, "--offset", help="Skip this many responses."),
    with_tokens: bool = typer.Option(False, "--tokens", help="Include every token (jsonl)."),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Show a run and its responses with their confidence metrics."""
    check_format(fmt)
    if limit < 0 or offset < 0:
        raise InvalidRequestError("--limit and --offset must be >= 0", param="limit")
    with Store.open(db) as store:
        run = store.run(name)
        responses = store.responses(
            run, offset=offset, limit=limit or None, with_tokens=with_tokens
        )
    if fmt == "table" and out is None:
        info = run.to_dict()
        _out = Console(highlight=False)
        for key in (
            "name",
            "model",
            "model_version",
            "prompt_template",
            "params",
            "tags",
            "created_at",
            "n_responses",
            "mean_logprob",
        ):
            _out.print(f"{key}: {info[key]}", markup=False)
    rows = [r.to_dict(with_tokens=with_tokens) for r in responses]
    write_rows(
        rows,
        fmt,
        out,
        RESPONSE_COLUMNS,
        title=f"responses {offset + 1}-{offset + len(rows)} of {run.n_responses}",
    )


@runs_app.command("compare")
def compare_command(
    run_a: str = typer.Argument(..., help="Baseline run (A)."),
    run_b: str = typer.Argument(..., help="Candidate run (B); deltas are B minus A."),
    db: str | None = _db_option(),
    level: str = typer.Option(
        "prompt",
        "--level",
        help="prompt: one row per prompt; token: one "
        "row per aligned token whose confidence changed.",
    ),
    tokens: int = typer.Option(5, "--tokens", help="Worst tokens kept per prompt."),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Per-prompt and per-token confidence differences between two runs, regressions first."""
    check_format(fmt)
    if level not in ("prompt", "token"):
        raise InvalidRequestError("--level must be 'prompt' or 'token'", param="level")
    if tokens < 0:
        raise InvalidRequestError("--tokens must be >= 0", param="tokens")
    with Store.open(db) as store:
        cmp = store.compare(run_a, run_b, token_limit=tokens)
    s = cmp.summary()
    _err.print(
        f"{s['n_common']} common prompt(s): {s['n_regressed']} regressed, "
        f"{s['n_improved']} improved; {s['only_a']} only in {run_a!r}, {s['only_b']} "
        f"only in {run_b!r}",
        markup=False,
    )
    if level == "token":
        rows = [{"prompt": r.prompt, **t.to_dict()} for r in cmp.rows for t in r.tokens]
        rows.sort(key=lambda t: t["delta"])
        write_rows(rows, fmt, out, TOKEN_COLUMNS, title=f"{run_b} vs {run_a}: tokens")
        return
    rows = []
    for r in cmp.rows:
        d = r.to_dict()  # jsonl keeps every field, with the token deltas in "tokens"
        if fmt != "jsonl":
            d["worst_tokens"] = [
                f"{t.token_a}({t.delta:+.3f})" for t in r.tokens if t.delta is not None
            ]
        rows.append(d)
    write_rows(rows, fmt, out, COMPARE_COLUMNS, title=f"{run_b} vs {run_a} (delta = B - A)")


@runs_app.command("attach")
def attach_command(
    name: str = typer.Argument(..., help="Run name."),
    file: Path = typer.Argument(..., help="File to keep with the run."),
    db: str | None = _db_option(),
    as_name: str | None = typer.Option(
        None,
        "--name",
        help="Artifact name (default: file name; predictions.jsonl feeds the calibration page).",
    ),
) -> None:
    """Keep a file with a run (e.g. predictions.jsonl for the viewer's calibration page)."""
    try:
        data = file.read_bytes()
    except OSError as e:
        raise InvalidRequestError(f"cannot read {file}: {e.strerror}", param="file") from None
    media = (
        "application/jsonl" if file.suffix in (".jsonl", ".ndjson") else "application/octet-stream"
    )
    with Store.open(db) as store:
        store.add_artifact(name, as_name or file.name, data, media)
    typer.echo(f"attached {as_name or file.name} ({len(data)} bytes) to run {name!r}")


@runs_app.command("delete")
def delete_command(
    name: str = typer.Argument(..., help="Run name."),
    db: str | None = _db_option(),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a run with all its responses, tokens and artifacts."""
    with Store.open(db) as store:
        run = store.run(name)
        if not yes and not typer.confirm(f"delete run {name!r} ({run.n_responses} responses)?"):
            raise typer.Exit(1)
        store.delete_run(name)
    typer.echo(f"deleted run {name!r}")


def ui_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    db: str | None = _db_option(),
    model: str | None = typer.Option(
        None,
        "--model",
        help="GGUF for the playground (default: the bundled SmolLM2); loaded on first use.",
    ),
    playground: bool = typer.Option(
        True,
        "--playground/--no-playground",
        help="Offer the live playground (loads the model lazily).",
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="LOGPROBE_API_KEY",
        help="Require this key on every route (a login page "
        "sets a session cookie; API clients send Bearer).",
    ),
) -> None:
    """Serve the web viewer (runs, token heatmaps, comparisons, calibration, playground)."""
    import uvicorn

    from ..server.header_timeout import header_timeout_protocol
    from ..web import create_ui_app, lazy_engine
    from .serve import warn_if_open

    if not 0 < port < 65536:
        raise InvalidRequestError(f"--port must be 1-65535, got {port}", param="port")
    store = Store.open(db)
    app = create_ui_app(
        store, engine_factory=lazy_engine(model) if playground else None, api_key=api_key
    )
    warn_if_open(host, api_key, "viewer")
    _err.print(f"logprobe viewer on http://{host}:{port}/ui/ (store {store.url})", markup=False)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", http=header_timeout_protocol())
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add ``import``, ``runs ...`` and ``ui`` to ``app``."""
    app.command("import")(import_command)
    app.add_typer(runs_app, name="runs")
    app.command("ui")(ui_command)
