"""The ``--ray`` options shared by the dataset commands, the executor they pick, and a progress
bar that shows rows per second."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..execution import EngineSpec, Executor, LocalExecutor, RayExecutor, RayOptions
from ._tasks_common import engine_from

RayOpt = Annotated[
    bool,
    typer.Option(
        "--ray",
        help="Run the rows on Ray actors (one engine each): joins $RAY_ADDRESS when set, "
        "else starts a local Ray runtime.",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join this Ray cluster (host:6379, ray://host:10001, auto); implies --ray.",
    ),
]
ActorsOpt = Annotated[
    int | None,
    typer.Option("--actors", help="Ray actors (default: the cluster's CPUs / --actor-cpus)."),
]
ActorCpusOpt = Annotated[
    float, typer.Option("--actor-cpus", help="CPUs reserved per Ray actor (its engine's threads).")
]


@dataclass(frozen=True, slots=True)
class ExecChoice:
    """Where the rows run: locally (default) or on Ray."""

    ray: bool = False
    address: str | None = None
    actors: int | None = None
    actor_cpus: float = 1.0

    @property
    def use_ray(self) -> bool:
        return self.ray or self.address is not None


@contextmanager
def open_executor(
    choice: ExecChoice,
    model: str | None,
    *,
    threads: int | None = None,
    workers: int = 2,
    needs_engine: bool = True,
    api_key: str | None = None,
) -> Iterator[Executor]:
    """The executor for a dataset command; the local one opens the engine here as before."""
    if choice.use_ray:
        spec = EngineSpec(model, threads, api_key) if needs_engine else None
        options = RayOptions(
            address=choice.address,
            actors=choice.actors,
            actor_cpus=choice.actor_cpus,
            concurrency=workers,
        )
        with RayExecutor(spec, options) as ex:
            yield ex
        return
    if not needs_engine:
        yield LocalExecutor(None, workers=workers)
        return
    if api_key is not None:
        with LocalExecutor(spec=EngineSpec(model, threads, api_key), workers=workers) as ex:
            yield ex
        return
    with engine_from(model, threads=threads) as engine:
        yield LocalExecutor(engine, workers=workers)


class RowsPerSecond(ProgressColumn):
    """``12.3 rows/s`` (rich's moving estimate; the final average once finished)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- rows/s" if speed is None else f"{speed:.1f} rows/s", style="cyan")


def rate_progress(console: Console | None = None, *, transient: bool = False) -> Progress:
    """A progress bar on stderr with rows done, rows per second, elapsed and remaining time."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=transient,
    )


def describe(executor: Any) -> dict[str, Any]:
    """What ran the rows (for ``--json`` output)."""
    describe_fn = getattr(executor, "describe", None)
    return describe_fn() if callable(describe_fn) else {"backend": "local"}


__all__ = [
    "ActorCpusOpt",
    "ActorsOpt",
    "ExecChoice",
    "RayAddressOpt",
    "RayOpt",
    "RowsPerSecond",
    "describe",
    "open_executor",
    "rate_progress",
]
