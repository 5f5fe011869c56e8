"""Reading labelled datasets (JSONL, CSV, TSV) row by row; bad rows are reported, not fatal.

Every reader yields one item per input row with either a value or an ``error`` naming what is
wrong (missing field, bad JSON, wrong type), so a batch run can skip that row, say which line it
was, and go on.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidRequestError

Format = Literal["jsonl", "csv", "tsv"]


@dataclass(frozen=True, slots=True)
class Row:
    """One input row: ``line`` is 1-based in the file (header = line 1 for CSV/TSV)."""

    line: int
    record: Mapping[str, Any] | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TextRow:
    """A text to classify, with its gold label when the dataset has one."""

    index: int
    line: int
    text: str | None
    gold: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MCItem:
    """A multiple-choice item: the query, its choices, the index of the right one."""

    query: str
    choices: tuple[str, ...]
    gold: int
    line: int = 0
    meta: Mapping[str, Any] | None = None


def detect_format(path: Path, fmt: str | None = None) -> Format:
    if fmt is not None:
        if fmt not in ("jsonl", "csv", "tsv"):
            raise InvalidRequestError(
                f"Invalid 'format': expected jsonl, csv or tsv, got {fmt!r}.", param="format"
            )
        return fmt  # type: ignore[return-value]
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".tsv":
        return "tsv"
    if suffix == ".csv":
        return "csv"
    raise InvalidRequestError(
        f"Invalid 'dataset': cannot tell the format of {path.name!r} (use .jsonl, .csv, .tsv "
        f"or --format).",
        param="dataset",
    )


def _open(path: Path) -> Any:
    if not path.is_file():
        raise InvalidRequestError(
            f"Invalid 'dataset': no such file {str(path)!r}.", param="dataset"
        )
    return path.open("r", encoding="utf-8", newline="")


def read_rows(path: str | Path, *, fmt: str | None = None) -> Iterator[Row]:
    """Rows of a JSONL/CSV/TSV file as mappings; malformed rows come with ``error`` set."""
    p = Path(path)
    kind = detect_format(p, fmt)
    with _open(p) as f:
        try:
            if kind == "jsonl":
                yield from _jsonl_rows(f)
            else:
                yield from _delimited_rows(f, "\t" if kind == "tsv" else ",", quoting=kind == "csv")
        except UnicodeDecodeError as e:  # any bytes: one clear line, never a traceback
            raise InvalidRequestError(
                f"Invalid 'dataset': {p.name!r} is not UTF-8 text "
                f"({e.reason} near byte {e.start}).",
                param="dataset",
            ) from None
        except csv.Error as e:
            raise InvalidRequestError(
                f"Invalid 'dataset': {p.name!r} is not readable {kind.upper()} ({e}).",
                param="dataset",
            ) from None


def _jsonl_rows(f: Any) -> Iterator[Row]:
    for n, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield Row(n, None, f"line {n}: invalid JSON ({e.msg})")
            continue
        if not isinstance(obj, dict):
            yield Row(n, None, f"line {n}: expected a JSON object, got {type(obj).__name__}")
            continue
        yield Row(n, obj)


def _delimited_rows(f: Any, delimiter: str, *, quoting: bool) -> Iterator[Row]:
    reader = csv.reader(
        f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE
    )
    try:
        header = next(reader)
    except StopIteration:
        return
    for row in reader:
        n = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Row(n, None, f"line {n}: {len(row)} fields, the header has {len(header)}")
            continue
        yield Row(n, dict(zip(header, row, strict=False)))


def _columns(spec: str | Sequence[str]) -> list[str]:
    cols = [c.strip() for c in spec.split(",")] if isinstance(spec, str) else list(spec)
    if not cols or not all(cols):
        raise InvalidRequestError("Invalid 'text_col': empty column name.", param="text_col")
    return cols


def text_rows(
    path: str | Path,
    *,
    text_col: str | Sequence[str] = "text",
    label_col: str | None = None,
    label_map: Mapping[str, str] | None = None,
    labels: Sequence[str] | None = None,
    fmt: str | None = None,
) -> Iterator[TextRow]:
    """Texts (and gold labels) of a dataset.

    ``text_col`` may name several columns (``"title,description"``): their values are joined
    with a newline. ``label_col`` defaults to ``gold`` or else ``label`` when the row has one.
    ``label_map`` maps raw gold values (``"0"``) to label names; a gold that is not one of
    ``labels`` makes the row bad.
    """
    cols = _columns(text_col)
    for index, row in enumerate(read_rows(path, fmt=fmt)):
        if row.record is None:
            yield TextRow(index, row.line, None, None, row.error)
            continue
        yield _text_row(index, row.line, row.record, cols, label_col, label_map, labels)


def _text_row(
    index: int,
    line: int,
    rec: Mapping[str, Any],
    cols: list[str],
    label_col: str | None,
    label_map: Mapping[str, str] | None,
    labels: Sequence[str] | None,
) -> TextRow:
    parts = []
    for c in cols:
        v = rec.get(c)
        if v is None:
            return TextRow(index, line, None, None, f"line {line}: missing field {c!r}")
        if not isinstance(v, str):
            return TextRow(index, line, None, None, f"line {line}: field {c!r} is not a string")
        parts.append(v)
    text = "\n".join(p.strip() for p in parts)
    if not text.strip():
        return TextRow(index, line, None, None, f"line {line}: empty text")
    col = label_col or next((k for k in ("gold", "label") if k in rec), None)
    if label_col is not None and label_col not in rec:
        return TextRow(index, line, None, None, f"line {line}: missing field {label_col!r}")
    gold = None if col is None or rec.get(col) is None else str(rec[col])
    if gold is not None and label_map is not None:
        gold = label_map.get(gold.strip(), gold)
    if gold is not None and labels is not None and gold not in labels:
        return TextRow(
            index, line, None, None, f"line {line}: gold {gold!r} is not one of the labels"
        )
    return TextRow(index, line, text, gold)


def parse_label_map(spec: str | None) -> dict[str, str] | None:
    """``"0=negative,1=positive"`` -> ``{"0": "negative", "1": "positive"}``."""
    if spec is None or not spec.strip():
        return None
    out: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidRequestError(
                f"Invalid 'label_map': expected RAW=LABEL pairs separated by commas, got {part!r}.",
                param="label_map",
            )
        out[key.strip()] = value.strip()
    return out


def mc_item_from_record(rec: Mapping[str, Any], line: int) -> MCItem:
    """An :class:`MCItem` from ``{"query", "choices", "gold"}``; raises naming the bad field."""

    def bad(msg: str) -> InvalidRequestError:
        return InvalidRequestError(f"line {line}: {msg}", param="dataset")

    query, choices, gold = rec.get("query"), rec.get("choices"), rec.get("gold")
    if not isinstance(query, str) or not query.strip():
        raise bad("missing or empty 'query'")
    if not isinstance(choices, list) or len(choices) < 2:
        raise bad("'choices' must be a list of at least 2 strings")
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise bad("every choice must be a non-empty string")
    if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
        raise bad(f"'gold' must be an integer index into choices (0..{len(choices) - 1})")
    meta = {k: v for k, v in rec.items() if k not in ("query", "choices", "gold")}
    return MCItem(query, tuple(choices), gold, line, meta or None)


def load_mc_items(path: str | Path) -> tuple[list[MCItem], list[tuple[int, str]]]:
    """Items of a multiple-choice JSONL file and the bad lines ``(line, error)``."""
    items: list[MCItem] = []
    bad: list[tuple[int, str]] = []
    for row in read_rows(path, fmt="jsonl"):
        if row.record is None:
            bad.append((row.line, row.error or "bad row"))
            continue
        try:
            items.append(mc_item_from_record(row.record, row.line))
        except InvalidRequestError as e:
            bad.append((row.line, e.message))
    return items, bad


def subset(items: Sequence[Any], limit: int | None, seed: int | None) -> list[Any]:
    """``limit`` items: a seeded random sample (in file order) with ``seed``, else the first."""
    if limit is not None and limit < 1:
        raise InvalidRequestError(f"Invalid 'limit': must be >= 1, got {limit}.", param="limit")
    if limit is None or limit >= len(items):
        return list(items)
    if seed is None:
        return list(items[:limit])
    picked = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in picked]


__all__ = [
    "Format",
    "MCItem",
    "Row",
    "TextRow",
    "detect_format",
    "load_mc_items",
    "mc_item_from_record",
    "parse_label_map",
    "read_rows",
    "subset",
    "text_rows",
]
