"""The execution layer: dataset commands fan their rows out over an executor.

    LocalExecutor(engine, workers=2)          today's behaviour: threads of this process, one engine
    RayExecutor(EngineSpec(model), RayOptions(address=..., actors=2))
                                              Ray actors, one engine each, on a local runtime or a
                                              cluster

Both yield one outcome per row in input order; :func:`run_dataset` writes them to an
incremental, resumable :class:`JsonlSink`. See ``docs/SCALE.md``.
"""

from __future__ import annotations

from .base import EngineSpec, Executor, RowFn, close_engine
from .dataset import DatasetRun, RowPlan, run_dataset
from .local import LocalExecutor
from .ray_backend import RayExecutor, RayOptions, RayStats
from .sink import JsonlSink, drop_torn_line, finite_json, read_records

__all__ = [
    "DatasetRun",
    "EngineSpec",
    "Executor",
    "JsonlSink",
    "LocalExecutor",
    "RayExecutor",
    "RayOptions",
    "RayStats",
    "RowFn",
    "RowPlan",
    "close_engine",
    "drop_torn_line",
    "finite_json",
    "read_records",
    "run_dataset",
]
