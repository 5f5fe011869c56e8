"""Fixtures of the execution tests: a local Ray runtime with 2 CPUs, and a real two-node Ray
cluster on this machine. Both skip with a reason when Ray is not installed."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import exec_helpers  # noqa: E402


def _ray() -> Any:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'logprobe[ray]')")
    ray.cloudpickle.register_pickle_by_value(exec_helpers)
    return ray


@pytest.fixture
def ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in exec_helpers.CLUSTER_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """``ray.init`` local with 2 CPUs for the module; shut down after."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A head and a worker node (1 CPU each), started with ``ray start``; stopped after."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()
    cluster = exec_helpers.TwoNodeCluster(tmp_path_factory.mktemp("ray-cluster"))
    mp = pytest.MonkeyPatch()
    for key, value in exec_helpers.CLUSTER_ENV.items():
        mp.setenv(key, value)
    try:
        cluster.start()
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
        mp.undo()
        left = cluster.leftover_pids()
        for d in cluster.dirs:
            shutil.rmtree(d, ignore_errors=True)
        assert not left, f"processes of the test cluster still running: {left}"
