"""The review gate: built-in policies, reasons and spans, TOML policies, the calibration hook."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from analysis_helpers import completion, p, tok, toks

from logprobe.analysis import (
    BUILTIN_POLICIES,
    METRICS,
    Policy,
    Rule,
    SequenceSummary,
    gate,
    get_policy,
    load_policy,
    policy_from_dict,
)
from logprobe.errors import CalibrationError, InvalidRequestError

CONFIDENT = [
    ("The", p(0.95)),
    (" sky", p(0.9)),
    (" is", p(0.97)),
    (" blue", p(0.93)),
    (".", p(0.99)),
]


def rules_fired(d: object) -> list[str]:
    return [r.rule for r in d.reasons]  # type: ignore[attr-defined]


def test_confident_answer_is_published() -> None:
    d = gate(completion(toks(CONFIDENT)))
    assert d.decision == "publish" and d.reasons == () and d.policy == "default"
    json.dumps(d.to_dict(), allow_nan=False)


def test_mean_bands() -> None:
    review = gate(toks([(" a", -0.8), (" b", -0.6)]))  # mean -0.7
    assert review.decision == "review" and rules_fired(review) == ["mean-publish-bar"]
    r = review.reasons[0]
    assert (r.metric, r.value, r.threshold, r.comparison) == (
        "mean_logprob",
        pytest.approx(-0.7),
        -0.5,
        "below",
    )
    reject = gate(toks([(" a", -1.6), (" b", -1.6), (" c", -1.6)]))
    assert reject.decision == "reject"
    assert {"mean-publish-bar", "mean-reject-bar", "low-span"} <= set(rules_fired(reject))


def test_weak_number_in_fluent_answer_points_at_it() -> None:
    ts = toks(
        [
            ("It", p(0.98)),
            (" opened", p(0.97)),
            (" in", p(0.99)),
            (" 18", p(0.2)),
            ("67", p(0.9)),
            (".", p(0.99)),
        ]
    )
    d = gate(ts)
    assert d.decision == "review"
    assert rules_fired(d) == ["weak-critical"]
    (span,) = d.reasons[0].spans
    assert (span.kind, span.text, span.token_start, span.token_end) == ("number", "1867", 3, 5)


def test_min_token_rule_shows_the_word() -> None:
    ts = toks(
        [("A", p(0.99))] * 20 + [(" Zur", p(0.005)), ("ich", p(0.99))] + [(" b", p(0.99))] * 20
    )
    d = gate(ts)
    assert "min-token" in rules_fired(d)
    reason = next(r for r in d.reasons if r.rule == "min-token")
    assert [s.text for s in reason.spans] == ["Zurich"]


def test_empty_response_goes_to_review() -> None:
    d = gate([])
    assert d.decision == "review" and rules_fired(d) == ["no-tokens"]


def test_nan_goes_to_review_with_the_token() -> None:
    d = gate(toks(CONFIDENT) + [tok(" oops", float("nan"))])
    assert d.decision == "review" and rules_fired(d) == ["invalid-logprobs"]
    assert [s.text for s in d.reasons[0].spans] == ["oops"]
    json.dumps(d.to_dict(), allow_nan=False)


def test_floored_token_is_reported_and_rejected_by_mean() -> None:
    d = gate(toks(CONFIDENT) + [tok(" x", -9999.0)])
    assert "floored-token" in rules_fired(d) and d.decision == "reject"
    json.dumps(d.to_dict(), allow_nan=False)


def test_policies_differ() -> None:
    ts = toks([(" a", -0.4), (" b", -0.4)])  # mean -0.4; each token p=0.67
    assert gate(ts, "default").decision == "publish"
    assert gate(ts, "strict").decision == "review"
    assert gate(ts, "lenient").decision == "publish"


def test_quantile_policy_ignores_length() -> None:
    short = toks([(" a", p(0.9)), (" b", p(0.9))])
    long = toks([(" a", p(0.9)), (" b", p(0.9))] * 200)
    assert gate(short, "quantile").decision == gate(long, "quantile").decision == "publish"


def test_unknown_policy_name() -> None:
    with pytest.raises(InvalidRequestError, match="unknown policy 'nope'") as e:
        gate([], "nope")
    assert e.value.param == "policy"


def test_builtin_policies_are_valid_and_documented() -> None:
    assert set(BUILTIN_POLICIES) == {"default", "strict", "lenient", "quantile", "calibrated"}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ANALYSIS.md").read_text(encoding="utf-8")
    for name, pol in BUILTIN_POLICIES.items():
        assert f"`{name}`" in doc
        for r in pol.rules:
            assert r.metric in METRICS
            assert f"`{r.name}`" in doc


# -- calibration hook --------------------------------------------------------------------------


def platt(s: SequenceSummary) -> float:
    assert s.mean_logprob is not None
    return 1 / (1 + math.exp(-(4 * s.mean_logprob + 3)))


def test_calibrated_policy_needs_a_transform() -> None:
    with pytest.raises(InvalidRequestError, match="confidence_transform") as e:
        gate(toks(CONFIDENT), "calibrated")
    assert e.value.param == "confidence_transform"


def test_calibrated_policy_uses_the_transform() -> None:
    good = gate(toks(CONFIDENT), "calibrated", confidence_transform=platt)
    assert good.decision == "publish" and good.confidence == pytest.approx(platt(good.summary))
    mid = gate(toks([(" a", -0.5)]), "calibrated", confidence_transform=platt)  # 1/(1+e^-1) = 0.73
    assert mid.decision == "review" and mid.confidence == pytest.approx(0.7311, abs=1e-4)
    assert rules_fired(mid) == ["confidence-publish-bar"]


def test_transform_reported_under_any_policy() -> None:
    d = gate(toks(CONFIDENT), confidence_transform=lambda s: 0.5)
    assert d.confidence == 0.5 and d.decision == "publish"


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), "x"])
def test_bad_transform_output(value: object) -> None:
    with pytest.raises(CalibrationError) as e:
        gate(toks(CONFIDENT), confidence_transform=lambda s: value)  # type: ignore[arg-type, return-value]
    assert e.value.param == "confidence_transform"


# -- policies from Python and TOML -------------------------------------------------------------


def test_policy_from_python() -> None:
    pol = Policy("mine", (Rule("short", "n_scored", "reject", below=3),))
    assert gate(toks(CONFIDENT), pol).decision == "publish"
    d = gate(toks(CONFIDENT[:2]), pol)
    assert d.decision == "reject" and d.policy == "mine"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"metric": "mean", "below": 1}, "unknown metric 'mean'"),
        ({"metric": "mean_logprob"}, "exactly one of 'below' or 'above'"),
        ({"metric": "mean_logprob", "below": 1, "above": 2}, "exactly one"),
        ({"metric": "mean_logprob", "below": float("inf")}, "finite number"),
        ({"metric": "mean_logprob", "below": 1, "action": "delete"}, "'review' or 'reject'"),
    ],
)
def test_bad_rules(kw: dict[str, object], match: str) -> None:
    args = {"name": "r", "action": "review", **kw}
    with pytest.raises(InvalidRequestError, match=match):
        Rule(**args)  # type: ignore[arg-type]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_extends_overrides_and_disables(tmp_path: Path) -> None:
    pol = load_policy(
        write(
            tmp_path,
            """
