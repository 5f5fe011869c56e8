"""The Ray executor: rows fanned out to Ray actors that each hold one engine.

Design: a few long-lived actors (one engine each, loaded once) and a small ordered task queue on
the driver. The driver cuts the input into chunks of ``chunk_size`` rows, keeps at most
``inflight`` chunks queued per actor, and yields results strictly in input order from a
bounded reorder buffer. Chunks are numbered, so a chunk that ran twice (a retried task) is still
yielded once, and a chunk is only dropped from the buffer after it was yielded: the output has
neither duplicates nor holes.

Faults are Ray's business first: actors are created with ``max_restarts`` and
``max_task_retries``, so a killed actor process is restarted (its engine reloaded) and its
queued chunks are re-run. If an actor is gone for good (restarts used up, node lost), the
driver starts a replacement and re-sends that actor's chunks, up to ``max_chunk_attempts`` per
chunk. Row functions are pure, so a re-run gives the same answer.

Why not Ray Data ``map_batches``: it would add a streaming executor with its own scheduling,
progress output and object-store traffic for no gain here. Ordering needs ``preserve_order``
and resume needs a pre-filtered dataset anyway, and its autoscaling actor pool, startup cost and
memory are a poor fit for small clusters (2 cores here). ``ray.util.ActorPool`` orders results
too, but submits the whole input at once and has no way to replace a dead actor.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice
from typing import Any, TypeVar

from ..errors import EngineError, InvalidRequestError, LogprobeError
from ..tasks.runner import Outcome, check_workers, ordered_map
from .base import EngineSpec, RowFn, close_engine

T = TypeVar("T")
R = TypeVar("R")

Chunk = list[tuple[Any, str | None]]


@dataclass(frozen=True, slots=True)
class RayOptions:
    """How to reach Ray and how many actors to run.

    ``address``: a cluster to join (``ray://host:10001``, ``host:6379``, ``auto``); ``None`` =
    ``$RAY_ADDRESS`` if set, else a new local runtime with ``num_cpus`` CPUs. ``actors``: how
    many (default: the cluster's CPUs divided by ``actor_cpus``). ``concurrency``: rows in
    flight inside one actor (its engine batches them).
    """

    address: str | None = None
    actors: int | None = None
    actor_cpus: float = 1.0
    concurrency: int = 2
    chunk_size: int = 8
    inflight: int = 2
    max_restarts: int = 3
    max_task_retries: int = 3
    max_chunk_attempts: int = 3
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        check_workers(self.concurrency)
        for name in ("chunk_size", "inflight", "max_chunk_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequestError(
                    f"Invalid '{name}': expected an integer >= 1, got {value!r}.", param=name
                )
        n = self.actors
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024):
            raise InvalidRequestError(
                f"Invalid 'actors': expected 1..1024, got {self.actors!r}.", param="actors"
            )
        if not self.actor_cpus > 0:
            raise InvalidRequestError(
                f"Invalid 'actor_cpus': must be > 0, got {self.actor_cpus!r}.", param="actor_cpus"
            )


def _call(fn: RowFn[T, R], engine: Any, item: T) -> R:
    return fn(engine, item)


class RowActor:
    """One engine in one Ray actor; runs chunks of rows with ``concurrency`` rows in flight."""

    def __init__(self, spec: EngineSpec | None, concurrency: int) -> None:
        self._error: LogprobeError | None = None
        self._engine: Any = None
        try:
            self._engine = spec.open() if spec is not None else None
        except LogprobeError as e:  # reported by info(), so the driver gets the real message
            self._error = e
        self._concurrency = concurrency

    def info(self) -> dict[str, Any]:
        if self._error is not None:
            raise self._error
        import ray

        return {
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "model_name": str(getattr(self._engine, "model_name", "") or ""),
            "peak_rss_bytes": _peak_rss(),
        }

    def run(self, fn: RowFn[Any, Any], items: list[Any]) -> tuple[Chunk, float]:
        """``[(result, error)]`` of ``items`` in order, and the seconds spent on them."""
        started = time.perf_counter()
        out = [
            (o.result, o.error)
            for o in ordered_map(partial(_call, fn, self._engine), items, workers=self._concurrency)
        ]
        return out, time.perf_counter() - started

    def close(self) -> None:
        close_engine(self._engine)


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidRequestError(
            "Ray is not installed: pip install 'logprobe[ray]'", param="ray"
        ) from None
    return ray


@dataclass
class RayStats:
    """What one executor did: rows and chunks run, actor time, faults recovered."""

    rows: int = 0
    chunks: int = 0
    actor_seconds: float = 0.0
    resent_chunks: int = 0
    replaced_actors: int = 0
    per_actor_rows: dict[int, int] = field(default_factory=dict)


@dataclass
class _Pending:
    index: int
    actor: int
    items: list[Any]
    attempts: int = 1
    handle: Any = None


class RayExecutor:
    """Rows over Ray actors, one engine per actor; see the module docstring for the design."""

    backend = "ray"

    def __init__(self, spec: EngineSpec | None, options: RayOptions | None = None) -> None:
        self.spec = spec
        self.options = options or RayOptions()
        self._ray = _import_ray()
        self._shutdown = self._connect()
        self.stats = RayStats()
        n = self.options.actors or self._default_actors()
        self._cls = self._ray.remote(
            num_cpus=self.options.actor_cpus,
            max_restarts=self.options.max_restarts,
            max_task_retries=self.options.max_task_retries,
        )(RowActor)
        self._actors = [self._new_actor(i) for i in range(n)]
        try:
            self.infos = self._get([a.info.remote() for a in self._actors])
        except BaseException:
            self.close()
            raise
        self.model_name = str(self.infos[0]["model_name"]) if self.infos else ""

    # --- setup ----------------------------------------------------------------------------

    def _connect(self) -> bool:
        """Join or start Ray; True when this executor must shut it down again."""
        ray = self._ray
        _raylet_errors_to_stderr(ray)
        if ray.is_initialized():
            return False
        address = self.options.address or os.environ.get("RAY_ADDRESS") or "local"
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "include_dashboard": False,
        }
        if address == "local":
            kwargs["num_cpus"] = self.options.num_cpus
        else:
            kwargs.pop("include_dashboard")
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise EngineError(
                f"cannot reach the Ray cluster at {address!r}: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None
        return True

    def _default_actors(self) -> int:
        cpus = float(self._ray.cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self.options.actor_cpus))

    def _new_actor(self, index: int) -> Any:
        spec = self.spec.for_actor(index) if self.spec is not None else None
        threads = max(1, int(self.options.actor_cpus))
        if spec is not None and spec.threads is None and not spec.urls:
            spec = replace(spec, threads=threads)
        return self._cls.remote(spec, self.options.concurrency)

    def _get(self, refs: Any) -> Any:
        ray = self._ray
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, LogprobeError):
                raise cause from None
            raise

    # --- running ----------------------------------------------------------------------------

    def map(self, fn: RowFn[T, R], items: Iterable[T]) -> Iterator[Outcome[T, R]]:
        """``fn(engine, item)`` for every item on the actors; yielded in input order."""
        ray = self._ray
        fn_ref = ray.put(fn)
        source = iter(items)
        pending: dict[Any, _Pending] = {}
        load = [0] * len(self._actors)
        done: dict[int, tuple[list[Any], Chunk]] = {}
        next_index = submitted = 0
        exhausted = False
        max_buffer = 2 * self.options.inflight * len(self._actors)
        while True:
            while not exhausted and len(done) + len(pending) < max_buffer:
                actor = min(range(len(load)), key=load.__getitem__)
                if load[actor] >= self.options.inflight:
                    break
                chunk = list(islice(source, self.options.chunk_size))
                if not chunk:
                    exhausted = True
                    break
                self._submit(pending, load, fn_ref, _Pending(submitted, actor, chunk))
                submitted += 1
            while next_index in done:
                chunk_items, results = done.pop(next_index)
                next_index += 1
                for item, (result, error) in zip(chunk_items, results, strict=True):
                    yield Outcome(item, result, error)
            if not pending:
                if exhausted:
                    return
                continue
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                load[job.actor] -= 1
                result = self._collect(ref, job, pending, load, fn_ref)
                if result is not None:
                    done[job.index] = (job.items, result)

    def _submit(
        self, pending: dict[Any, _Pending], load: list[int], fn_ref: Any, job: _Pending
    ) -> None:
        job.handle = self._actors[job.actor]
        ref = job.handle.run.remote(fn_ref, job.items)
        pending[ref] = job
        load[job.actor] += 1

    def _collect(
        self, ref: Any, job: _Pending, pending: dict[Any, _Pending], load: list[int], fn_ref: Any
    ) -> Chunk | None:
        """The chunk's results, or None when it was re-sent to a replacement actor."""
        ray = self._ray
        try:
            results, seconds = self._get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
            if job.attempts >= self.options.max_chunk_attempts:
                raise EngineError(
                    f"rows {_where(job.items)} failed on {job.attempts} actors; "
                    f"last error: {str(e).splitlines()[0]}"
                ) from None
            if self._actors[job.actor] is job.handle:  # not yet replaced for an earlier chunk
                self._replace(job.actor)
            self.stats.resent_chunks += 1
            self._submit(
                pending, load, fn_ref, _Pending(job.index, job.actor, job.items, job.attempts + 1)
            )
            return None
        self.stats.chunks += 1
        self.stats.rows += len(results)
        self.stats.actor_seconds += seconds
        self.stats.per_actor_rows[job.actor] = self.stats.per_actor_rows.get(job.actor, 0) + len(
            results
        )
        return list(results)

    def _replace(self, actor: int) -> None:
        """Swap a dead actor for a new one (its queued chunks come back as failures too)."""
        old = self._actors[actor]
        try:
            self._ray.kill(old, no_restart=True)
        except Exception:  # already gone
            pass
        self._actors[actor] = self._new_actor(actor)
        self.stats.replaced_actors += 1

    # --- introspection and shutdown -----------------------------------------------------------

    @property
    def actors(self) -> list[Any]:
        """The actor handles (tests kill one to check recovery)."""
        return list(self._actors)

    def actor_infos(self) -> list[dict[str, Any]]:
        """pid, node and peak resident memory of each actor now."""
        return list(self._get([a.info.remote() for a in self._actors]))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "actors": len(self._actors),
            "actor_cpus": self.options.actor_cpus,
            "concurrency": self.options.concurrency,
            "nodes": len({i["node_id"] for i in self.infos}),
        }

    def close(self) -> None:
        actors, self._actors = getattr(self, "_actors", []), []
        for a in actors:
            try:
                self._ray.kill(a, no_restart=True)
            except Exception:  # already gone
                pass
        if self._shutdown:
            self._shutdown = False
            self._ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raylet_errors_to_stderr(ray: Any) -> None:
    """Ray prints cluster errors ("a worker died ...") on the driver's stdout, where they would
    corrupt ``--json`` output; send them to stderr instead (a no-op if Ray changes its hook)."""
    module = getattr(getattr(ray, "_private", None), "worker", None)
    original = getattr(module, "print_to_stdstream", None)
    if module is None or original is None or getattr(original, "logprobe_patched", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    to_stderr.logprobe_patched = True  # type: ignore[attr-defined]
    module.print_to_stdstream = to_stderr


def _where(items: list[Any]) -> str:
    lines = [getattr(i, "line", None) for i in items]
    if all(isinstance(n, int) for n in lines) and lines:
        return f"at lines {lines[0]}..{lines[-1]}"
    return f"({len(items)} rows)"


__all__ = ["RayExecutor", "RayOptions", "RayStats", "RowActor"]
