"""``logprobe gate``: apply a review policy to many stored responses (JSONL), write decisions.

Each input line is a neutral Completion dict (``Completion.to_dict()``) or any provider response
JSON that :func:`logprobe.normalize.normalize` reads. Bad lines are skipped and listed, not fatal;
a file without a single usable line is an error (exit 2).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from ..analysis import Policy, gate, get_policy, load_policy
from ..errors import InvalidRequestError, LogprobeError
from ..execution import Executor, JsonlSink, LocalExecutor
from ..normalize import normalize
from ..types import Completion
from ._execution import (
    ActorCpusOpt,
    ActorsOpt,
    ExecChoice,
    RayAddressOpt,
    RayOpt,
    open_executor,
    rate_progress,
)

MAX_LISTED_ERRORS = 20


def parse_line(line: bytes | str) -> Completion:
    """A Completion from one JSONL line; raises :class:`LogprobeError` with a one-line reason."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError as e:
        raise InvalidRequestError(f"not UTF-8 (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidRequestError(f"not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return normalize(data)
    except LogprobeError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # a shape the normalizer missed
        raise InvalidRequestError(f"unreadable response ({type(e).__name__}: {e})") from None


@dataclass
class GateRun:
    """Counts of one ``gate`` run: decisions by kind and skipped lines with their reasons."""

    counts: Counter[str]
    skipped: list[tuple[int, str]]

    @property
    def n_done(self) -> int:
        return sum(self.counts.values())


def _lines(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().splitlines()
    except OSError as e:
        raise InvalidRequestError(f"cannot read {path}: {e.strerror}", param="file") from None


@dataclass(frozen=True, slots=True)
class GateRow:
    """The row function of ``gate`` (picklable, for any executor): ``(line number, line)`` ->
    the decision record; a bad line raises :class:`LogprobeError` and is skipped."""

    policy: Policy

    def __call__(self, engine: Any, item: tuple[int, bytes]) -> dict[str, Any]:
        n, line = item
        completion = parse_line(line)
        decision = gate(completion, self.policy)
        return {
            "line": n,
            "id": completion.id,
            "model": completion.model,
            "text": decision.analysis.text,
            **decision.to_dict(),
        }


def run_gate(
    lines: list[bytes],
    policy: Policy,
    out: TextIO | JsonlSink,
    err: Console,
    *,
    executor: Executor | None = None,
) -> GateRun:
    """Gate every line, writing one decision per usable line to ``out`` in line order
    (progress on ``err``); with a resumed :class:`JsonlSink`, lines already in it are kept
    and counted, not redone."""
    run = GateRun(Counter(), [])
    done: set[Any] = set()
    if isinstance(out, JsonlSink):
        done = set(out.done)
        for rec in out.records():
            run.counts[str(rec.get("decision"))] += 1
    todo = ((n, line) for n, line in enumerate(lines, start=1) if line.strip() and n not in done)
    runner = executor if executor is not None else LocalExecutor(None, workers=1)
    with rate_progress(err, transient=True) as progress:
        task = progress.add_task("gating", total=len(lines))
        for outcome in runner.map(GateRow(policy), todo):
            n = outcome.item[0]
            if outcome.result is None:
                run.skipped.append((n, outcome.error or "failed"))
                continue
            record = outcome.result
            run.counts[record["decision"]] += 1
            if isinstance(out, JsonlSink):
                out.write(record)
            else:
                out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
            progress.update(task, completed=n)
        progress.update(task, completed=len(lines))
    return run


def _summary(run: GateRun, policy: Policy, out_name: str) -> Table:
    table = Table(title=f"gate: policy {policy.name!r} -> {out_name}")
    table.add_column("decision")
    table.add_column("count", justify="right")
    for kind in ("publish", "review", "reject"):
        table.add_row(kind, str(run.counts.get(kind, 0)))
    table.add_row("skipped (bad lines)", str(len(run.skipped)))
    return table


def resolve_cli_policy(name: str | None, config: Path | None) -> Policy:
    """The policy chosen by ``--policy`` / ``--config`` (default: ``default``)."""
    if name is not None and config is not None:
        raise InvalidRequestError("give --policy or --config, not both", param="config")
    if config is not None:
        return load_policy(config)
    return get_policy(name or "default")


def gate_command(
    file: Annotated[
        Path, typer.Argument(help="JSONL: one Completion dict or provider response per line.")
    ],
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Built-in policy: default, strict, lenient, quantile."),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Policy TOML file.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write decisions here (JSONL); default stdout.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep the decisions already in --out; gate the rest.")
    ] = False,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
    actor_cpus: ActorCpusOpt = 1.0,
) -> None:
    """Apply a review policy (publish / review / reject) to stored responses."""
    pol = resolve_cli_policy(policy, config)
    if resume and out is None:
        raise InvalidRequestError("--resume needs --out", param="resume")
    lines = _lines(file)
    err = Console(stderr=True)
    choice = ExecChoice(ray, ray_address, actors, actor_cpus)
    with open_executor(choice, None, workers=1, needs_engine=False) as executor:
        if out is None:
            run = run_gate(lines, pol, sys.stdout, err, executor=executor)
        else:
            with JsonlSink(out, key="line", resume=resume) as sink:
                run = run_gate(lines, pol, sink, err, executor=executor)
    report_to = Console() if out is not None else err
    report_to.print(_summary(run, pol, str(out) if out else "stdout"))
    for n, why in run.skipped[:MAX_LISTED_ERRORS]:
        report_to.print(f"skipped line {n}: {why}", markup=False, highlight=False)
    if len(run.skipped) > MAX_LISTED_ERRORS:
        report_to.print(f"... and {len(run.skipped) - MAX_LISTED_ERRORS} more skipped lines")
    if run.n_done == 0:
        raise InvalidRequestError(
            f"no usable response in {file} ({len(run.skipped)} bad lines)", param="file"
        )


def register(app: typer.Typer) -> None:
    """Add ``logprobe gate`` to ``app``."""
    app.command("gate")(gate_command)
