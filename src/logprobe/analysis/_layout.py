"""Where each token sits in the text: byte ranges, character ranges, and character classes.

Text is rebuilt from the tokens' exact ``bytes`` (``token`` text only where bytes are unknown), and
decoded here one character at a time so that every character knows its first byte. A character
belongs to the token that holds its first byte; a token holding only the tail of a multi-byte
character covers no character of its own. Invalid UTF-8 bytes become one U+FFFD each.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..types import TokenLogprob

CharClass = Literal["space", "word", "punct"]
_APOSTROPHES = frozenset("'\u2019")


def token_raw(token: TokenLogprob) -> bytes:
    """The token's exact bytes, or its text encoded as UTF-8 when bytes are unknown."""
    return token.bytes if token.bytes is not None else token.token.encode("utf-8")


def _utf8_len(lead: int) -> int:
    """Length of the UTF-8 sequence a lead byte announces (0 for a byte that cannot lead)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def decode_chars(buf: bytes) -> tuple[str, list[int]]:
    """Decode ``buf`` into text and the byte offset where each character starts."""
    chars: list[str] = []
    starts: list[int] = []
    i = 0
    while i < len(buf):
        n = _utf8_len(buf[i])
        ch = None
        if n and i + n <= len(buf):
            try:
                ch = buf[i : i + n].decode("utf-8")
            except UnicodeDecodeError:
                ch = None
        if ch is None:
            ch, n = "\ufffd", 1
        chars.append(ch)
        starts.append(i)
        i += n
    return "".join(chars), starts


def char_class(ch: str) -> CharClass:
    """``space`` (whitespace), ``word`` (letters, digits, ``_``, combining marks) or ``punct``."""
    if ch.isspace():
        return "space"
    if ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M"):
        return "word"
    return "punct"


@dataclass(frozen=True, slots=True)
class Layout:
    """The decoded text of a token sequence and each token's place in it."""

    text: str
    char_starts: tuple[int, ...]  # byte offset of each character of ``text``
    token_bytes: tuple[tuple[int, int], ...]  # [start, end) byte range of each token
    token_chars: tuple[tuple[int, int], ...]  # [start, end) character range of each token
    n_bytes: int

    def byte_to_char(self, offset: int) -> int:
        """Index of the first character starting at or after byte ``offset``."""
        return bisect_left(self.char_starts, offset)

    def char_to_byte(self, index: int) -> int:
        """Byte offset where character ``index`` starts (``n_bytes`` past the end)."""
        return self.char_starts[index] if index < len(self.char_starts) else self.n_bytes

    def tokens_overlapping(self, char_start: int, char_end: int) -> tuple[int, int]:
        """[first, last) token indices whose bytes overlap the characters [char_start, char_end)."""
        b0, b1 = self.char_to_byte(char_start), self.char_to_byte(char_end)
        hits = [i for i, (s, e) in enumerate(self.token_bytes) if s < b1 and e > b0]
        return (hits[0], hits[-1] + 1) if hits else (0, 0)

    def first_class(self, index: int) -> CharClass | None:
        """Class of the first character of token ``index``; ``None`` if it starts mid-character
        or is empty (such a token always continues the previous one)."""
        s, e = self.token_chars[index]
        bs, be = self.token_bytes[index]
        if bs == be or s == e or self.char_starts[s] != bs:
            return None
        return self._class_at(s)

    def last_class(self, index: int) -> CharClass | None:
        """Class of the last character of token ``index`` (``None`` if it covers no character)."""
        s, e = self.token_chars[index]
        return None if s == e else self._class_at(e - 1)

    def _class_at(self, i: int) -> CharClass:
        ch = self.text[i]
        # an apostrophe between letters belongs to the word: don't, l'eau
        if (
            ch in _APOSTROPHES
            and 0 < i < len(self.text) - 1
            and self.text[i - 1].isalpha()
            and self.text[i + 1].isalpha()
        ):
            return "word"
        return char_class(ch)


def layout(tokens: Sequence[TokenLogprob]) -> Layout:
    """Build the :class:`Layout` of ``tokens``."""
    raws = [token_raw(t) for t in tokens]
    buf = b"".join(raws)
    text, starts = decode_chars(buf)
    byte_ranges: list[tuple[int, int]] = []
    pos = 0
    for raw in raws:
        byte_ranges.append((pos, pos + len(raw)))
        pos += len(raw)
    char_ranges = [(bisect_left(starts, s), bisect_left(starts, e)) for s, e in byte_ranges]
    return Layout(text, tuple(starts), tuple(byte_ranges), tuple(char_ranges), len(buf))
