"""Review-gate policies: named sets of threshold rules that turn confidence into a decision.

A :class:`Rule` fires when a metric is below (or above) its threshold, and asks for ``review`` or
``reject``. A response is published when no rule fires; otherwise the strictest action wins.
Metrics are the numeric fields of :class:`~logprobe.analysis.SequenceSummary`, the span metrics
in :data:`SPAN_METRICS`, and ``confidence`` (the output of a ``confidence_transform``, e.g. a
calibrator). A rule whose metric is undefined for a response (``None``) does not fire; the
``no-tokens`` rule of every built-in policy catches responses with nothing to measure.

Built-in policies and why their numbers are what they are: docs/ANALYSIS.md ("Review gate").
A policy file (TOML) looks like::

    name = "support-bot"
    extends = "default"          # optional: start from a built-in policy
    disable = ["min-token"]      # optional: drop inherited rules by name
    span_prob = 0.3              # optional: word probability under which a span is low
    [[rules]]
    name = "mean-publish-bar"    # same name as an inherited rule: replaces it
    metric = "mean_logprob"
    below = -0.7
    action = "review"
    why = "our reviewers are cheap"
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidRequestError
from .critical import KINDS
from .sequence import SequenceSummary
from .spans import DEFAULT_SPAN_PROB

Action = Literal["review", "reject"]
SPAN_METRICS = (
    "critical_count",
    "critical_min_prob",
    "longest_low_span_words",
    "low_span_count",
)
CONFIDENCE = "confidence"
METRICS = tuple(
    sorted(
        [f.name for f in fields(SequenceSummary) if f.name != "entropy_kind"]
        + list(SPAN_METRICS)
        + [CONFIDENCE]
    )
)


@dataclass(frozen=True, slots=True)
class Rule:
    """Fire ``action`` when ``metric`` < ``below`` (or > ``above``; give exactly one)."""

    name: str
    metric: str
    action: Action
    below: float | None = None
    above: float | None = None
    why: str = ""

    def __post_init__(self) -> None:
        _check_rule(self, f"rules[{self.name}]")

    @property
    def threshold(self) -> float:
        return self.below if self.below is not None else self.above  # type: ignore[return-value]

    @property
    def comparison(self) -> str:
        return "below" if self.below is not None else "above"

    def fires(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return value < self.below if self.below is not None else value > self.threshold

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "metric": self.metric, "action": self.action}
        d[self.comparison] = self.threshold
        if self.why:
            d["why"] = self.why
        return d


def _bad(where: str, msg: str) -> InvalidRequestError:
    return InvalidRequestError(f"{where}: {msg}", param=where)


def _check_rule(r: Rule, where: str) -> None:
    if not isinstance(r.name, str) or not r.name:
        raise _bad(where, "every rule needs a non-empty 'name'")
    if r.metric not in METRICS:
        raise _bad(f"{where}.metric", f"unknown metric {r.metric!r}; known: {', '.join(METRICS)}")
    if r.action not in ("review", "reject"):
        raise _bad(f"{where}.action", f"must be 'review' or 'reject', got {r.action!r}")
    if (r.below is None) == (r.above is None):
        raise _bad(where, "give exactly one of 'below' or 'above'")
    t = r.threshold
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise _bad(f"{where}.{r.comparison}", f"threshold must be a finite number, got {t!r}")


@dataclass(frozen=True, slots=True)
class Policy:
    """A named set of rules plus the span settings the span metrics use."""

    name: str
    rules: tuple[Rule, ...]
    description: str = ""
    span_prob: float = DEFAULT_SPAN_PROB
    critical_kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        if not isinstance(self.span_prob, (int, float)) or not 0.0 < self.span_prob <= 1.0:
            raise _bad("span_prob", f"must be in (0, 1], got {self.span_prob!r}")
        unknown = [k for k in self.critical_kinds if k not in KINDS]
        if unknown:
            raise _bad("critical_kinds", f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise _bad("rules", f"rule names must be unique, got {names}")

    @property
    def needs_confidence(self) -> bool:
        return any(r.metric == CONFIDENCE for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "span_prob": self.span_prob,
            "critical_kinds": list(self.critical_kinds),
            "rules": [r.to_dict() for r in self.rules],
        }


def _structural() -> tuple[Rule, ...]:
    return (
        Rule(
            "no-tokens",
            "n_scored",
            "review",
            below=1,
            why="nothing was scored, so there is nothing to measure: a person must look",
        ),
        Rule(
            "invalid-logprobs",
            "n_invalid",
            "review",
            above=0,
            why="NaN or positive logprobs mean broken data; no number here can be trusted",
        ),
        Rule(
            "floored-token",
            "n_floored",
            "review",
            above=0,
            why="a token at the -9999 floor was chosen although the provider ranked it outside "
            "its listed alternatives; its real probability is unknown and tiny",
        ),
    )


def _builtin() -> dict[str, Policy]:
    s = _structural()
    crit = "numbers, dates, names, URLs, e-mails and identifiers are where a guess does harm"
    return {
        p.name: p
        for p in (
            Policy(
                "default",
                s
                + (
                    Rule(
                        "mean-publish-bar",
                        "mean_logprob",
                        "review",
                        below=-0.5,
                        why="a team publishes answers averaging above -0.5 nats/token "
                        "without review",
                    ),
                    Rule(
                        "mean-reject-bar",
                        "mean_logprob",
                        "reject",
                        below=-1.5,
                        why="below -1.5 nats/token (geometric mean token prob < 0.22) the "
                        "same team sends everything to review; we reject: regenerate or escalate",
                    ),
                    Rule("weak-critical", "critical_min_prob", "review", below=0.3, why=crit),
                    Rule(
                        "min-token",
                        "min_prob",
                        "review",
                        below=0.01,
                        why="one near-random token inside a fluent answer (length-sensitive: long "
                        "sampled answers trip it more often)",
                    ),
                    Rule(
                        "low-span",
                        "longest_low_span_words",
                        "review",
                        above=2,
                        why="three or more unsure words in a row: the model was improvising",
                    ),
                ),
                "Mean-logprob bands (-0.5 publish / -1.5 reject) plus critical, min-token and span "
                "checks.",
            ),
            Policy(
                "strict",
                s
                + (
                    Rule("mean-publish-bar", "mean_logprob", "review", below=-0.3),
                    Rule("mean-reject-bar", "mean_logprob", "reject", below=-1.0),
                    Rule("weak-critical", "critical_min_prob", "review", below=0.5, why=crit),
                    Rule("min-token", "min_prob", "review", below=0.05),
                    Rule("low-span", "longest_low_span_words", "review", above=1),
                ),
                "For high-stakes text: tighter bands, any two unsure words in a row, "
                "critical < 0.5.",
            ),
            Policy(
                "lenient",
                s
                + (
                    Rule("mean-publish-bar", "mean_logprob", "review", below=-1.0),
                    Rule("mean-reject-bar", "mean_logprob", "reject", below=-2.5),
                    Rule("weak-critical", "critical_min_prob", "review", below=0.1, why=crit),
                ),
                "For drafts: only clearly weak answers or clearly guessed critical tokens.",
            ),
            Policy(
                "quantile",
                s
                + (
                    Rule(
                        "q10-publish-bar",
                        "prob_q10",
                        "review",
                        below=0.3,
                        why="10th percentile of token probability: does not drift with length",
                    ),
                    Rule(
                        "q25-reject-bar",
                        "prob_q25",
                        "reject",
                        below=0.3,
                        why="a quarter of the tokens were coin flips",
                    ),
                    Rule("weak-critical", "critical_min_prob", "review", below=0.3, why=crit),
                ),
                "Length-robust: quantiles of token probability instead of sum/mean.",
            ),
            Policy(
                "calibrated",
                s
                + (
                    Rule(
                        "confidence-publish-bar",
                        CONFIDENCE,
                        "review",
                        below=0.8,
                        why="calibrated P(correct) under 0.8",
                    ),
                    Rule(
                        "confidence-reject-bar",
                        CONFIDENCE,
                        "reject",
                        below=0.5,
                        why="calibrated P(correct) under 0.5: more likely wrong than right",
                    ),
                ),
                "Thresholds on a calibrated probability; needs a confidence_transform.",
            ),
        )
    }


BUILTIN_POLICIES: Mapping[str, Policy] = _builtin()


def get_policy(name: str) -> Policy:
    """A built-in policy by name."""
    if name not in BUILTIN_POLICIES:
        raise InvalidRequestError(
            f"unknown policy {name!r}; built-in: {', '.join(BUILTIN_POLICIES)}", param="policy"
        )
    return BUILTIN_POLICIES[name]


_POLICY_KEYS = {"name", "description", "extends", "disable", "span_prob", "critical_kinds", "rules"}
_RULE_KEYS = {"name", "metric", "action", "below", "above", "why"}


def _rule_from_dict(d: Any, where: str) -> Rule:
    if not isinstance(d, Mapping):
        raise _bad(where, f"expected a table, got {type(d).__name__}")
    extra = set(d) - _RULE_KEYS
    if extra:
        raise _bad(where, f"unknown keys {sorted(extra)}; allowed: {sorted(_RULE_KEYS)}")
    comp = "below" if "below" in d else "above"
    name = d.get("name") or f"{d.get('metric')}-{comp}-{d.get(comp)}"
    try:
        return Rule(
            name=name,
            metric=d.get("metric", ""),
            action=d.get("action", ""),
            below=d.get("below"),
            above=d.get("above"),
            why=str(d.get("why", "")),
        )
    except InvalidRequestError as e:  # re-label with the position in the file
        raise _bad(where, e.message) from None


def _merge_rules(
    base: Sequence[Rule], disable: Sequence[str], new: Sequence[Rule]
) -> tuple[Rule, ...]:
    unknown = [n for n in disable if n not in {r.name for r in base}]
    if unknown:
        raise _bad("disable", f"no inherited rules named {unknown}")
    new_names = {r.name for r in new}
    kept = [r for r in base if r.name not in disable and r.name not in new_names]
    return tuple(kept) + tuple(new)


def policy_from_dict(d: Mapping[str, Any]) -> Policy:
    """Build a policy from a mapping shaped like the TOML file (see module docstring)."""
    extra = set(d) - _POLICY_KEYS
    if extra:
        raise _bad("policy", f"unknown keys {sorted(extra)}; allowed: {sorted(_POLICY_KEYS)}")
    base = get_policy(d["extends"]) if "extends" in d else None
    raw_rules = d.get("rules", [])
    if not isinstance(raw_rules, list):
        raise _bad("rules", "must be an array of tables ([[rules]])")
    rules = [_rule_from_dict(r, f"rules[{i}]") for i, r in enumerate(raw_rules)]
    disable = d.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(x, str) for x in disable):
        raise _bad("disable", "must be a list of rule names")
    merged = _merge_rules(base.rules if base else (), disable, rules)
    if not merged:
        raise _bad("rules", "a policy needs at least one rule (or 'extends')")
    kinds = d.get("critical_kinds", base.critical_kinds if base else KINDS)
    return Policy(
        name=str(d.get("name", "custom")),
        rules=merged,
        description=str(d.get("description", base.description if base else "")),
        span_prob=d.get("span_prob", base.span_prob if base else DEFAULT_SPAN_PROB),
        critical_kinds=tuple(kinds),
    )


def load_policy(path: str | Path) -> Policy:
    """Read a policy from a TOML file; errors name the file and the offending key."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRequestError(f"policy file not found: {p}", param="config") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidRequestError(f"cannot read policy file {p}: {e}", param="config") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidRequestError(
            f"policy file {p} is not valid TOML: {e}", param="config"
        ) from None
    try:
        policy = policy_from_dict(data)
    except InvalidRequestError as e:
        raise InvalidRequestError(f"policy file {p}: {e.message}", param=e.param) from None
    return policy if "name" in data else replace(policy, name=p.stem)
