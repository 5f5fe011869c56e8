"""``logprobe gate``: apply a review policy to many stored responses (JSONL), write decisions.

Each input line is a neutral Completion dict (``Completion.to_dict()``) or any provider response
JSON that :func:`logprobe.normalize.normalize` reads. Bad lines are skipped and listed, not fatal;
a file without a single usable line is an error (exit 2).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..analysis import Policy, gate, get_policy, load_policy
from ..errors import InvalidRequestError, LogprobeError
from ..normalize import normalize
from ..types import Completion

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


def _records(lines: list[bytes], policy: Policy, run: GateRun) -> Iterator[dict[str, Any]]:
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            completion = parse_line(line)
            decision = gate(completion, policy)
        except LogprobeError as e:
            run.skipped.append((n, e.message))
            continue
        run.counts[decision.decision] += 1
        yield {"line": n, "id": completion.id, "model": completion.model,
               "text": decision.analysis.text, **decision.to_dict()}


def run_gate(lines: list[bytes], policy: Policy, out: TextIO, err: Console) -> GateRun:
    """Gate every line, writing one decision per usable line to ``out`` (progress on ``err``)."""
    run = GateRun(Counter(), [])
    columns = (TextColumn("gating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("gate", total=len(lines))
        for record in _records(lines, policy, run):
            out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
            progress.update(task, completed=record["line"])
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
    file: Annotated[Path, typer.Argument(help="JSONL: one Completion dict or provider response per line.")],
    policy: Annotated[str | None, typer.Option("--policy", help="Built-in policy: default, strict, lenient, quantile.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Policy TOML file.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write decisions here (JSONL); default stdout.")] = None,
) -> None:
    """Apply a review policy (publish / review / reject) to stored responses."""
    pol = resolve_cli_policy(policy, config)
    lines = _lines(file)
    err = Console(stderr=True)
    if out is None:
        run = run_gate(lines, pol, sys.stdout, err)
    else:
        with out.open("w", encoding="utf-8") as fh:
            run = run_gate(lines, pol, fh, err)
    report_to = Console() if out is not None else err
    report_to.print(_summary(run, pol, str(out) if out else "stdout"))
    for n, why in run.skipped[:MAX_LISTED_ERRORS]:
        report_to.print(f"skipped line {n}: {why}", markup=False, highlight=False)
    if len(run.skipped) > MAX_LISTED_ERRORS:
        report_to.print(f"... and {len(run.skipped) - MAX_LISTED_ERRORS} more skipped lines")
    if run.n_done == 0:
        raise InvalidRequestError(f"no usable response in {file} ({len(run.skipped)} bad lines)", param="file")


def register(app: typer.Typer) -> None:
    """Add ``logprobe gate`` to ``app``."""
    app.command("gate")(gate_command)
