"""Rows out as a terminal table, JSON Lines or CSV (for ``logprobe runs ...``)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._json import json_safe
from ..errors import InvalidRequestError

FORMATS = ("table", "jsonl", "csv")
_CELL_MAX = 60


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidRequestError(
            f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}", param="format"
        )
    return fmt


@contextmanager
def output(out: Path | None) -> Iterator[IO[str]]:
    """``out`` opened for writing (UTF-8), or stdout."""
    if out is None:
        yield sys.stdout
        return
    try:
        fh = out.open("w", encoding="utf-8", newline="")
    except OSError as e:
        raise InvalidRequestError(f"cannot write {out}: {e.strerror}", param="out") from None
    with fh:
        yield fh


def write_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    out: Path | None,
    columns: Sequence[str],
    *,
    title: str | None = None,
) -> None:
    check_format(fmt)
    with output(out) as fh:
        if fmt == "jsonl":
            for row in rows:
                fh.write(json.dumps(json_safe(row), ensure_ascii=False, allow_nan=False) + "\n")
        elif fmt == "csv":
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
        else:
            _table(rows, columns, fh, title)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(json_safe(value), ensure_ascii=False)
    return "" if value is None else value


def cell(value: Any, width: int = _CELL_MAX) -> str:
    """A short one-line rendering of a value for a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or value == 0 else f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    text = str(value).replace("\n", "\u21b5")
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fh: IO[str], title: str | None
) -> None:
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell(row.get(c))) for c in columns))  # Text: no markup parsing
    to_terminal = fh is sys.stdout and sys.stdout.isatty()
    console = Console(
        file=fh if to_terminal else io.StringIO(),
        width=None if to_terminal else 160,
        force_terminal=False,
        color_system="auto" if to_terminal else None,
    )
    console.print(table)
    if not to_terminal:
        fh.write(console.file.getvalue())  # type: ignore[attr-defined]
