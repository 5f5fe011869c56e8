"""Critical spans: the parts of an answer where a wrong token does the most harm.

Found with regular expressions on the decoded text, then mapped back to the tokens that hold them
(a span covers every token any of its characters touch). Kinds, in priority order (an earlier kind
wins where matches overlap):

* ``url``: ``http(s)://...`` or ``www....`` (trailing punctuation not included);
* ``email``: ``name@domain.tld``;
* ``date``: ISO ``2024-05-01``, ``01/05/2024``, ``May 1, 2024``, ``1 May 2024``, ``May 2024``;
* ``code``: backticked text, ``snake_case``, ``camelCase``, ``dotted.names()`` and ``calls()``;
* ``number``: integers, decimals, ``1,234``, percentages, signs, ``$12``;
* ``name``: capitalised words (runs such as ``New York``) that do not start a sentence (start of
  text, after ``.``/``!``/``?``/``:`` or a line break) and are not ``I``.

These are heuristics for English-like text: a capitalised sentence-initial name is missed, and a
capitalised common word after a colon is not a name. They flag where to look, not what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._layout import Layout
from .spans import Span, make_span
from .tokens import TokenStats

KINDS = ("url", "email", "date", "code", "number", "name")

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_PATTERNS: dict[str, re.Pattern[str]] = {
    "url": re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]"),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
    "date": re.compile(
        r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
        rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\s+\d{{4}}\b"
        rf"|\b{_MONTH}\s+\d{{4}}\b"
    ),
    "number": re.compile(r"(?<![\w.])[-+$€£]?\d+(?:[,.]\d+)*%?(?!\w)"),
    "code": re.compile(
        r"`[^`\n]+`"
        r"|\b(?:[A-Za-z_]\w+(?:\.[A-Za-z_]\w*)+"  # dotted.names (first part 2+ chars: not e.g.)
        r"|[A-Za-z_][A-Za-z0-9]*_[A-Za-z0-9_]+"  # snake_case
        r"|[a-z]+[A-Z][A-Za-z0-9]*"  # camelCase
        r"|[A-Za-z_]\w*(?=\(\)))(?:\(\))?"  # call()
    ),
    "name": re.compile(r"\b[A-Z][\w'’-]*(?: +[A-Z][\w'’-]*)*"),
}
_SENTENCE_END = re.compile(r"(?:[.!?:]\s*|\n\s*)$")


def _sentence_initial(text: str, start: int) -> bool:
    return (
        not text[:start].strip()
        or _SENTENCE_END.search(text[max(0, start - 4) : start]) is not None
    )


def _name_matches(text: str) -> list[tuple[int, int]]:
    found = []
    for m in _PATTERNS["name"].finditer(text):
        s, e = m.span()
        words = list(re.finditer(r"\S+", text[s:e]))  # the capitalised words of the run
        if _sentence_initial(text, s):  # drop the sentence-initial word, keep the rest of the run
            if len(words) == 1:
                continue
            s = s + words[1].start()
        if text[s:e] == "I":
            continue
        found.append((s, e))
    return found


def find_critical(text: str, kinds: Sequence[str] = KINDS) -> list[tuple[str, int, int]]:
    """``(kind, char_start, char_end)`` of critical spans in ``text``, in text order."""
    taken: list[tuple[str, int, int]] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        spans = (
            _name_matches(text)
            if kind == "name"
            else [m.span() for m in _PATTERNS[kind].finditer(text)]
        )
        for s, e in spans:
            if not any(s < te and e > ts for _, ts, te in taken):
                taken.append((kind, s, e))
    return sorted(taken, key=lambda k: k[1])


def critical_spans(
    lay: Layout, stats: Sequence[TokenStats], kinds: Sequence[str] = KINDS
) -> list[Span]:
    """Critical :class:`Span` objects with the confidence of the tokens holding them."""
    spans = []
    for kind, c0, c1 in find_critical(lay.text, kinds):
        t0, t1 = lay.tokens_overlapping(c0, c1)
        if t1 > t0:
            spans.append(make_span(kind, lay, stats, t0, t1, c0, c1))
    return spans
