"""Incremental JSONL output keyed by one field: one flushed line per finished row, so a killed
driver loses no finished row; ``resume`` keeps the lines already there and reports their keys so
the run does only the rest; a key already written is never written again."""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidRequestError


def finite_json(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def drop_torn_line(path: Path) -> None:
    """Cut a trailing line without a newline (a write cut short by a crash)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file; unreadable lines are passed over."""
    if not path.is_file():
        return
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec


class JsonlSink:
    """Write records to ``path`` as JSON lines, keyed by ``record[key]``.

    With ``resume`` the file is kept (a torn last line is dropped) and :attr:`done` holds the
    keys already in it; otherwise the file is started anew.
    """

    def __init__(
        self, path: str | Path, *, key: str, resume: bool = False, param: str = "out"
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InvalidRequestError(
                f"Invalid '{param}': {str(self.path)!r} is a directory.", param=param
            )
        self.key = key
        self.done: set[Hashable] = set()
        if resume and self.path.is_file():
            drop_torn_line(self.path)
            self.done = {
                r[key] for r in read_records(self.path) if isinstance(r.get(key), (int, str))
            }
        self.resumed = len(self.done)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] | None = self.path.open("a" if resume else "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> bool:
        """Append one record (flushed); False when its key was written before."""
        k = record[self.key]
        if k in self.done:
            return False
        assert self._f is not None, "sink is closed"
        self._f.write(json.dumps(finite_json(record), ensure_ascii=False, allow_nan=False) + "\n")
        self._f.flush()
        self.done.add(k)
        return True

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record now in the file (kept and new)."""
        if self._f is not None:
            self._f.flush()
        return read_records(self.path)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["JsonlSink", "drop_torn_line", "finite_json", "read_records"]
