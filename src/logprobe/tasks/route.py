"""A cascade: answer with a cheap model, escalate to a stronger one when the cheap model's own
confidence signal is under a threshold; and the report that picks that threshold on labelled data.

Signals read from the cheap model's answer:

* classification: ``confidence`` (probability of the top label, calibrated when a calibrator was
  given), ``margin`` (top minus runner-up);
* generation: ``mean_logprob`` (length-normalised sequence logprob), ``min_prob`` (least likely
  generated token), ``p10`` (10th percentile of token probabilities; quantiles did better than
  sums and means as deferral signals in Gupta et al., ICLR 2024).

The strong model may be any engine: another local GGUF, or a remote OpenAI-compatible endpoint
(classification then uses the first-token approximation, and says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidRequestError
from ..types import TokenLogprob
from .classify import ClassifyResult, classify
from .datasets import TextRow
from .runner import ordered_map

if TYPE_CHECKING:
    from ..engines.base import Engine

CLASSIFY_SIGNALS = ("confidence", "margin")
GENERATE_SIGNALS = ("mean_logprob", "min_prob", "p10")


def check_signal(signal: str, allowed: Sequence[str]) -> str:
    if signal not in allowed:
        raise InvalidRequestError(
            f"Invalid 'signal': expected one of {', '.join(allowed)}, got {signal!r}.",
            param="signal",
        )
    return signal


def classify_signal(result: ClassifyResult, signal: str) -> float:
    check_signal(signal, CLASSIFY_SIGNALS)
    return result.confidence if signal == "confidence" else result.margin


def generation_signal(tokens: Sequence[TokenLogprob], signal: str) -> float:
    """The confidence signal of generated ``tokens`` (higher = more confident)."""
    check_signal(signal, GENERATE_SIGNALS)
    lps = np.asarray([t.logprob for t in tokens if t.logprob is not None], dtype=np.float64)
    if lps.size == 0:
        return 0.0 if signal != "mean_logprob" else -math.inf
    if signal == "mean_logprob":
        return float(lps.mean())
    probs = np.exp(lps)
    if signal == "min_prob":
        return float(probs.min())
    return float(np.quantile(probs, 0.10))


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """What the cascade answered, from which model, and the signal that decided."""

    answer: str
    escalated: bool
    signal: str
    signal_value: float
    threshold: float
    cheap_answer: str
    model: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "escalated": self.escalated,
            "model": self.model,
            "signal": self.signal,
            "signal_value": self.signal_value if math.isfinite(self.signal_value) else None,
            "threshold": self.threshold,
            "cheap_answer": self.cheap_answer,
            **self.detail,
        }


def _name(engine: Engine) -> str:
    return engine.model_name or type(engine).__name__


def route_classify(
    cheap: Any,
    strong: Any,
    text: str,
    labels: Sequence[str],
    *,
    signal: str = "confidence",
    threshold: float = 0.5,
    **classify_kwargs: Any,
) -> RouteDecision:
    """Classify with ``cheap``; when its ``signal`` is below ``threshold`` ask ``strong``."""
    check_signal(signal, CLASSIFY_SIGNALS)
    first = classify(cheap, text, labels, **classify_kwargs)
    value = classify_signal(first, signal)
    detail: dict[str, Any] = {"cheap": first.to_dict()}
    if value >= threshold:
        return RouteDecision(
            first.label, False, signal, value, threshold, first.label, _name(cheap), detail
        )
    kwargs = {k: v for k, v in classify_kwargs.items() if k != "calibrator"}
    second = classify(strong, text, labels, **kwargs)
    detail["strong"] = second.to_dict()
    return RouteDecision(
        second.label, True, signal, value, threshold, first.label, _name(strong), detail
    )


def route_generate(
    cheap: Any,
    strong: Any,
    prompt: str,
    *,
    signal: str = "p10",
    threshold: float = 0.2,
    max_tokens: int = 128,
    chat: bool = True,
) -> RouteDecision:
    """Generate with ``cheap``; regenerate with ``strong`` when the answer's signal is low."""
    from ..engines import GenerationParams

    check_signal(signal, GENERATE_SIGNALS)
    params = GenerationParams.make(max_tokens=max_tokens, temperature=0.0)

    def run(engine: Engine) -> Any:
        if chat:
            return engine.chat([{"role": "user", "content": prompt}], params)
        return engine.complete(prompt, params)

    first = run(cheap)
    value = generation_signal(first.tokens, signal)
    if value >= threshold:
        return RouteDecision(
            first.text, False, signal, value, threshold, first.text, _name(cheap), {}
        )
    second = run(strong)
    return RouteDecision(second.text, True, signal, value, threshold, first.text, _name(strong), {})


