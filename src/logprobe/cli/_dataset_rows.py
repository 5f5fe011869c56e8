"""The rows a task command reads from its ``--dataset`` (classify, route, moderate)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..tasks.datasets import TextRow, parse_label_map, subset, text_rows


def dataset_rows(
    dataset: Path,
    *,
    text_col: str,
    label_col: str | None,
    label_map: str | None,
    labels: Sequence[str] | None,
    fmt: str | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[TextRow]:
    """The dataset's texts and gold labels (``--label-map`` applied, golds checked against
    ``labels``), then ``--limit`` of them: the first, or a seeded sample with ``--seed``."""
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
    return subset(rows, limit, seed)
