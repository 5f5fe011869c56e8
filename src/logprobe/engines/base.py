"""The engine protocol: what every engine (embedded llama.cpp, remote OpenAI-compatible) offers.

An engine turns prompts into :class:`~logprobe.types.Completion` objects and texts into
:class:`~logprobe.types.ScoredText`. Options are validated once, here, into
:class:`GenerationParams`, so every engine and the server reject the same bad input with the same
message and ``param``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from typing_extensions import Unpack

from ..errors import InvalidRequestError
from ..types import Completion, LogprobMode, ScoredText, TokenLogprob

if TYPE_CHECKING:
    from ._aio import AsyncEventStream

DEFAULT_MAX_LOGPROBS = 20
"""Default cap on alternatives per token (OpenAI's); engines may be configured higher."""

Message = Mapping[str, Any]
Prompt = str | Sequence[int]


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Validated generation options (build with :meth:`GenerationParams.make`).

    ``top_logprobs`` alternatives are returned per generated token; ``logprobs=False`` turns all
    logprob bookkeeping off. ``prompt_logprobs`` (vLLM-style / ``echo``) asks for the prompt's
    own token logprobs with that many alternatives. ``temperature=0`` means greedy.
    """

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    logprobs: bool = True
    top_logprobs: int = 0
    prompt_logprobs: int | None = None
    logprob_mode: LogprobMode = "raw"
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @classmethod
    def make(cls, *, max_logprobs: int = DEFAULT_MAX_LOGPROBS, **kw: Any) -> GenerationParams:
        """Validate and build; raises :class:`InvalidRequestError` naming the bad ``param``."""
        if "stop" in kw:
            stop = kw["stop"]
            if stop is None:
                kw["stop"] = ()
            elif isinstance(stop, str):
                kw["stop"] = (stop,)
            else:
                kw["stop"] = tuple(stop)
        if kw.get("logit_bias") is None:
            kw.pop("logit_bias", None)
        p = cls(
            **{k: v for k, v in kw.items() if v is not None or k in ("seed", "prompt_logprobs")}
        )
        p.validate(max_logprobs=max_logprobs)
        return p

    def validate(self, *, max_logprobs: int = DEFAULT_MAX_LOGPROBS) -> None:
        def bad(param: str, msg: str) -> InvalidRequestError:
            return InvalidRequestError(f"Invalid '{param}': {msg}", param=param)

        def _int(name: str, v: Any, lo: int, hi: int | None = None) -> None:
            if isinstance(v, bool) or not isinstance(v, int):
                raise bad(name, f"expected an integer, got {type(v).__name__}.")
            if v < lo or (hi is not None and v > hi):
                rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
                raise bad(name, f"must be {rng}, got {v}.")

        def _num(name: str, v: Any, lo: float, hi: float) -> None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(name, f"expected a finite number, got {v!r}.")
            if not lo <= v <= hi:
                raise bad(name, f"must be between {lo} and {hi}, got {v}.")

        _int("max_tokens", self.max_tokens, 0)
        _num("temperature", self.temperature, 0.0, 2.0)
        _num("top_p", self.top_p, 0.0, 1.0)
        if self.top_p == 0.0:
            raise bad("top_p", "must be greater than 0.")
        _int("top_k", self.top_k, 0)
        _num("min_p", self.min_p, 0.0, 1.0)
        if self.seed is not None:
            _int("seed", self.seed, -(2**63), 2**64 - 1)
        _int("n", self.n, 1, 128)
        _int("top_logprobs", self.top_logprobs, 0, max_logprobs)
        if self.prompt_logprobs is not None:
            _int("prompt_logprobs", self.prompt_logprobs, 0, max_logprobs)
        if self.logprob_mode not in ("raw", "processed"):
            raise bad("logprob_mode", f"must be 'raw' or 'processed', got {self.logprob_mode!r}.")
        _num("presence_penalty", self.presence_penalty, -2.0, 2.0)
        _num("frequency_penalty", self.frequency_penalty, -2.0, 2.0)
        for s in self.stop:
            if not isinstance(s, str) or not s:
                raise bad("stop", "every stop sequence must be a non-empty string.")
        if len(self.stop) > 16:
            raise bad("stop", "at most 16 stop sequences.")
        for k, v in self.logit_bias.items():
            if isinstance(k, bool) or not isinstance(k, int):
                raise bad("logit_bias", f"keys must be token ids, got {k!r}.")
            _num("logit_bias", v, -100.0, 100.0)


class GenerationOptions(TypedDict, total=False):
    """The keyword options every engine's ``complete``/``chat``/``stream`` accept (the fields of
    :class:`GenerationParams`), e.g. ``eng.chat(msgs, top_logprobs=5, max_tokens=8)``."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    seed: int | None
    stop: str | Sequence[str] | None
    n: int
    logprobs: bool
    top_logprobs: int
    prompt_logprobs: int | None
    logprob_mode: LogprobMode
    logit_bias: Mapping[int, float] | None
    presence_penalty: float
    frequency_penalty: float


_OPTION_NAMES = frozenset(GenerationOptions.__annotations__)