# --- threshold report over labelled data --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutedItem:
    """One labelled row answered by both models (so every threshold can be evaluated offline)."""

    signal: float
    cheap_correct: bool
    strong_correct: bool


@dataclass(frozen=True, slots=True)
class SweepPoint:
    threshold: float
    accuracy: float
    escalation_rate: float
    cost: float

    def to_dict(self) -> dict[str, float]:
        return {
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "escalation_rate": self.escalation_rate,
            "cost_per_item": self.cost,
        }


def sweep(
    items: Sequence[RoutedItem],
    *,
    cheap_cost: float = 1.0,
    strong_cost: float = 10.0,
    thresholds: Sequence[float] | None = None,
) -> list[SweepPoint]:
    """Accuracy, escalation rate and mean cost per item for each threshold (escalate when
    ``signal < threshold``). Default thresholds: every distinct signal value plus one above
    the largest (escalate everything), so the sweep is exact."""
    if not items:
        raise InvalidRequestError("Invalid 'dataset': no routed items to sweep.", param="dataset")
    sig = np.asarray([i.signal for i in items], dtype=np.float64)
    cheap_ok = np.asarray([i.cheap_correct for i in items], dtype=bool)
    strong_ok = np.asarray([i.strong_correct for i in items], dtype=bool)
    if thresholds is None:
        uniq = np.unique(sig[np.isfinite(sig)])
        top = float(uniq[-1]) + 1e-9 if uniq.size else 1.0
        thresholds = [*uniq.tolist(), top]
    out = []
    for t in sorted(set(float(x) for x in thresholds)):
        esc = sig < t  # (n,)
        acc = float(np.where(esc, strong_ok, cheap_ok).mean())
        rate = float(esc.mean())
        out.append(SweepPoint(t, acc, rate, cheap_cost + strong_cost * rate))
    return out


def pick_threshold(
    points: Sequence[SweepPoint],
    *,
    target_accuracy: float | None = None,
    max_escalation: float | None = None,
) -> SweepPoint | None:
    """The cheapest point meeting ``target_accuracy`` (ties: higher accuracy), or the most
    accurate point within ``max_escalation``; ``None`` when no point meets the target."""
    if (target_accuracy is None) == (max_escalation is None):
        raise InvalidRequestError(
            "give exactly one of target_accuracy, max_escalation", param="target_accuracy"
        )
    if target_accuracy is not None:
        ok = [p for p in points if p.accuracy >= target_accuracy]
        return min(ok, key=lambda p: (p.cost, -p.accuracy, p.threshold)) if ok else None
    assert max_escalation is not None
    ok = [p for p in points if p.escalation_rate <= max_escalation]
    return max(ok, key=lambda p: (p.accuracy, -p.cost)) if ok else None


