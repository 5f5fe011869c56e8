"""Grammar constraints through llguidance (extra ``grammar``): choices, regex, JSON schema, Lark.

:class:`GrammarConstraint` implements the engine's ``TokenConstraint`` protocol: before each
decoding step the engine asks :meth:`~GrammarConstraint.allowed` for a boolean mask over the
vocabulary, then reports the sampled token with :meth:`~GrammarConstraint.advance`. The
constraint records every step's mask size and allowed ids so callers can show which alternatives
were allowed.

The llguidance tokenizer is built once per engine from the engine's exact token bytes
(``engine.token_bytes``) and its tokenizer (``engine.tokenize``), or straight from the llama.cpp
vocabulary when the engine exposes it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EngineError, InvalidRequestError, UnsatisfiableError

if TYPE_CHECKING:
    from ..engines.base import LocalEngine

_CACHE: dict[int, tuple[Any, Any]] = {}
_CACHE_LOCK = threading.Lock()
MAX_RECORDED_IDS = 4096
"""Steps allowing more tokens than this record only the count, not the ids."""


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise InvalidRequestError(
            "constrained generation needs llguidance: pip install 'logprobe[grammar]'",
            param="constraint",
        ) from e
    return llguidance


class _EngineVocab:
    """What llguidance's ``TokenizerWrapper`` reads: token bytes, special ids, EOS, a tokenizer."""

    def __init__(self, engine: LocalEngine, n_vocab: int, eos_ids: list[int]):
        self.tokens = [engine.token_bytes(i) for i in range(n_vocab)]
        self.eos_token_id = eos_ids[0]
        self.bos_token_id = getattr(engine, "bos_token_id", None)
        self.special_token_ids = _special_ids(engine, eos_ids, self.tokens)
        self._engine = engine

    def __call__(self, text: str) -> list[int]:
        if not isinstance(text, str):  # makes llguidance pass text, not bytes
            raise TypeError("text expected")
        return list(self._engine.tokenize(text))


def _eos_ids(engine: LocalEngine) -> list[int]:
    for attr in ("eog_ids", "eog_token_ids", "eos_token_ids"):
        ids = getattr(engine, attr, None)
        if ids:
            return [int(i) for i in ids]
    eos = getattr(engine, "eos_token_id", None)
    if eos is not None:
        return [int(eos)]
    raise EngineError("the engine does not say which token ends a generation (eos_token_id)")


_SPECIAL_LOOK = re.compile(rb"^<[^<>\s]{1,64}>$")


def _special_ids(engine: LocalEngine, eos: list[int], tokens: Sequence[bytes]) -> list[int]:
    """Control tokens (``<|im_start|>``...): the engine's list, or tokens that look like ``<x>``
    and that the tokenizer produces only when parsing special tokens."""
    ids = getattr(engine, "special_token_ids", None)
    if ids is not None:
        return sorted({int(i) for i in ids} | set(eos))
    found = set(eos)
    for i, b in enumerate(tokens):
        if _SPECIAL_LOOK.match(b):
            text = b.decode("utf-8", errors="replace")
            if engine.tokenize(text, special=True) == [i] and engine.tokenize(text) != [i]:
                found.add(i)
    return sorted(found)


def lltokenizer_for(engine: LocalEngine) -> Any:
    """The llguidance tokenizer of ``engine`` (built once per engine, ~1 s, then cached)."""
    key = id(engine)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] is engine:
            return hit[1]
    llg = _llguidance()
    n_vocab = int(engine.n_vocab)
    eos = _eos_ids(engine)
    vocab_ptr = getattr(engine, "llama_vocab", None)
    if vocab_ptr is not None:
        from llguidance.llamacpp import lltokenizer_from_vocab

        tok = lltokenizer_from_vocab(vocab_ptr, n_vocab=n_vocab, eos_token=eos)
    else:
        wrapper = llg.TokenizerWrapper(_EngineVocab(engine, n_vocab, eos))
        tok = llg.LLTokenizer(wrapper, n_vocab=n_vocab, eos_token=eos)
    with _CACHE_LOCK:
        _CACHE[key] = (engine, tok)
    return tok


# --- grammars ----------------------------------------------------------------------------------


def choices_grammar(choices: Sequence[str]) -> str:
    """An llguidance grammar matching exactly one of ``choices``."""
    llg = _llguidance()
    lark = "start: " + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)
    return str(llg.LLMatcher.grammar_from_lark(lark))


def regex_grammar(regex: str) -> str:
    return str(_llguidance().LLMatcher.grammar_from_regex(regex))


