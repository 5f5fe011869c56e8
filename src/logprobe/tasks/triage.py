"""Ticket routing with clarification: route, ask which of two teams, or escalate.

Label likelihood gives a distribution over the teams (a few-shot raw prompt, divided by the
distribution the same prompt gives a content-free message: contextual calibration, which took
the embedded 135M model from 44% to 73% on 48 tickets, where it otherwise answers mostly one
team). Two thresholds, learned from labelled
messages by :func:`fit_triage`, turn it into an action:

* ``route`` when the top-2 margin is at least ``clarify_margin`` (the router is sure enough);
* ``clarify`` when it is not, but the top two teams together hold at least ``escalate_mass`` of
  the probability: the customer is asked one question that tells those two apart;
* ``escalate`` otherwise (the router does not even know which two teams), and also when a
  message that was already clarified (``answer=``) is still below the margin. A stronger engine
  (``strong=``) is tried first; if it is not sure either, the ticket goes to a person.

:func:`fit_triage` picks ``clarify_margin`` as the lowest margin at which routed messages reach
``route_precision`` on the fitting data, and ``escalate_mass`` as the lowest top-2 mass at which
the clarified messages have their right team among the two offered at least ``clarify_precision``
of the time (both with :func:`logprobe.calibration.pick_threshold`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import CalibrationError, InvalidRequestError
from .classify import classify
from .scoring import check_options

if TYPE_CHECKING:
    from ..engines.base import Engine

Action = Literal["route", "clarify", "escalate"]
TICKET_LABELS = ("billing", "bug report", "feature request", "account access")
TICKET_TEMPLATE = (
    "Route each support message to a team: {labels}.\n\n"
    "Message: My credit card was charged the wrong amount.\nTeam: billing\n\n"
    "Message: The app shows an error when I click the export button.\nTeam: bug report\n\n"
    "Message: Please add an option to share boards publicly.\nTeam: feature request\n\n"
    "Message: I can't log in because my password reset link doesn't work.\n"
    "Team: account access\n\n"
    "Message: {text}\nTeam:"
)
"""Few-shot raw prompt; the four examples were written for it and are not in the ticket set."""
CONTENT_FREE = "N/A"
TOPICS = {
    "billing": "a charge, refund, invoice or payment",
    "bug report": "something in the product that is not working",
    "feature request": "something you would like the product to do that it does not do yet",
    "account access": "getting into your account (login, password, two-factor, permissions)",
}


@dataclass(frozen=True)
class TriageThresholds:
    clarify_margin: float = 0.2
    escalate_mass: float = 0.6

    def __post_init__(self) -> None:
        for name in ("clarify_margin", "escalate_mass"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise InvalidRequestError(
                    f"Invalid '{name}': expected 0..1, got {v!r}.", param=name
                )


@dataclass(frozen=True)
class TriageResult:
    """The action, the team (when routed), the distribution, and what to ask or who takes it."""

    action: Action
    label: str | None
    probs: Mapping[str, float]
    margin: float
    top2: tuple[str, str]
    top2_mass: float
    question: str | None = None
    escalated_to: str | None = None
    strong: Mapping[str, Any] | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "label": self.label,
            "probs": dict(self.probs),
            "margin": self.margin,
            "top2": list(self.top2),
            "top2_mass": self.top2_mass,
            "question": self.question,
            "escalated_to": self.escalated_to,
            "strong": None if self.strong is None else dict(self.strong),
            "reasons": list(self.reasons),
        }


def top_two(probs: Mapping[str, float]) -> tuple[tuple[str, str], float, float]:
    """The two most likely labels, their margin and their summed probability."""
    order = sorted(probs, key=lambda k: -probs[k])
    a, b = order[0], order[1] if len(order) > 1 else order[0]
    return (
        (a, b),
        probs[a] - (probs[b] if b != a else 0.0),
        probs[a] + (probs[b] if b != a else 0.0),
    )


def clarifying_question(a: str, b: str, topics: Mapping[str, str] | None = None) -> str:
    """One question that tells team ``a`` from team ``b``."""
    t = {**TOPICS, **(topics or {})}
    return (
        f"To get this to the right team: is your message about {t.get(a, a)}, "
        f"or about {t.get(b, b)}?"
    )


def content_free_prior(
    engine: Engine, labels: Sequence[str], template: str, chat: bool, text: str = CONTENT_FREE
) -> dict[str, float]:
    """The label distribution for a content-free message (contextual calibration, Zhao et al.
    2021, "Calibrate Before Use"): what the prompt alone makes the model prefer."""
    return dict(classify(engine, text, list(labels), template=template, chat=chat).probs)


def prior_corrected(
    probs: Mapping[str, float], prior: Mapping[str, float] | None
) -> dict[str, float]:
    """``p(label) / prior(label)``, renormalised (the input when ``prior`` is None)."""
    if prior is None:
        return dict(probs)
    w = {k: float(v) / max(float(prior[k]), 1e-12) for k, v in probs.items()}
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def _classify(
    engine: Engine,
    text: str,
    labels: Sequence[str],
    template: str,
    chat: bool,
    prior: Mapping[str, float] | None,
) -> dict[str, float]:
    r = classify(engine, text, list(labels), template=template, chat=chat)
    return prior_corrected(r.probs, prior)


def triage(
    engine: Engine,
    text: str,
    *,
    labels: Sequence[str] = TICKET_LABELS,
    thresholds: TriageThresholds | None = None,
    template: str = TICKET_TEMPLATE,
    chat: bool = False,
    answer: str | None = None,
    strong: Engine | None = None,
    topics: Mapping[str, str] | None = None,
    prior: Mapping[str, float] | None | str = "auto",
) -> TriageResult:
    """Route ``text`` to one of ``labels``, or ask a clarifying question, or escalate.

    ``answer`` is the customer's reply to a clarifying question: it is appended to the message
    and the message is classified again; if the router is still unsure it escalates.
    ``prior="auto"`` divides the label probabilities by those of a content-free message (see
    :func:`content_free_prior`; computed per call, pass the dict to reuse it), ``None`` keeps
    them raw.
    """
    labs = check_options(labels, param="labels", kind="label")
    if len(labs) < 2:
        raise InvalidRequestError(
            "Invalid 'labels': routing needs at least two teams.", param="labels"
        )
    th = thresholds or TriageThresholds()
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError("Invalid 'text': the message is empty.", param="text")
    body = text if answer is None else f"{text} (asked which team: {answer})"
    pri = content_free_prior(engine, labs, template, chat) if prior == "auto" else prior
    if isinstance(pri, str):
        raise InvalidRequestError(
            "Invalid 'prior': expected 'auto', None or a dict.", param="prior"
        )
    probs = _classify(engine, body, labs, template, chat, pri)
    pair, margin, mass = top_two(probs)
    if margin >= th.clarify_margin:
        return TriageResult(
            "route",
            pair[0],
            probs,
            margin,
            pair,
            mass,
            reasons=(f"margin {margin:.3f} >= {th.clarify_margin:g}",),
        )
    if answer is None and mass >= th.escalate_mass:
        return TriageResult(
            "clarify",
            None,
            probs,
            margin,
            pair,
            mass,
            question=clarifying_question(*pair, topics),
            reasons=(
                f"margin {margin:.3f} < {th.clarify_margin:g}; top-2 mass "
                f"{mass:.3f} >= {th.escalate_mass:g}",
            ),
        )
    why = (
        "still unsure after the customer's answer"
        if answer is not None
        else f"top-2 mass {mass:.3f} < {th.escalate_mass:g}"
    )
    return _escalate(
        strong, body, labs, template, chat, th, probs, pair, margin, mass, why, prior == "auto"
    )


def _escalate(
    strong: Engine | None,
    body: str,
    labs: list[str],
    template: str,
    chat: bool,
    th: TriageThresholds,
    probs: dict[str, float],
    pair: tuple[str, str],
    margin: float,
    mass: float,
    why: str,
    use_prior: bool,
) -> TriageResult:
    if strong is None:
        return TriageResult(
            "escalate", None, probs, margin, pair, mass, escalated_to="person", reasons=(why,)
        )
    s_prior = content_free_prior(strong, labs, template, chat) if use_prior else None
    s = _classify(strong, body, labs, template, chat, s_prior)
    s_pair, s_margin, _ = top_two(s)
    info = {
        "model": str(getattr(strong, "model_name", "")),
        "label": s_pair[0],
        "probs": s,
        "margin": s_margin,
    }
    if s_margin >= th.clarify_margin:
        return TriageResult(
            "escalate",
            s_pair[0],
            probs,
            margin,
            pair,
            mass,
            escalated_to="model",
            strong=info,
            reasons=(why, f"strong model sure (margin {s_margin:.3f})"),
        )
    return TriageResult(
        "escalate",
        None,
        probs,
        margin,
        pair,
        mass,
        escalated_to="person",
        strong=info,
        reasons=(why, f"strong model unsure too (margin {s_margin:.3f})"),
    )


@dataclass(frozen=True)
class TriageFit:
    thresholds: TriageThresholds
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "clarify_margin": self.thresholds.clarify_margin,
            "escalate_mass": self.thresholds.escalate_mass,
            "notes": list(self.notes),
        }


def fit_triage(
    probs: Sequence[Mapping[str, float]],
    gold: Sequence[str],
    *,
    route_precision: float = 0.9,
    clarify_precision: float = 0.9,
) -> TriageFit:
    """Learn the two thresholds from labelled distributions (see the module docstring)."""
    from ..calibration import pick_threshold

    if len(probs) != len(gold) or len(gold) < 2:
        raise InvalidRequestError(
            "fit needs as many gold labels as predictions (at least 2)", param="gold"
        )
    tops = [top_two(p) for p in probs]
    margin = np.array([t[1] for t in tops])
    correct = np.array([t[0][0] == g for t, g in zip(tops, gold, strict=True)])
    notes: list[str] = []
    try:
        cm = pick_threshold(margin, correct, f"precision={route_precision}", n_boot=0).threshold
    except CalibrationError as e:
        cm = 1.0
        notes.append(f"nothing is routed automatically: {e.message}")
    unsure = margin < cm
    mass = np.array([t[2] for t in tops])[unsure]
    in_two = np.array([g in t[0] for t, g in zip(tops, gold, strict=True)])[unsure]
    em = 0.0
    if unsure.any():
        try:
            em = pick_threshold(mass, in_two, f"precision={clarify_precision}", n_boot=0).threshold
        except CalibrationError as e:
            em = 1.0
            notes.append(f"nothing is clarified: {e.message}")
    return TriageFit(TriageThresholds(float(min(cm, 1.0)), float(min(em, 1.0))), tuple(notes))


def actions_for(probs: Sequence[Mapping[str, float]], th: TriageThresholds) -> list[Action]:
    """The first-pass action for each distribution (no engine calls; for sweeps and reports)."""
    out: list[Action] = []
    for p in probs:
        _, margin, mass = top_two(p)
        out.append(
            "route"
            if margin >= th.clarify_margin
            else "clarify"
            if mass >= th.escalate_mass
            else "escalate"
        )
    return out


__all__ = [
    "TICKET_LABELS",
    "TICKET_TEMPLATE",
    "TOPICS",
    "TriageFit",
    "TriageResult",
    "TriageThresholds",
    "actions_for",
    "clarifying_question",
    "content_free_prior",
    "fit_triage",
    "prior_corrected",
    "top_two",
    "triage",
]