@dataclass(frozen=True, slots=True)
class RouteReport:
    items: tuple[RoutedItem, ...]
    points: tuple[SweepPoint, ...]
    chosen: SweepPoint | None
    signal: str
    cheap_model: str
    strong_model: str
    skipped: tuple[dict[str, Any], ...] = ()

    def to_dict(self, *, max_points: int = 21) -> dict[str, Any]:
        n = len(self.items)
        return {
            "cheap_model": self.cheap_model,
            "strong_model": self.strong_model,
            "signal": self.signal,
            "n": n,
            "cheap_accuracy": sum(i.cheap_correct for i in self.items) / n if n else 0.0,
            "strong_accuracy": sum(i.strong_correct for i in self.items) / n if n else 0.0,
            "chosen": None if self.chosen is None else self.chosen.to_dict(),
            "sweep": [p.to_dict() for p in thin(self.points, max_points)],
            "skipped": list(self.skipped),
        }


def thin(points: Sequence[SweepPoint], k: int) -> list[SweepPoint]:
    """About ``k`` points spread evenly over escalation rate (first and last kept)."""
    if len(points) <= k:
        return list(points)
    idx = np.unique(np.linspace(0, len(points) - 1, k).round().astype(int))
    return [points[i] for i in idx]


def route_report(
    cheap: Any,
    strong: Any,
    rows: Sequence[TextRow],
    labels: Sequence[str],
    *,
    signal: str = "confidence",
    cheap_cost: float = 1.0,
    strong_cost: float = 10.0,
    target_accuracy: float | None = None,
    max_escalation: float | None = None,
    workers: int = 2,
    on_row: Callable[[TextRow], None] | None = None,
    **classify_kwargs: Any,
) -> RouteReport:
    """Run both models over labelled ``rows`` and sweep the escalation threshold."""
    check_signal(signal, CLASSIFY_SIGNALS)
    strong_kwargs = {k: v for k, v in classify_kwargs.items() if k != "calibrator"}

    def work(row: TextRow) -> RoutedItem:
        if row.error is not None or row.text is None or row.gold is None:
            raise InvalidRequestError(
                row.error or f"line {row.line}: no gold label", param="dataset"
            )
        a = classify(cheap, row.text, labels, **classify_kwargs)
        b = classify(strong, row.text, labels, **strong_kwargs)
        return RoutedItem(classify_signal(a, signal), a.label == row.gold, b.label == row.gold)

    items: list[RoutedItem] = []
    skipped: list[dict[str, Any]] = []
    for outcome in ordered_map(work, rows, workers=workers):
        if outcome.result is None:
            skipped.append({"line": outcome.item.line, "error": outcome.error})
        else:
            items.append(outcome.result)
        if on_row:
            on_row(outcome.item)
    points = sweep(items, cheap_cost=cheap_cost, strong_cost=strong_cost)
    chosen = None
    if target_accuracy is not None or max_escalation is not None:
        chosen = pick_threshold(
            points, target_accuracy=target_accuracy, max_escalation=max_escalation
        )
    return RouteReport(
        tuple(items), tuple(points), chosen, signal, _name(cheap), _name(strong), tuple(skipped)
    )


def route(
    cheap: Any,
    strong: Any,
    text: str,
    *,
    labels: Sequence[str] | None = None,
    signal: str | None = None,
    threshold: float | None = None,
    **kwargs: Any,
) -> RouteDecision:
    """One cascade decision: classification when ``labels`` are given, else generation.

    Defaults: ``confidence`` < 0.5 escalates a classification, ``p10`` < 0.2 a generation.
    """
    if labels is not None:
        return route_classify(
            cheap,
            strong,
            text,
            labels,
            signal=signal or "confidence",
            threshold=0.5 if threshold is None else threshold,
            **kwargs,
        )
    return route_generate(
        cheap,
        strong,
        text,
        signal=signal or "p10",
        threshold=0.2 if threshold is None else threshold,
        **kwargs,
    )


__all__ = [
    "CLASSIFY_SIGNALS",
    "GENERATE_SIGNALS",
    "RouteDecision",
    "RouteReport",
    "RoutedItem",
    "SweepPoint",
    "classify_signal",
    "generation_signal",
    "pick_threshold",
    "route",
    "route_classify",
    "route_generate",
    "route_report",
    "sweep",
    "thin",
]
