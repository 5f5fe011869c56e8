"""Content moderation from a TOML policy: label likelihood, calibrated, with a review band.

A policy names the labels (with descriptions the prompt shows the model), the label that means
"nothing to flag" (``allow_label``), and per flaggable label the thresholds on its calibrated
probability ``q``::

    name = "offensive language"
    allow_label = "not offensive"
    [[labels]]
    name = "offensive"
    description = "insults, threats, slurs, profanity or abuse aimed at someone"
    [[labels]]
    name = "not offensive"
    description = "anything else, including strong but civil opinions"
    [thresholds.offensive]
    flag_at = 0.8       # flag when q >= flag_at
    allow_below = 0.3   # allow when q < allow_below for every flaggable label; else review

Decision: ``flag`` (the flaggable label with the largest ``q`` at or above its ``flag_at``),
``allow`` (every flaggable label below its ``allow_below``), otherwise ``review``: the
probabilities sit in the band where the model is not sure enough either way. ``review_margin``
also sends an item to review when the top two labels' probabilities are closer than that.
Calibration is one-vs-rest per flaggable label (``q = f_label(P(label))``, a
:mod:`logprobe.calibration` map fitted on labelled data; see :mod:`.moderate_fit`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidRequestError
from .classify import classify
from .scoring import check_options, top_two_margin

if TYPE_CHECKING:
    from ..engines.base import Engine

Decision = Literal["flag", "allow", "review"]
DEFAULT_TEMPLATE = (
    "Content policy: {policy}\nCategories:\n{descriptions}\n\nMessage: {text}\n\n"
    "Which category does the message belong to? Answer with the category name only."
)
_POLICY_KEYS = {
    "name",
    "allow_label",
    "labels",
    "thresholds",
    "template",
    "chat",
    "review_margin",
    "normalize",
}
_LABEL_KEYS = {"name", "description"}
_THRESHOLD_KEYS = {"flag_at", "allow_below"}


@dataclass(frozen=True)
class Thresholds:
    flag_at: float = 0.5
    allow_below: float = 0.5


@dataclass(frozen=True)
class Policy:
    """A validated moderation policy (see the module docstring)."""

    name: str
    labels: tuple[str, ...]
    descriptions: Mapping[str, str]
    allow_label: str
    thresholds: Mapping[str, Thresholds]
    template: str = DEFAULT_TEMPLATE
    chat: bool = True
    review_margin: float = 0.0
    normalize: str = "none"

    @property
    def flaggable(self) -> tuple[str, ...]:
        return tuple(label for label in self.labels if label != self.allow_label)

    def prompt_template(self) -> str:
        """The template with the policy filled in; ``{text}`` and ``{labels}`` left for classify."""
        desc = "\n".join(
            f"- {label}: {self.descriptions[label]}" if self.descriptions[label] else f"- {label}"
            for label in self.labels
        )
        esc = desc.replace("{", "{{").replace("}", "}}")
        name = self.name.replace("{", "{{").replace("}", "}}")
        return self.template.replace("{descriptions}", esc).replace("{policy}", name)

    def with_thresholds(self, thresholds: Mapping[str, Thresholds]) -> Policy:
        check_label_names(thresholds, self.labels, "thresholds")
        merged = {**self.thresholds, **thresholds}
        return Policy(
            self.name,
            self.labels,
            self.descriptions,
            self.allow_label,
            merged,
            self.template,
            self.chat,
            self.review_margin,
            self.normalize,
        )


def _bad(msg: str, param: str = "policy") -> InvalidRequestError:
    return InvalidRequestError(f"Invalid policy: {msg}", param=param)


def check_label_names(
    names: Mapping[str, Any] | Sequence[str], labels: Sequence[str], where: str
) -> None:
    """Raise naming the first of ``names`` that is not one of the policy's labels."""
    for name in names:
        if name not in labels:
            raise _bad(f"unknown label {name!r} in {where} (labels: {', '.join(labels)})", where)


def _unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _bad(
            f"unknown key {extra[0]!r} in {where} (allowed: {', '.join(sorted(allowed))})", where
        )


