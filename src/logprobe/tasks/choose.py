"""Constrained generation that also says how strongly the model preferred each allowed value.

``choose(engine, prompt, choices=[...])`` generates under an llguidance grammar (the output is
always one of the choices) and, separately, scores every choice as a continuation of the prompt,
so the distribution over choices is exact rather than the product of greedy steps (greedy choice
favours options that share a likely first token). With ``regex=`` / ``json_schema=`` / ``lark=``
there is no finite set to score; the result then carries each step's allowed alternatives.

Generation asks the engine for ``processed`` logprobs, so each step's logprobs (the chosen token
and its alternatives) are the distribution renormalised over the tokens the grammar allowed
(at temperature 0: the raw logits with disallowed tokens removed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidRequestError, UnsatisfiableError
from ..types import LOGPROB_FLOOR, Alternative, Completion, TokenLogprob, tokens_text
from .grammar import (
    GrammarConstraint,
    StepMask,
    choices_grammar,
    json_schema_grammar,
    lark_grammar,
    make_constraint,
    regex_grammar,
)
from .prompting import TextOrMessages, build_prompt, require_renderable
from .scoring import (
    Normalization,
    ScoredOption,
    check_normalization,
    check_options,
    score_options,
    top_two_margin,
)

if TYPE_CHECKING:
    from ..engines.base import LocalEngine

Kind = Literal["choices", "regex", "json_schema", "lark"]


@dataclass(frozen=True, slots=True)
class AllowedStep:
    """One generated token and the alternatives (among the engine's top ones) the grammar
    allowed."""

    token: TokenLogprob
    n_allowed: int
    alternatives: tuple[Alternative, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token.token,
            "logprob": self.token.logprob,
            "n_allowed": self.n_allowed,
            "allowed_alternatives": [a.to_dict() for a in self.alternatives],
        }


@dataclass(frozen=True, slots=True)
class ChooseResult:
    """Constrained output, the distribution over choices (when finite) and per-step alternatives."""

    output: str
    kind: Kind
    complete: bool
    steps: tuple[AllowedStep, ...]
    options: tuple[ScoredOption, ...] = ()
    normalize: Normalization = "none"
    value: Any = None
    completion: Completion | None = field(default=None, repr=False)

    @property
    def distribution(self) -> dict[str, float]:
        return {o.text: o.prob for o in self.options}

    @property
    def best(self) -> str | None:
        """The most probable choice by sequence score (may differ from the greedy ``output``)."""
        if not self.options:
            return None
        return max(self.options, key=lambda o: o.prob).text

    @property
    def greedy_agrees(self) -> bool | None:
        return None if not self.options else self.best == self.output

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "output": self.output,
            "kind": self.kind,
            "complete": self.complete,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.kind == "json_schema":
            d["value"] = self.value
        if self.options:
            d.update(
                distribution=self.distribution,
                best=self.best,
                greedy_agrees=self.greedy_agrees,
                margin=top_two_margin(list(self.distribution.values())),
                normalize=self.normalize,
                options=[o.to_dict() for o in self.options],
            )
        return d


def choose(
    engine: LocalEngine,
    prompt: TextOrMessages,
    *,
    choices: Sequence[str] | None = None,
    regex: str | None = None,
    json_schema: Mapping[str, Any] | str | None = None,
    lark: str | None = None,
    chat: bool = False,
    option_prefix: str | None = None,
    normalize: str = "none",
    max_tokens: int | None = None,
    temperature: float = 0.0,
    top_logprobs: int = 10,
    seed: int | None = None,
) -> ChooseResult:
    """Generate under exactly one of ``choices`` / ``regex`` / ``json_schema`` / ``lark``.

    ``option_prefix`` is put before the constrained text (default: a space after a raw prompt,
    nothing after a chat prompt) and stripped from ``output``.
    """
    kind, spec = _one_constraint(choices, regex, json_schema, lark)
    norm = check_normalization(normalize)
    built = build_prompt(engine, prompt, chat=chat, option_prefix=option_prefix)
    require_renderable(built, "constrained choice")
    prefix = built.option_prefix
    if kind == "choices":
        opts = check_options(spec, param="choices", kind="choice")
        _check_encodable(opts)
        grammar = choices_grammar([prefix + c for c in opts])
        constraint = make_constraint(engine, grammar, param="choices")
        _check_producible(engine, constraint, opts, prefix)
        limit = max_tokens or _choices_budget(engine, opts, prefix)
    else:
        grammar = _grammar_for(kind, spec, prefix)
        constraint = make_constraint(engine, grammar, param=kind)
        limit = max_tokens or 256
    completion = _generate(
        engine, built.engine_prompt, constraint, limit, temperature, top_logprobs, seed
    )
    raw = tokens_text(completion.tokens)
    output = raw[len(prefix) :] if prefix and raw.startswith(prefix) else raw
    complete = constraint.is_accepting
    steps = _allowed_steps(completion.tokens, constraint.steps)
    if kind == "choices":
        scored = engine.score_continuations(built.engine_prompt, [prefix + c for c in opts])
        options = tuple(score_options(opts, [prefix + c for c in opts], scored, norm))
        return ChooseResult(output, kind, complete, steps, options, norm, None, completion)
    value = _parse_json(output) if kind == "json_schema" and complete else None
    return ChooseResult(output, kind, complete, steps, (), norm, value, completion)


def _one_constraint(
    choices: Sequence[str] | None,
    regex: str | None,
    json_schema: Mapping[str, Any] | str | None,
    lark: str | None,
) -> tuple[Kind, Any]:
    given = [
        (k, v)
        for k, v in (
            ("choices", choices),
            ("regex", regex),
            ("json_schema", json_schema),
            ("lark", lark),
        )
        if v is not None
    ]
    if len(given) != 1:
        names = ", ".join(k for k, _ in given) or "none"
        raise InvalidRequestError(
            f"Invalid 'constraint': give exactly one of choices, regex, json_schema, lark "
            f"(got {names}).",
            param="constraint",
        )
    kind, spec = given[0]
    if kind in ("regex", "lark") and (not isinstance(spec, str) or not spec):
        raise InvalidRequestError(f"Invalid '{kind}': expected a non-empty string.", param=kind)
    return kind, spec  # type: ignore[return-value]


def _grammar_for(kind: Kind, spec: Any, prefix: str) -> str:
    if kind == "regex":
        return regex_grammar(re.escape(prefix) + f"(?:{spec})" if prefix else spec)
    if kind == "json_schema":
        if isinstance(spec, str):
            spec = _parse_json(spec, param="json_schema")
        if prefix.strip():
            raise InvalidRequestError(
                "Invalid 'option_prefix': JSON output takes no prefix.", param="option_prefix"
            )
        return json_schema_grammar(spec)
    return lark_grammar(spec)


def _parse_json(text: str, *, param: str = "output") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidRequestError(
            f"Invalid '{param}': not valid JSON ({e}).", param=param
        ) from None


def _check_encodable(choices: list[str]) -> None:
    for c in choices:
        try:
            c.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsatisfiableError(
                f"Invalid 'choices': {c!r} is not valid Unicode text (no token sequence "
                "spells it).",
                param="choices",
            ) from None


def _check_producible(
    engine: LocalEngine, constraint: GrammarConstraint, choices: list[str], prefix: str
) -> None:
    """Every choice must be producible: its tokens spell it exactly and the grammar accepts them."""
    for c in choices:
        ids = list(engine.tokenize(prefix + c))
        spelled = b"".join(engine.token_bytes(i) for i in ids)
        if spelled != (prefix + c).encode("utf-8") or not constraint.accepts(ids):
            raise UnsatisfiableError(
                f"Invalid 'choices': the model's tokenizer cannot produce {c!r} exactly.",
                param="choices",
            )


def _choices_budget(engine: LocalEngine, choices: list[str], prefix: str) -> int:
    """Tokens enough for the longest choice, even spelled with shorter (non-canonical) tokens."""
    longest = max(len(engine.tokenize(prefix + c)) for c in choices)
    byte_len = max(len((prefix + c).encode("utf-8")) for c in choices)
    return min(max(longest + 8, 2 * longest), byte_len + 1)


def _generate(
    engine: LocalEngine,
    prompt: str | list[int],
    constraint: GrammarConstraint,
    max_tokens: int,
    temperature: float,
    top_logprobs: int,
    seed: int | None,
) -> Completion:
    from ..engines import GenerationParams

    max_lp = engine.max_logprobs
    params = GenerationParams.make(
        max_tokens=max_tokens,
        temperature=temperature,
        top_logprobs=min(top_logprobs, max_lp),
        seed=seed,
        max_logprobs=max_lp,
        logprob_mode="processed",
    )
    return engine.complete(prompt, params, constraint=constraint)


def _allowed_steps(
    tokens: Sequence[TokenLogprob], masks: Sequence[StepMask]
) -> tuple[AllowedStep, ...]:
    steps = []
    for tok, mask in zip(tokens, masks, strict=False):  # a finished grammar stops the masks
        alts = tuple(
            a
            for a in tok.top_logprobs
            if a.logprob > LOGPROB_FLOOR and (mask.ids is None or a.id is None or a.id in mask.ids)
        )
        steps.append(AllowedStep(tok, mask.n_allowed, alts))
    return tuple(steps)


__all__ = ["AllowedStep", "ChooseResult", "choose"]
