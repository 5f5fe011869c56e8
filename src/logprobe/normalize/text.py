"""Reading payload text: one JSON document, JSON Lines (one chunk per line, as Ollama streams),
or Server-Sent Events (``data: {...}`` lines, as OpenAI-style servers stream).

Invalid text raises :class:`NormalizeError` naming the line and column, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import NormalizeError

DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched Server-Sent Event: its ``event`` name (``""`` if none) and ``data``."""

    event: str
    data: str
    line: int
    """1-based line number of the event's first data line (for error messages)."""


def iter_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Events from SSE lines (WHATWG rules: ``data:`` lines join with newlines, a blank line
    dispatches, ``:`` starts a comment); a trailing event without a blank line is dispatched."""
    data: list[str] = []
    event = ""
    start = 0
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent(event, "\n".join(data), start)
            data, event = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            if not data:
                start = n
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield SSEEvent(event, "\n".join(data), start)


def looks_like_sse(text: str) -> bool:
    for line in text.lstrip().splitlines():
        if line.strip():
            return line.startswith(("data:", "event:", ":", "id:", "retry:"))
    return False


def load_payload(text: str | bytes | bytearray) -> Any:
    """A parsed payload from JSON, JSON Lines or SSE text (streams become a list of chunks)."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise NormalizeError(f"input is not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise NormalizeError("empty input: expected JSON, JSON Lines or SSE text")
    if looks_like_sse(text):
        return _load_sse(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
            return _load_jsonl(text)
        raise _json_error(e, 0) from None


def _json_error(e: json.JSONDecodeError, line_offset: int) -> NormalizeError:
    hint = " (truncated?)" if e.pos >= len(e.doc.rstrip()) else ""
    return NormalizeError(
        f"invalid JSON at line {e.lineno + line_offset} column {e.colno}: {e.msg}{hint}"
    )


def _load_jsonl(text: str) -> list[Any]:
    out = []
    for n, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise _json_error(e, n) from None
    return out


def _load_sse(text: str) -> list[Any]:
    out: list[Any] = []
    for ev in iter_sse(text.splitlines()):
        if ev.data.strip() == DONE:
            continue
        out.extend(_parse_event_data(ev))
    if not out:
        raise NormalizeError("SSE text without any data events")
    return out


def _parse_event_data(ev: SSEEvent) -> list[Any]:
    try:
        return [json.loads(ev.data)]
    except json.JSONDecodeError as e:
        parts = [p for p in ev.data.split("\n") if p.strip() and p.strip() != DONE]
        if len(parts) > 1:  # data lines without blank separators: one JSON object per line
            try:
                return [json.loads(p) for p in parts]
            except json.JSONDecodeError:
                pass
        raise _json_error(e, ev.line - 1) from None