def _prob(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise _bad(f"{where} must be a number between 0 and 1, got {value!r}", where)
    return float(value)


def _labels(raw: Any) -> tuple[list[str], dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise _bad("'labels' must be a non-empty array of [[labels]] tables", "labels")
    names: list[str] = []
    desc: dict[str, str] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _bad(f"labels[{i}] must be a table with 'name'", "labels")
        _unknown_keys(item, _LABEL_KEYS, f"labels[{i}]")
        name, d = item.get("name"), item.get("description", "")
        if not isinstance(name, str) or not isinstance(d, str):
            raise _bad(f"labels[{i}] needs a 'name' string (and 'description' string)", "labels")
        names.append(name)
        desc[name] = d.strip()
    check_options(names, param="labels", kind="label")
    if len(names) < 2:
        raise _bad("a policy needs at least two labels", "labels")
    return names, desc


def _thresholds(raw: Any, labels: Sequence[str], allow: str) -> dict[str, Thresholds]:
    if not isinstance(raw, dict):
        raise _bad("'thresholds' must be a table of [thresholds.LABEL] tables", "thresholds")
    check_label_names(raw, labels, "thresholds")
    out: dict[str, Thresholds] = {}
    for label, table in raw.items():
        if label == allow:
            raise _bad(f"thresholds for the allow label {label!r} make no sense", "thresholds")
        if not isinstance(table, dict):
            raise _bad(f"thresholds.{label} must be a table", "thresholds")
        _unknown_keys(table, _THRESHOLD_KEYS, f"thresholds.{label}")
        flag_at = _prob(table.get("flag_at", 0.5), f"thresholds.{label}.flag_at")
        allow_below = _prob(
            table.get("allow_below", min(0.5, flag_at)), f"thresholds.{label}.allow_below"
        )
        if allow_below > flag_at:
            raise _bad(
                f"thresholds.{label}: allow_below ({allow_below:g}) is above flag_at ({flag_at:g})",
                "thresholds",
            )
        out[label] = Thresholds(flag_at, allow_below)
    return out


def policy_from_dict(data: Mapping[str, Any]) -> Policy:
    """Validate a parsed policy; every error is one line naming the key or label."""
    _unknown_keys(data, _POLICY_KEYS, "the policy")
    labels, desc = _labels(data.get("labels"))
    allow = data.get("allow_label")
    if not isinstance(allow, str):
        raise _bad(
            "'allow_label' (the label that means nothing to flag) is required", "allow_label"
        )
    check_label_names([allow], labels, "allow_label")
    template = data.get("template", DEFAULT_TEMPLATE)
    if not isinstance(template, str) or "{text}" not in template:
        raise _bad("'template' must be a string containing {text}", "template")
    chat = data.get("chat", True)
    if not isinstance(chat, bool):
        raise _bad("'chat' must be true or false", "chat")
    margin = _prob(data.get("review_margin", 0.0), "review_margin")
    name = data.get("name", "content policy")
    if not isinstance(name, str):
        raise _bad("'name' must be a string", "name")
    return Policy(
        name,
        tuple(labels),
        desc,
        allow,
        _thresholds(data.get("thresholds", {}), labels, allow),
        template,
        chat,
        margin,
        str(data.get("normalize", "none")),
    )


def load_policy(path: str | Path) -> Policy:
    """Read and validate a TOML policy file."""
    p = Path(path)
    if not p.is_file():
        raise InvalidRequestError(f"Invalid 'policy': no such file {str(p)!r}.", param="policy")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InvalidRequestError(
            f"Invalid 'policy': {p.name} is not valid TOML ({e}).", param="policy"
        ) from None
    return policy_from_dict(data)


@dataclass(frozen=True)
class ModerationResult:
    """Raw and calibrated label probabilities and the decision taken from them."""

    decision: Decision
    label: str
    probs: Mapping[str, float]
    raw_probs: Mapping[str, float]
    margin: float
    calibrated: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "label": self.label,
            "probs": dict(self.probs),
            "raw_probs": dict(self.raw_probs),
            "margin": self.margin,
            "calibrated": self.calibrated,
            "reasons": list(self.reasons),
        }


def calibrated_probs(
    policy: Policy, raw: Mapping[str, float], calibrators: Mapping[str, Any] | None
) -> dict[str, float]:
    """One-vs-rest calibration of the flaggable labels; the allow label gets what is left
    (at least 0). Without calibrators the raw probabilities are returned."""
    if not calibrators:
        return dict(raw)
    check_label_names(calibrators, policy.labels, "calibration")
    q = {
        label: float(calibrators[label].apply(float(raw[label])))
        if label in calibrators
        else float(raw[label])
        for label in policy.flaggable
    }
    q[policy.allow_label] = max(0.0, 1.0 - sum(q.values()))
    return {label: min(1.0, max(0.0, q[label])) for label in policy.labels}


def decide(policy: Policy, q: Mapping[str, float]) -> tuple[Decision, str, tuple[str, ...]]:
    """The decision for calibrated probabilities ``q`` (see the module docstring)."""
    th = {label: policy.thresholds.get(label, Thresholds()) for label in policy.flaggable}
    flagged = [lb for lb in policy.flaggable if q[lb] >= th[lb].flag_at]
    margin = top_two_margin(list(q.values()))
    if flagged:
        best = max(flagged, key=lambda lb: q[lb])
        return "flag", best, (f"P({best}) = {q[best]:.3f} >= {th[best].flag_at:g}",)
    unsure = [lb for lb in policy.flaggable if q[lb] >= th[lb].allow_below]
    if unsure:
        lb = max(unsure, key=lambda x: q[x])
        return (
            "review",
            lb,
            (
                f"P({lb}) = {q[lb]:.3f} in the review band "
                f"[{th[lb].allow_below:g}, {th[lb].flag_at:g})",
            ),
        )
    if margin < policy.review_margin:
        top = max(q, key=lambda x: q[x])
        return "review", top, (f"top-2 margin {margin:.3f} < {policy.review_margin:g}",)
    return "allow", policy.allow_label, ()


def moderate(
    engine: Engine, text: str, policy: Policy, *, calibrators: Mapping[str, Any] | None = None
) -> ModerationResult:
    """Classify ``text`` under ``policy``, calibrate, and decide flag / allow / review."""
    result = classify(
        engine,
        text,
        list(policy.labels),
        template=policy.prompt_template(),
        chat=policy.chat,
        normalize=policy.normalize,
    )
    q = calibrated_probs(policy, result.probs, calibrators)
    decision, label, reasons = decide(policy, q)
    return ModerationResult(
        decision,
        label,
        q,
        dict(result.probs),
        top_two_margin(list(q.values())),
        bool(calibrators),
        reasons,
    )


__all__ = [
    "DEFAULT_TEMPLATE",
    "ModerationResult",
    "Policy",
    "Thresholds",
    "calibrated_probs",
    "check_label_names",
    "decide",
    "load_policy",
    "moderate",
    "policy_from_dict",
]
