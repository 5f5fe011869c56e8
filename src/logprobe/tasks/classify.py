"""Classification by label likelihood: the exact probability of every label, multi-token included.

Exact method (engines that score text, e.g. the embedded one): the prompt is built once and every
label is scored as a continuation of it with ``engine.score_continuations`` (the engine prefills
the prompt once and reuses its KV cache for all labels, in one batch). The probability of a label
is the softmax of the labels' scores, so it is the model's exact distribution restricted to the
label set when ``normalize="none"``.

First-token method (remote chat endpoints that cannot score a given text): one generation step
with ``top_logprobs``; a label gets the probability of the alternatives that begin it. This is an
approximation and the result says so (``method="first_token"``, ``approximate=True``).

Every result carries its :class:`~logprobe.calibration.TaskSignature` (model, ordered labels,
prompt, method, normalisation). A calibrator fitted for another signature is refused; one that
maps whole distributions (temperature, vector, matrix, contextual) gives the calibrated
``probs``, ``label``, ``margin`` and ``decision``, and the raw ones stay in ``raw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..calibration.signature import TaskSignature, check_same_task, prompt_spec
from ..errors import InvalidRequestError, LogprobeError
from ..types import Alternative
from .prompting import DEFAULT_CLASSIFY_TEMPLATE, BuiltPrompt, TextOrMessages, build_prompt
from .scoring import (
    Normalization,
    ScoredOption,
    check_normalization,
    check_options,
    finite,
    logsumexp,
    score_options,
    softmax,
    top_two_margin,
)

if TYPE_CHECKING:
    from ..engines.base import Engine

Method = Literal["auto", "exact", "first_token"]
Decision = Literal["accept", "abstain"]


@dataclass(frozen=True, slots=True)
class RawDecision:
    """What the model said before a calibrator was applied."""

    label: str
    probs: dict[str, float]
    margin: float
    decision: Decision


@dataclass(frozen=True, slots=True)
class ClassifyResult:
    """The distribution over labels and the decision taken from it (calibrated when a calibrator
    was applied; ``raw`` then holds the model's own)."""

    label: str
    probs: dict[str, float]
    options: tuple[ScoredOption, ...]
    normalize: Normalization
    margin: float
    decision: Decision
    method: Literal["exact", "first_token"]
    label_mass: float | None = None
    calibrated_confidence: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    raw: RawDecision | None = None
    signature: TaskSignature | None = None
    calibrator: str | None = None

    @property
    def confidence(self) -> float:
        """Calibrated probability of the chosen label when a calibrator was applied, else raw."""
        if self.calibrated_confidence is not None:
            return self.calibrated_confidence
        return self.probs[self.label]

    @property
    def raw_decision(self) -> RawDecision:
        """The model's own label, distribution, margin and decision (before calibration)."""
        if self.raw is not None:
            return self.raw
        return RawDecision(self.label, dict(self.probs), self.margin, self.decision)

    @property
    def approximate(self) -> bool:
        return self.method == "first_token"

    @property
    def abstained(self) -> bool:
        return self.decision == "abstain"

    def to_dict(self, *, with_tokens: bool = False) -> dict[str, Any]:
        raw = self.raw_decision
        return {
            "label": self.label,
            "probs": dict(self.probs),
            "confidence": self.confidence,
            "margin": self.margin,
            "decision": self.decision,
            "raw_label": raw.label,
            "raw_probs": dict(raw.probs),
            "raw_confidence": raw.probs[raw.label],
            "raw_margin": raw.margin,
            "raw_decision": raw.decision,
            "calibrated": self.calibrated_confidence is not None,
            "calibrator": self.calibrator,
            "model": None if self.signature is None else self.signature.model,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "normalize": self.normalize,
            "method": self.method,
            "approximate": self.approximate,
            "label_mass": self.label_mass,
            "notes": list(self.notes),
            "options": [o.to_dict(with_tokens=with_tokens) for o in self.options],
        }


def classify(
    engine: Engine,
    text_or_messages: TextOrMessages,
    labels: Sequence[str],
    *,
    normalize: str = "none",
    template: str | None = DEFAULT_CLASSIFY_TEMPLATE,
    chat: bool = False,
    label_prefix: str | None = None,
    abstain_margin: float = 0.0,
    method: Method = "auto",
    calibrator: Any | None = None,
    first_token_bias: float | None = None,
) -> ClassifyResult:
    """Probability of each of ``labels`` for ``text_or_messages`` under ``engine``.

    ``normalize`` picks the score compared across labels (see :mod:`.scoring`); ``template`` is
    applied to a text input (``{text}``, ``{labels}``); ``chat=True`` wraps it as a user message.
    The decision is ``"abstain"`` when the best label leads the runner-up by less than
    ``abstain_margin`` (in probability). ``calibrator`` (a :class:`logprobe.calibration`
    calibrator, or anything with ``apply(p) -> p``) maps the top probability to a calibrated
    confidence.

    ``method="auto"`` scores exactly where the engine can, and otherwise (a remote server
    without ``echo``, or a chat prompt only the server can render) falls back to the
    first-token approximation; ``first_token_bias`` then adds that bias to every label's first
    token (where the engine can tokenize), pulling labels into the returned alternatives.
    """
    labels = check_options(labels, param="labels", kind="label")
    norm = check_normalization(normalize)
    margin_floor = _check_margin(abstain_margin)
    built = build_prompt(
        engine,
        text_or_messages,
        template=template,
        chat=chat,
        option_prefix=label_prefix,
        labels=", ".join(labels),
    )
    resolved = _resolve_method(engine, method, built)
    spec = prompt_spec(
        template=template if isinstance(text_or_messages, str) else None,
        chat=chat or not isinstance(text_or_messages, str),
        label_prefix=label_prefix,
        first_token_bias=first_token_bias,
        input_kind="text" if isinstance(text_or_messages, str) else "messages",
    )

    def signature(how: str, norm_used: str) -> TaskSignature:
        return TaskSignature(
            model=model_name(engine),
            labels=tuple(labels),
            prompt=spec,
            method=how,
            normalize=norm_used,
        )

    notes: tuple[str, ...] = ()
    if resolved == "exact":
        sig = signature("exact", norm)
        check_same_task(getattr(calibrator, "signature", None), sig)
        try:
            options, mass = _exact(engine, built, labels, norm)
            return _decide(options, norm, margin_floor, "exact", mass, (), calibrator, sig)
        except InvalidRequestError as e:
            if method != "auto" or e.param != "echo":
                raise
            notes = (f"exact scoring unavailable ({e.message})",)
    sig = signature("first_token", "none")
    check_same_task(getattr(calibrator, "signature", None), sig)
    options, fnotes = _first_token(engine, built, labels, first_token_bias)
    return _decide(
        options, "none", margin_floor, "first_token", None, notes + fnotes, calibrator, sig
    )


def model_name(engine: Any) -> str:
    """The engine's model name as recorded in task signatures (``"unknown"`` when it has none);
    ``engine`` may also be an executor running engines elsewhere."""
    return str(getattr(engine, "model_name", "") or "unknown")


def classify_signature(
    engine: Any,
    labels: Sequence[str],
    *,
    normalize: str = "none",
    template: str | None = DEFAULT_CLASSIFY_TEMPLATE,
    chat: bool = False,
    label_prefix: str | None = None,
    method: Method = "auto",
    first_token_bias: float | None = None,
    can_score: bool | None = None,
) -> TaskSignature:
    """The signature :func:`classify` will give a text input with these arguments (``auto``
    resolved as it would be, before any fallback a remote server may force). ``engine`` may be
    anything with a ``model_name``; ``can_score`` says whether it scores exactly when it is not
    the engine itself (e.g. an executor running engines elsewhere)."""
    labels = check_options(labels, param="labels", kind="label")
    norm = check_normalization(normalize)
    if method not in ("auto", "exact", "first_token"):
        _resolve_method(engine, method, BuiltPrompt("x", " ", False))  # raises with the message
    if can_score is None:
        can_score = supports_scoring(engine) and (
            not chat or callable(getattr(engine, "render_chat", None))
        )
    exact = method == "exact" or (method == "auto" and can_score)
    return TaskSignature(
        model=model_name(engine),
        labels=tuple(labels),
        prompt=prompt_spec(
            template=template,
            chat=chat,
            label_prefix=label_prefix,
            first_token_bias=first_token_bias,
        ),
        method="exact" if exact else "first_token",
        normalize=norm if exact else "none",
    )


def _check_margin(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidRequestError(
            f"Invalid 'abstain_margin': expected a number between 0 and 1, got {value!r}.",
            param="abstain_margin",
        )
    return float(value)


def supports_scoring(engine: Engine) -> bool:
    """Whether ``engine`` may score a given continuation: its ``can_score`` (a remote server
    counts as able until its ``echo`` is found missing, which the first score finds out)."""
    return engine.can_score


def _resolve_method(
    engine: Engine, method: str, built: BuiltPrompt
) -> Literal["exact", "first_token"]:
    if method not in ("auto", "exact", "first_token"):
        raise InvalidRequestError(
            f"Invalid 'method': expected auto, exact or first_token, got {method!r}.",
            param="method",
        )
    if method == "exact" and not built.renderable:
        raise InvalidRequestError(
            "Invalid 'method': exact scoring of a chat prompt needs the chat template, which "
            "this engine does not expose; use method='first_token'.",
            param="method",
        )
    if method == "auto":
        ok = supports_scoring(engine) and built.renderable
        return "exact" if ok else "first_token"
    return method  # type: ignore[return-value]


def _exact(
    engine: Engine, built: BuiltPrompt, labels: list[str], norm: Normalization
) -> tuple[list[ScoredOption], float]:
    conts = [built.option_prefix + label for label in labels]
    scored = engine.score_continuations(built.engine_prompt, conts)
    options = score_options(labels, conts, scored, norm)
    mass = float(np.exp(min(0.0, logsumexp([o.logprob for o in options]))))
    return options, mass


def _decide(
    options: list[ScoredOption],
    norm: Normalization,
    margin_floor: float,
    method: Literal["exact", "first_token"],
    mass: float | None,
    notes: tuple[str, ...],
    calibrator: Any | None,
    signature: TaskSignature | None = None,
) -> ClassifyResult:
    probs = {o.text: o.prob for o in options}
    best = max(options, key=lambda o: o.prob)
    margin = top_two_margin(list(probs.values()))
    raw = RawDecision(best.text, probs, margin, "abstain" if margin < margin_floor else "accept")
    common: dict[str, Any] = dict(
        options=tuple(options),
        normalize=norm,
        method=method,
        label_mass=mass,
        notes=notes,
        signature=signature,
    )
    if calibrator is None:
        return ClassifyResult(
            label=raw.label, probs=probs, margin=margin, decision=raw.decision, **common
        )
    if not callable(getattr(calibrator, "apply_probs", None)):  # a confidence-only map
        calibrated = _apply_calibrator(calibrator, best.prob)
        return ClassifyResult(
            label=raw.label,
            probs=probs,
            margin=margin,
            decision=raw.decision,
            calibrated_confidence=calibrated,
            raw=raw,
            calibrator=type(calibrator).__name__,
            **common,
        )
    new = {k: float(v) for k, v in calibrator.apply(probs).items()}
    moves = bool(getattr(calibrator, "changes_decision", True))
    label = max(new, key=new.__getitem__) if moves else raw.label
    others = [v for k, v in new.items() if k != label]
    new_margin = new[label] - max(others)
    name = str(getattr(calibrator, "method", type(calibrator).__name__))
    return ClassifyResult(
        label=label,
        probs=new,
        margin=new_margin,
        decision="abstain" if new_margin < margin_floor else "accept",
        calibrated_confidence=new[label],
        raw=raw,
        calibrator=name,
        **common,
    )


def _apply_calibrator(calibrator: Any, p: float) -> float:
    """Apply a calibrator: ``apply(float) -> float`` (logprobe.calibration), or one with
    ``calibrate``/``transform``/``predict`` on arrays."""
    apply = getattr(calibrator, "apply", None)
    if callable(apply):
        return min(1.0, max(0.0, float(apply(float(p)))))
    for name in ("calibrate", "transform", "predict"):
        fn = getattr(calibrator, name, None)
        if callable(fn):
            out = fn(np.asarray([p], dtype=np.float64))
            value = float(np.asarray(out, dtype=np.float64).reshape(-1)[0])
            return min(1.0, max(0.0, value))
    if callable(calibrator):
        return min(1.0, max(0.0, float(calibrator(p))))
    raise InvalidRequestError(
        "Invalid 'calibrator': it has no calibrate() method.", param="calibrator"
    )


# --- first-token approximation (remote endpoints without prompt scoring) ---------------------


def _first_token(
    engine: Engine, built: BuiltPrompt, labels: list[str], bias: float | None
) -> tuple[list[ScoredOption], tuple[str, ...]]:
    alternatives, bias_note = _first_step_alternatives(engine, built, labels, bias)
    lps, notes = first_token_label_logprobs(alternatives, labels, built.option_prefix)
    probs = softmax(lps)
    options = [
        ScoredOption(
            text=label,
            continuation=built.option_prefix + label,
            logprob=finite(lp),
            n_tokens=1,
            n_chars=len(label.lstrip()),
            score=finite(lp),
            prob=float(p),
        )
        for label, lp, p in zip(labels, lps, probs, strict=True)
    ]
    head = "first-token approximation: labels scored by the alternatives that begin them"
    return options, (head, *bias_note, *notes)


def _first_step_alternatives(
    engine: Engine, built: BuiltPrompt, labels: list[str], bias: float | None
) -> tuple[list[Alternative], tuple[str, ...]]:
    from ..engines import GenerationParams

    max_lp = engine.max_logprobs
    logit_bias = _uniform_label_bias(engine, built, labels, bias)
    params = GenerationParams.make(
        max_tokens=1,
        temperature=0.0,
        top_logprobs=max_lp,
        max_logprobs=max_lp,
        logit_bias=logit_bias,
    )
    if built.chat:
        completion = engine.chat(list(built.messages), params)
    else:
        completion = engine.complete(built.text, params)
    note: tuple[str, ...] = ()
    if bias is not None:
        note = (
            f"logit bias {bias:+g} on every label's first token"
            if logit_bias
            else "no logit bias: the engine could not tokenize the labels",
        )
    if not completion.tokens:
        return [], note
    first = completion.tokens[0]
    alts = list(first.top_logprobs)
    if first.logprob is not None and all(a.token != first.token for a in alts):
        alts.append(Alternative(first.token, first.bytes, first.logprob, first.id))
    return alts, note


def _uniform_label_bias(
    engine: Engine, built: BuiltPrompt, labels: list[str], bias: float | None
) -> dict[int, float] | None:
    """The same bias on every label's first token, where the engine can tokenize.

    A uniform bias keeps the ratios between labels whether the provider reports logprobs before
    or after the bias, and pulls the labels into the returned top alternatives when after.
    """
    if bias is None:
        return None
    try:
        ids = {engine.tokenize(built.option_prefix + label)[0] for label in labels}
    except (LogprobeError, NotImplementedError, IndexError):
        return None
    return {int(i): float(bias) for i in ids}


def first_token_label_logprobs(
    alternatives: Sequence[Alternative], labels: Sequence[str], prefix: str = ""
) -> tuple[list[float], tuple[str, ...]]:
    """Log-probability of each label from one step's alternatives (pure; used for remotes).

    An alternative counts for a label when its text is a non-empty prefix of the label (with or
    without ``prefix``/leading space). An alternative that begins several labels is split evenly
    among them; a label no alternative begins gets the smallest seen logprob as an upper bound.
    """
    per_label: list[list[float]] = [[] for _ in labels]
    notes: list[str] = []
    for alt in alternatives:
        tok = alt.token
        if not tok.strip():
            continue
        hits = [i for i, lab in enumerate(labels) if _begins(tok, lab, prefix)]
        if len(hits) > 1:
            notes.append(f"token {tok!r} begins {len(hits)} labels; its probability is shared")
        for i in hits:
            per_label[i].append(alt.logprob - float(np.log(len(hits))))
    floor = min((a.logprob for a in alternatives), default=-30.0)
    out: list[float] = []
    for label, lps in zip(labels, per_label, strict=True):
        if lps:
            out.append(logsumexp(lps))
        else:
            notes.append(f"label {label!r} not among the top alternatives; upper bound used")
            out.append(floor)
    return out, tuple(notes)


def _begins(token: str, label: str, prefix: str) -> bool:
    for form in (prefix + label, label, " " + label):
        if form.startswith(token):
            return True
    stripped = token.lstrip()
    return bool(stripped) and label.startswith(stripped)


__all__ = [
    "ClassifyResult",
    "RawDecision",
    "classify",
    "classify_signature",
    "first_token_label_logprobs",
    "model_name",
    "supports_scoring",
]