def resolve_params(
    params: GenerationParams | None = None,
    *,
    max_logprobs: int = DEFAULT_MAX_LOGPROBS,
    **options: Unpack[GenerationOptions],
) -> GenerationParams:
    """The validated :class:`GenerationParams` for a call given ``params``, keyword options, or
    both when they agree.

    Keyword options left at ``None`` count as not given. An option that contradicts ``params``
    raises :class:`InvalidRequestError` naming it, as does an unknown option or a bad value.
    """
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise InvalidRequestError(
            f"unknown generation option {unknown[0]!r}; expected one of "
            f"{', '.join(sorted(_OPTION_NAMES))}",
            param=unknown[0],
        )
    given = {k: v for k, v in options.items() if v is not None}
    if params is None:
        return GenerationParams.make(max_logprobs=max_logprobs, **given)
    if given:
        as_given = GenerationParams.make(max_logprobs=max_logprobs, **given)
        for name in sorted(given):
            mine, theirs = getattr(as_given, name), getattr(params, name)
            if mine != theirs:
                raise InvalidRequestError(
                    f"{name}={mine!r} contradicts params.{name}={theirs!r}: give each option "
                    "either in params or as a keyword",
                    param=name,
                )
    params.validate(max_logprobs=max_logprobs)
    return params


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One step of a streamed generation for choice ``index``.

    A token event has ``token`` set and ``text`` = the text it adds (may be empty while a UTF-8
    character is incomplete); the final event of a choice has ``finish_reason`` set and may carry
    trailing ``text`` (held back while it could still start a stop sequence).
    """

    index: int
    token: TokenLogprob | None = None
    text: str = ""
    finish_reason: str | None = None


class TokenConstraint(Protocol):
    """A constraint on generated tokens (e.g. a grammar), consulted at every decoding step.

    The embedded engine calls :meth:`allowed` before sampling each token (a boolean array over
    the vocabulary, or ``None`` for "no restriction"), then :meth:`advance` with the chosen id.
    Generation ends (finish reason ``"stop"``) once :meth:`is_finished` is true.
    """

    def allowed(self) -> Any:  # numpy bool array (n_vocab,) or None
        ...

    def advance(self, token_id: int) -> None: ...

    def is_finished(self) -> bool: ...


@runtime_checkable
class Engine(Protocol):
    """What every engine offers (embedded :class:`~logprobe.engines.llamacpp.LlamaEngine`,
    :class:`~logprobe.engines.remote.RemoteEngine`). All methods are thread-safe.

    Generation takes either ``params`` or keyword options (:class:`GenerationOptions`); both are
    resolved by :func:`resolve_params`. Capabilities are properties, so callers never probe
    attributes: ``can_score`` (``score``/``score_continuations`` give trustworthy teacher-forced
    logprobs), ``max_logprobs`` (most alternatives per token) and ``exact_entropy`` (tokens carry
    the entropy of the full distribution rather than ``None``).
    """

    @property
    def model_name(self) -> str: ...

    @property
    def max_logprobs(self) -> int: ...

    @property
    def can_score(self) -> bool: ...

    @property
    def exact_entropy(self) -> bool: ...

    def complete(
        self,
        prompt: Prompt,
        params: GenerationParams | None = None,
        *,
        constraint: TokenConstraint | None = None,
        **options: Unpack[GenerationOptions],
    ) -> Completion:
        """Plain completion of a text prompt (or token ids)."""
        ...

    def chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        constraint: TokenConstraint | None = None,
        **options: Unpack[GenerationOptions],
    ) -> Completion:
        """Chat completion: the model's chat template is applied to ``messages``."""
        ...

    def stream(
        self,
        prompt: Prompt | None = None,
        params: GenerationParams | None = None,
        *,
        messages: Sequence[Message] | None = None,
        constraint: TokenConstraint | None = None,
        **options: Unpack[GenerationOptions],
    ) -> Iterator[StreamEvent]:
        """Token-by-token events; closing the iterator cancels the generation."""
        ...

    def score(
        self,
        text: str,
        *,
        prompt: Prompt | None = None,
        top_logprobs: int = 0,
        messages: Sequence[Message] | None = None,
    ) -> ScoredText:
        """Teacher-forced logprobs of ``text`` (after ``prompt``, or as the assistant's reply to
        ``messages``, when given)."""
        ...

    def score_continuations(
        self, prompt: Prompt, continuations: Sequence[str], *, top_logprobs: int = 0
    ) -> list[ScoredText]:
        """Score several continuations of one shared prompt (the prompt is processed once)."""
        ...

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]: ...

    def render_chat(
        self, messages: Sequence[Message], *, add_generation_prompt: bool = True
    ) -> str:
        """The prompt text the chat template produces for ``messages``."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LocalEngine(Engine, Protocol):
    """An :class:`Engine` that owns its model's vocabulary and context window (the embedded
    engine). Grammar constraints, rolling perplexity and the server's token endpoints need these;
    a remote server does not expose them. The server streams through :meth:`astream`."""

    @property
    def n_vocab(self) -> int: ...

    @property
    def n_ctx(self) -> int: ...

    def token_bytes(self, token_id: int) -> bytes: ...

    async def astream(
        self,
        prompt: Prompt | None = None,
        params: GenerationParams | None = None,
        *,
        messages: Sequence[Message] | None = None,
        constraint: TokenConstraint | None = None,
        **options: Unpack[GenerationOptions],
    ) -> AsyncEventStream:
        """:meth:`stream` for asyncio: bad input raises at the ``await``; the result is an async
        iterator of events with ``prompt_tokens`` and ``close()``."""
        ...
