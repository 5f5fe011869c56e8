"""The review gate: apply a :class:`~logprobe.analysis.Policy` to a response.

``gate(completion, "default")`` returns a :class:`Decision`: ``publish`` when no rule fires, else
the strictest fired action (``reject`` over ``review``), with one :class:`Reason` per fired rule
naming the metric, its value, the threshold and the spans that triggered it.

Calibration hook: pass ``confidence_transform`` (a callable ``SequenceSummary -> float`` in
[0, 1], e.g. a fitted calibrator for this model). Its value is the ``confidence`` metric and is
reported in the decision; policies with ``confidence`` rules require it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._json import json_safe
from ..errors import CalibrationError, InvalidRequestError
from ..types import TokenLogprob
from .analyzer import Analysis, analyze
from .policy import CONFIDENCE, Policy, Rule, get_policy
from .sequence import Analyzable, SequenceSummary
from .spans import Span, make_span

DecisionKind = Literal["publish", "review", "reject"]
ConfidenceTransform = Callable[[SequenceSummary], float]
_SEVERITY = {"publish": 0, "review": 1, "reject": 2}
MAX_EVIDENCE = 5


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a rule fired: ``metric`` was ``comparison`` ``threshold``; ``spans`` show where."""

    rule: str
    metric: str
    value: float
    threshold: float
    comparison: str
    action: str
    message: str
    spans: tuple[Span, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "rule": self.rule,
                "metric": self.metric,
                "value": self.value,
                "threshold": self.threshold,
                "comparison": self.comparison,
                "action": self.action,
                "message": self.message,
                "spans": [s.to_dict() for s in self.spans],
            }
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's verdict for one response."""

    decision: DecisionKind
    policy: str
    reasons: tuple[Reason, ...]
    analysis: Analysis
    confidence: float | None = None

    @property
    def summary(self) -> SequenceSummary:
        return self.analysis.summary

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "decision": self.decision,
                "policy": self.policy,
                "confidence": self.confidence,
                "reasons": [r.to_dict() for r in self.reasons],
                "summary": self.summary.to_dict(),
                "low_spans": [s.to_dict() for s in self.analysis.low_spans],
                "critical": [s.to_dict() for s in self.analysis.critical],
            }
        )


def _status_spans(a: Analysis, status: str) -> list[Span]:
    return [
        make_span(status, a.layout, a.stats, s.index, s.index + 1)
        for s in a.stats
        if s.status == status
    ]


def _weakest_token_span(a: Analysis) -> list[Span]:
    scored = [s for s in a.stats if s.logprob is not None]
    if not scored:
        return []
    weakest = min(scored, key=lambda s: s.logprob)  # type: ignore[arg-type, return-value]
    w = a.word_of(weakest.index)
    t0, t1 = (w.token_start, w.token_end) if w else (weakest.index, weakest.index + 1)
    return [make_span("token", a.layout, a.stats, t0, t1)]


def _by_weakness(spans: Sequence[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: s.min_prob if s.min_prob is not None else 1.0)


def evidence(a: Analysis, rule: Rule) -> tuple[Span, ...]:
    """The spans that show why ``rule`` fired (at most :data:`MAX_EVIDENCE`)."""
    if rule.metric == "critical_min_prob":
        spans = [s for s in _by_weakness(a.critical) if rule.fires(s.min_prob)]
    elif rule.metric in ("n_floored", "n_invalid"):
        spans = _status_spans(a, "floored" if rule.metric == "n_floored" else "invalid")
    elif rule.metric in ("min_prob", "min_logprob"):
        spans = _weakest_token_span(a)
    elif rule.metric in ("longest_low_span_words", "low_span_count"):
        spans = sorted(a.low_spans, key=lambda s: -a.words_in(s))
    else:  # an aggregate: show the weakest stretches behind it
        spans = _by_weakness(a.low_spans)
    return tuple(spans[:MAX_EVIDENCE])


def _message(rule: Rule, value: float) -> str:
    msg = f"{rule.metric} = {value:.4g} is {rule.comparison} {rule.threshold:g}"
    return f"{msg}: {rule.why}" if rule.why else msg


def _confidence(transform: ConfidenceTransform | None, summary: SequenceSummary) -> float | None:
    if transform is None:
        return None
    try:
        value = float(transform(summary))
    except (TypeError, ValueError) as e:
        raise CalibrationError(
            f"confidence_transform failed: {e}", param="confidence_transform"
        ) from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise CalibrationError(
            f"confidence_transform returned {value!r}; expected a probability in [0, 1]",
            param="confidence_transform",
        )
    return value


def decide(a: Analysis, policy: Policy, confidence: float | None = None) -> Decision:
    """Apply ``policy`` to an existing :class:`Analysis` (see :func:`gate`)."""
    metrics = {**a.metrics(), CONFIDENCE: confidence}
    reasons = []
    for rule in policy.rules:
        value = metrics[rule.metric]
        if rule.fires(value):
            assert value is not None
            reasons.append(
                Reason(
                    rule.name,
                    rule.metric,
                    float(value),
                    float(rule.threshold),
                    rule.comparison,
                    rule.action,
                    _message(rule, value),
                    evidence(a, rule),
                )
            )
    verdict: DecisionKind = "publish"
    for r in reasons:
        if _SEVERITY[r.action] > _SEVERITY[verdict]:
            verdict = r.action  # type: ignore[assignment]
    return Decision(verdict, policy.name, tuple(reasons), a, confidence)


def resolve_policy(policy: str | Policy) -> Policy:
    """A :class:`Policy` from itself or a built-in name."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        return get_policy(policy)
    raise InvalidRequestError(
        f"policy must be a name or a Policy, got {type(policy).__name__}", param="policy"
    )


def gate(
    obj: Analyzable | Sequence[TokenLogprob],
    policy: str | Policy = "default",
    *,
    confidence_transform: ConfidenceTransform | None = None,
) -> Decision:
    """Decide ``publish`` / ``review`` / ``reject`` for a response under ``policy``."""
    pol = resolve_policy(policy)
    if pol.needs_confidence and confidence_transform is None:
        raise InvalidRequestError(
            f"policy {pol.name!r} has 'confidence' rules: pass a confidence_transform "
            "(a calibrator mapping a SequenceSummary to P(correct))",
            param="confidence_transform",
        )
    a = analyze(obj, span_prob=pol.span_prob, critical_kinds=pol.critical_kinds)
    return decide(a, pol, _confidence(confidence_transform, a.summary))
