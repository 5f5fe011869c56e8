"""Autocomplete ranking: whole-word continuations of a prefix, ranked by exact probability.

Two sources of candidates:

* a list given by the caller (a dictionary, a search index, product names): each is scored as a
  continuation of the prefix (one ``score_continuations`` call, the prefix prefilled once);
* the model's own next-token top-k: every alternative that starts a word is **expanded to the
  whole word** by greedy decoding after it until the word ends (a token that starts with a space
  or a character that is not a letter, digit, apostrophe or hyphen), then all the words are
  scored exactly as continuations, so a word split into several tokens is compared on its full
  probability, not on its first token.

``log P(word)`` is the sum over the word's tokens (``" " + word`` after a prefix that does not end
in whitespace); ``prob`` is the softmax over the candidates (the distribution restricted to them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError
from .scoring import check_options, finite, softmax

if TYPE_CHECKING:
    from ..engines.base import Engine

_WORD_CHAR = re.compile(r"[\w'’-]")


@dataclass(frozen=True, slots=True)
class Completion:
    """One whole-word (or given) candidate with its exact log-probability after the prefix."""

    text: str
    logprob: float
    n_tokens: int
    prob: float
    rank: int
    first_token_logprob: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "text": self.text,
            "logprob": finite(self.logprob),
            "n_tokens": self.n_tokens,
            "prob": self.prob,
            "first_token_logprob": None
            if self.first_token_logprob is None
            else finite(self.first_token_logprob),
        }


@dataclass(frozen=True, slots=True)
class AutocompleteResult:
    """Candidates best first; ``source`` is ``"list"`` or ``"model"``; ``top_token`` is the
    model's single most likely next token (the token-level top-1) and ``greedy_word`` the whole
    word greedy decoding writes from it (model source only)."""

    prefix: str
    source: str
    ranked: tuple[Completion, ...]
    top_token: str | None = None
    greedy_word: str | None = None

    @property
    def best(self) -> str | None:
        return self.ranked[0].text if self.ranked else None

    def rank_of(self, word: str) -> int | None:
        """1-based rank of ``word`` among the candidates (None when absent)."""
        return next((c.rank for c in self.ranked if c.text == word), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "source": self.source,
            "best": self.best,
            "top_token": self.top_token,
            "greedy_word": self.greedy_word,
            "candidates": [c.to_dict() for c in self.ranked],
        }


def join_text(prefix: str, candidate: str) -> str:
    """The continuation to score: a space between when neither side has whitespace there."""
    if prefix[-1:].isspace() or candidate[:1].isspace() or not _WORD_CHAR.match(candidate[:1]):
        return candidate
    return " " + candidate


def word_prefix(text: str) -> str:
    """The first whole word of ``text`` (leading whitespace skipped; '' when it starts with
    something that is not a word character)."""
    s = text.lstrip()
    end = 0
    while end < len(s) and _WORD_CHAR.match(s[end]):
        end += 1
    return s[:end]


def _rank(
    prefix: str, source: str, texts: list[str], scored: Sequence[Any], top_token: str | None
) -> AutocompleteResult:
    lps = [float(s.logprob) for s in scored]
    probs = softmax(lps)
    order = sorted(range(len(texts)), key=lambda i: (-lps[i], i))
    ranked = tuple(
        Completion(
            texts[i],
            lps[i],
            int(scored[i].n_scored),
            float(probs[i]),
            r + 1,
            scored[i].tokens[0].logprob if scored[i].tokens else None,
        )
        for r, i in enumerate(order)
    )
    return AutocompleteResult(prefix, source, ranked, top_token)


def rank_candidates(engine: Engine, prefix: str, candidates: Sequence[str]) -> AutocompleteResult:
    """Rank the given ``candidates`` as continuations of ``prefix`` by exact log-probability."""
    _check_prefix(prefix)
    cands = check_options(candidates, param="candidates", kind="candidate")
    scored = engine.score_continuations(prefix, [join_text(prefix, c) for c in cands])
    return _rank(prefix, "list", cands, scored, None)


def _check_prefix(prefix: Any) -> None:
    if not isinstance(prefix, str) or not prefix.strip():
        raise InvalidRequestError("Invalid 'prefix': it is empty.", param="prefix")


def _top_alternatives(engine: Engine, ids: list[int], top_k: int) -> list[Any]:
    from ..engines import GenerationParams

    params = GenerationParams.make(max_tokens=1, temperature=0.0, top_logprobs=top_k)
    completion = engine.complete(ids, params)
    if not completion.tokens:
        return []
    return list(completion.tokens[0].top_logprobs)[:top_k]


def starts_word(prefix: str, token: str) -> bool:
    """Whether ``token`` begins a new word after ``prefix`` (not the rest of its last word)."""
    if token[:1].isspace():
        rest = token.lstrip()
        return bool(rest) and bool(_WORD_CHAR.match(rest[0]))
    return prefix[-1:].isspace() and bool(_WORD_CHAR.match(token[:1]))


def _expand(engine: Engine, prefix: str, ids: list[int], alt: Any, max_tokens: int) -> str:
    """The whole word that the alternative token begins ('' when it begins no word)."""
    from ..engines import GenerationParams

    if not starts_word(prefix, alt.token):
        return ""
    more = ""
    if max_tokens > 0:
        params = GenerationParams.make(max_tokens=max_tokens, temperature=0.0)
        more = engine.complete([*ids, int(alt.id)], params).choices[0].text
    return word_prefix(alt.token + more)


def expand_top_k(
    engine: Engine, prefix: str, *, top_k: int = 10, max_word_tokens: int = 4
) -> AutocompleteResult:
    """The model's top-``top_k`` next tokens, each expanded to a whole word, then the distinct
    words ranked by their exact log-probability (see the module docstring)."""
    _check_prefix(prefix)
    if (
        isinstance(top_k, bool)
        or not isinstance(top_k, int)
        or not 1 <= top_k <= int(getattr(engine, "max_logprobs", 20))
    ):
        raise InvalidRequestError(
            f"Invalid 'top_k': expected 1..{getattr(engine, 'max_logprobs', 20)}, got {top_k!r}.",
            param="top_k",
        )
    ids = list(engine.tokenize(prefix, add_bos=True))
    alts = [a for a in _top_alternatives(engine, ids, top_k) if a.id is not None]
    top_token = alts[0].token if alts else None
    with ThreadPoolExecutor(max(1, min(8, len(alts)))) as pool:
        words = list(pool.map(lambda a: _expand(engine, prefix, ids, a, max_word_tokens), alts))
    distinct = list(dict.fromkeys(w for w in words if w))
    greedy = words[0] if words and words[0] else None
    if not distinct:
        return AutocompleteResult(prefix, "model", (), top_token, greedy)
    scored = engine.score_continuations(prefix, [join_text(prefix, w) for w in distinct])
    result = _rank(prefix, "model", distinct, scored, top_token)
    return AutocompleteResult(prefix, "model", result.ranked, top_token, greedy)


def autocomplete(
    engine: Engine,
    prefix: str,
    candidates: Sequence[str] | None = None,
    *,
    top_k: int = 10,
    max_word_tokens: int = 4,
) -> AutocompleteResult:
    """Rank ``candidates`` when given, else the model's own top-k expanded to whole words."""
    if candidates is not None:
        return rank_candidates(engine, prefix, candidates)
    return expand_top_k(engine, prefix, top_k=top_k, max_word_tokens=max_word_tokens)


__all__ = [
    "AutocompleteResult",
    "Completion",
    "autocomplete",
    "expand_top_k",
    "join_text",
    "rank_candidates",
    "starts_word",
    "word_prefix",
]
