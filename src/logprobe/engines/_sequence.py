"""Per-sequence text bookkeeping: exact bytes in, UTF-8-safe text and stop sequences out.

A generated token adds bytes; text is released only when its characters are complete and can no
longer be the start of a stop sequence. Each token's event carries the text it released, so that
streamed text, streamed tokens and the final result always agree.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from ..types import TokenLogprob
from .base import StreamEvent


@dataclass(slots=True)
class _Pending:
    token: TokenLogprob
    start: int  # char offset of the token's first character in the full decoded text
    end: int  # char offset after its last complete character


@dataclass(slots=True)
class TextTracker:
    """Tracks one choice's text; yields :class:`StreamEvent` objects ready to stream."""

    index: int
    stop: tuple[str, ...] = ()
    text: str = ""
    released: int = 0  # chars of ``text`` already sent
    pending: list[_Pending] = field(default_factory=list)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    stop_at: int | None = None  # char offset where a stop sequence starts, once found

    def add(self, token: TokenLogprob) -> list[StreamEvent]:
        """Add a generated token; returns the events that became safe to release."""
        start = len(self.text)
        self.text += self._decoder.decode(token.bytes or b"")
        self.pending.append(_Pending(token, start, len(self.text)))
        if self.stop:
            lo = max(0, start - max(len(s) for s in self.stop))
            hits = [i for s in self.stop if (i := self.text.find(s, lo)) >= 0]
            if hits:
                self.stop_at = min(hits)
                return []
        return self._release(self._safe_len())

    def _safe_len(self) -> int:
        """Length of text that cannot turn into a stop sequence with more tokens."""
        n = len(self.text)
        hold = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, n), hold, -1):
                if self.text.endswith(s[:k]):
                    hold = k
                    break
        return n - hold

    def _release(self, limit: int) -> list[StreamEvent]:
        events = []
        while self.pending and self.pending[0].end <= limit:
            p = self.pending.pop(0)
            events.append(StreamEvent(self.index, p.token, self._take(p.end)))
        return events

    def _take(self, upto: int) -> str:
        upto = max(upto, self.released)
        piece = self.text[self.released : upto]
        self.released = upto
        return piece

    def finish(self, reason: str) -> list[StreamEvent]:
        """Release what remains and the final event. Text is cut at a found stop sequence."""
        if self.stop_at is None:
            self.text += self._decoder.decode(b"", final=True)
            limit = len(self.text)
            events = [StreamEvent(self.index, p.token, self._take(p.end)) for p in self.pending]
        else:
            limit = self.stop_at
            events = [
                StreamEvent(self.index, p.token, self._take(min(p.end, limit)))
                for p in self.pending
                if p.start < limit
            ]
            self.text = self.text[:limit]
        self.pending.clear()
        events.append(StreamEvent(self.index, None, self._take(limit), finish_reason=reason))
        return events