extends = "default"
disable = ["min-token"]
span_prob = 0.2

[[rules]]
name = "mean-publish-bar"
metric = "mean_logprob"
below = -0.9
action = "review"
why = "cheap reviewers"

[[rules]]
metric = "n_scored"
above = 100
action = "review"
""",
        )
    )
    assert pol.name == "policy" and pol.span_prob == 0.2
    names = [r.name for r in pol.rules]
    assert "min-token" not in names and "n_scored-above-100" in names
    assert next(r for r in pol.rules if r.name == "mean-publish-bar").threshold == -0.9
    assert gate(toks([(" a", -0.8)]), pol).decision == "publish"  # default would review
    assert pol.rules != get_policy("default").rules


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("extends = 'default'\ncolour = 'red'", "unknown keys \\['colour'\\]"),
        ("extends = 'nope'", "unknown policy 'nope'"),
        (
            "[[rules]]\nmetric = 'mean_logprob'\nbelow = -1\naction = 'review'\nfoo = 1",
            "rules\\[0\\]: unknown keys",
        ),
        (
            "[[rules]]\nmetric = 'nope'\nbelow = -1\naction = 'review'",
            "rules\\[0\\].*unknown metric",
        ),
        ("extends = 'default'\ndisable = ['nope']", "no inherited rules named"),
        ("name = 'x'", "at least one rule"),
        ("this is = not toml [", "not valid TOML"),
        ("extends = 'default'\nspan_prob = 2", "span_prob"),
    ],
)
def test_toml_errors_name_the_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match) as e:
        load_policy(write(tmp_path, text))
    assert "policy.toml" in e.value.message


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="not found") as e:
        load_policy(tmp_path / "none.toml")
    assert e.value.param == "config"


def test_policy_roundtrip_through_dict() -> None:
    for pol in BUILTIN_POLICIES.values():
        again = policy_from_dict(pol.to_dict())
        assert again.rules == pol.rules and again.name == pol.name