def json_schema_grammar(schema: Mapping[str, Any] | str) -> str:
    llg = _llguidance()
    try:
        return str(llg.LLMatcher.grammar_from_json_schema(schema))
    except ValueError as e:
        raise InvalidRequestError(f"Invalid 'json_schema': {e}", param="json_schema") from None


def lark_grammar(lark: str) -> str:
    return str(_llguidance().LLMatcher.grammar_from_lark(lark))


def _grammar_error(message: str, param: str) -> InvalidRequestError:
    first = " ".join(message.split("<state>")[0].strip().split())
    if len(first) > 300:
        first = first[:297] + "..."
    if "unsatisfiable" in message.lower():
        return UnsatisfiableError(f"Unsatisfiable '{param}': {first}", param=param)
    return InvalidRequestError(f"Invalid '{param}': {first}", param=param)


# --- the constraint ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepMask:
    """What the grammar allowed at one decoding step."""

    n_allowed: int
    ids: frozenset[int] | None  # None when more than MAX_RECORDED_IDS were allowed


class GrammarConstraint:
    """A ``TokenConstraint`` backed by an llguidance matcher.

    Raises :class:`InvalidRequestError` for a grammar that does not compile and
    :class:`UnsatisfiableError` for one that no token sequence can satisfy.
    """

    def __init__(self, tokenizer: Any, grammar: str, n_vocab: int, *, param: str = "grammar"):
        llg = _llguidance()
        from llguidance.numpy import allocate_token_bitmask

        is_error, messages = llg.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
        if is_error:
            raise _grammar_error(messages[0] if messages else "invalid grammar", param)
        self._matcher = llg.LLMatcher(tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise _grammar_error(self._matcher.get_error(), param)
        self._n_vocab = n_vocab
        self._tok_vocab = int(tokenizer.vocab_size)
        self._eos = set(int(i) for i in tokenizer.eos_tokens)
        self._bitmask = allocate_token_bitmask(1, self._tok_vocab)
        self._param = param
        self.steps: list[StepMask] = []
        self.tokens: list[int] = []
        self._check_satisfiable()

    def _mask(self) -> np.ndarray:
        from llguidance.numpy import fill_next_token_bitmask

        fill_next_token_bitmask(self._matcher, self._bitmask, 0)
        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
        mask = np.zeros(self._n_vocab, dtype=bool)
        n = min(self._n_vocab, self._tok_vocab)
        mask[:n] = bits[:n].astype(bool)
        return mask  # (n_vocab,)

    def _check_satisfiable(self) -> None:
        mask = self._mask()
        if self._matcher.is_error():
            if self._matcher.get_error().startswith("NoExtension"):
                raise UnsatisfiableError(
                    f"Unsatisfiable '{self._param}': no text can match it.", param=self._param
                )
            raise _grammar_error(self._matcher.get_error(), self._param)
        non_eos = mask.copy()
        non_eos[list(i for i in self._eos if i < self._n_vocab)] = False
        if not non_eos.any() and not self._matcher.is_accepting():
            raise UnsatisfiableError(
                f"Unsatisfiable '{self._param}': no token of this model can start a match.",
                param=self._param,
            )

    def accepts(self, token_ids: Sequence[int]) -> bool:
        """Whether the grammar accepts exactly ``token_ids`` from its current state (no change)."""
        m = self._matcher.deep_copy()
        ids = list(token_ids)
        return m.try_consume_tokens(ids) == len(ids) and m.is_accepting()

    # TokenConstraint protocol
    def allowed(self) -> np.ndarray:
        mask = self._mask()
        ids = np.flatnonzero(mask)
        rec = frozenset(int(i) for i in ids) if ids.size <= MAX_RECORDED_IDS else None
        self.steps.append(StepMask(int(ids.size), rec))
        return mask

    def advance(self, token_id: int) -> None:
        self.tokens.append(int(token_id))
        if not self._matcher.consume_token(int(token_id)):
            raise EngineError(
                f"the grammar rejected token {token_id} that the engine generated: "
                f"{self._matcher.get_error()}"
            )

    def is_finished(self) -> bool:
        return bool(self._matcher.is_stopped())

    @property
    def is_accepting(self) -> bool:
        return bool(self._matcher.is_accepting())


def make_constraint(
    engine: LocalEngine, grammar: str, *, param: str = "grammar"
) -> GrammarConstraint:
    """A fresh :class:`GrammarConstraint` for ``engine`` (one per generation)."""
    return GrammarConstraint(lltokenizer_for(engine), grammar, int(engine.n_vocab), param=param)


__all__ = [
    "GrammarConstraint",
    "StepMask",
    "choices_grammar",
    "json_schema_grammar",
    "lark_grammar",
    "lltokenizer_for",
    "make_constraint",
    "regex_grammar",
]
