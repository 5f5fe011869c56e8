"""The applications (issue 17) on the real embedded engine: properties, never model numbers."""

from __future__ import annotations

import math
from typing import Any

import pytest

from logprobe.errors import InvalidRequestError
from logprobe.tasks.autocomplete import autocomplete, expand_top_k, starts_word
from logprobe.tasks.moderate import calibrated_probs, decide, moderate, policy_from_dict
from logprobe.tasks.relevance import relevance, support
from logprobe.tasks.triage import TICKET_LABELS, TriageThresholds, triage

QUESTION = "What is the capital of France?"
PASSAGES = [
    "Paris is the capital and largest city of France.",
    "Bananas are a yellow fruit that grows in bunches.",
    "France is a country in Western Europe.",
]
POLICY = {
    "name": "offensive language",
    "allow_label": "not offensive",
    "template": "Tweet: {text}\n\nIs this tweet offensive or not offensive?",
    "labels": [{"name": "offensive"}, {"name": "not offensive"}],
    "thresholds": {"offensive": {"flag_at": 0.9, "allow_below": 0.2}},
}


class Doubler:
    """A stand-in calibrator (the public ``apply(p) -> p`` protocol): a known monotone map."""

    def apply(self, p: float) -> float:
        return min(1.0, 2 * p)


def test_relevance_ranks_and_reports_consistent_probabilities(engine: Any) -> None:
    r = relevance(engine, QUESTION, PASSAGES, calibrator=Doubler(), method="combined")
    assert sorted(r.order) == [0, 1, 2]
    assert [c.rank for c in r.ranked] == [1, 2, 3]
    assert math.isclose(sum(c.ql_posterior for c in r.ranked), 1.0, rel_tol=1e-9)
    for c in r.ranked:
        assert 0.0 <= c.raw_p_yes <= 1.0 and c.p_yes == pytest.approx(min(1.0, 2 * c.raw_p_yes))
        assert c.ql_logprob < 0 and c.ql_tokens > 0
    combined = [c.combined for c in r.ranked]
    assert combined == sorted(combined, reverse=True)
    by_index = {c.index: c for c in r.ranked}
    # the question is far more likely after the passage about Paris than after the bananas
    assert by_index[0].ql_logprob > by_index[1].ql_logprob
    ql = relevance(engine, QUESTION, PASSAGES, method="ql")
    assert ql.order[0] != 1 and ql.scores("ql") == pytest.approx(r.scores("ql"), abs=1e-3)


def test_relevance_allows_duplicate_passages(engine: Any) -> None:
    r = relevance(engine, QUESTION, [PASSAGES[0], PASSAGES[1], PASSAGES[0]])
    by_index = {c.index: c for c in r.ranked}
    assert by_index[0].ql_logprob == pytest.approx(by_index[2].ql_logprob, abs=0.05)
    assert r.method == "ql" and by_index[1].rank == 3


def test_relevance_rejects_bad_input(engine: Any) -> None:
    with pytest.raises(InvalidRequestError, match="at least one passage"):
        relevance(engine, QUESTION, [])
    with pytest.raises(InvalidRequestError, match="question"):
        relevance(engine, "  ", PASSAGES)
    with pytest.raises(InvalidRequestError, match="method"):
        relevance(engine, QUESTION, PASSAGES, method="bm25")


def test_support_probability_and_calibration(engine: Any) -> None:
    raw = support(engine, PASSAGES[0], "Paris", question=QUESTION)
    cal = support(
        engine, PASSAGES[0], "Paris", question=QUESTION, calibrator=Doubler(), threshold=0.0
    )
    assert 0.0 <= raw.p_supported <= 1.0 and raw.p_supported == raw.raw_p_supported
    assert cal.raw_p_supported == pytest.approx(raw.raw_p_supported, abs=1e-6)
    assert cal.p_supported == pytest.approx(min(1.0, 2 * raw.raw_p_supported), abs=1e-6)
    assert cal.supported and cal.calibrated
    with pytest.raises(InvalidRequestError, match="answer"):
        support(engine, PASSAGES[0], "")


def test_moderation_decision_matches_its_probabilities(engine: Any) -> None:
    pol = policy_from_dict(POLICY)
    for text in ("You are a wonderful person, thank you!", "Shut up you stupid idiot."):
        r = moderate(engine, text, pol)
        assert set(r.probs) == {"offensive", "not offensive"}
        assert math.isclose(sum(r.raw_probs.values()), 1.0, rel_tol=1e-9)
        assert (r.decision, r.label) == decide(pol, r.probs)[:2]
        cal = moderate(engine, text, pol, calibrators={"offensive": Doubler()})
        expected = calibrated_probs(pol, cal.raw_probs, {"offensive": Doubler()})
        assert cal.probs == pytest.approx(expected) and cal.calibrated


def test_autocomplete_from_a_list_and_from_the_model(engine: Any) -> None:
    r = autocomplete(engine, "The capital of France is", ["Lyon", "Paris", "a banana"])
    assert r.best == "Paris" and r.source == "list"
    assert math.isclose(sum(c.prob for c in r.ranked), 1.0, rel_tol=1e-9)
    assert r.ranked[-1].n_tokens >= 2  # "a banana" is scored on all its tokens
    m = expand_top_k(engine, "She opened the door and walked into the", top_k=6)
    words = [c.text for c in m.ranked]
    assert words and len(words) == len(set(words)) and len(words) <= 6
    assert all(w and not w[0].isspace() for w in words)
    lps = [c.logprob for c in m.ranked]
    assert lps == sorted(lps, reverse=True)
    assert m.top_token is not None and starts_word("the", m.top_token) == (
        m.greedy_word is not None
    )
    with pytest.raises(InvalidRequestError, match="at least one candidate"):
        autocomplete(engine, "The capital of France is", [])
    with pytest.raises(InvalidRequestError, match="prefix"):
        autocomplete(engine, "", None)


def test_triage_actions_follow_the_thresholds(engine: Any) -> None:
    msg = "I was charged twice this month, please refund one payment."
    sure = triage(engine, msg, thresholds=TriageThresholds(0.0, 0.0))
    assert sure.action == "route" and sure.label in TICKET_LABELS
    assert math.isclose(sum(sure.probs.values()), 1.0, rel_tol=1e-9)
    unsure = triage(engine, msg, thresholds=TriageThresholds(1.0, 0.0))
    assert unsure.action == "clarify" and unsure.label is None and unsure.question
    after = triage(
        engine,
        msg,
        thresholds=TriageThresholds(1.0, 0.0),
        answer="a charge, refund, invoice or payment",
    )
    assert after.action == "escalate" and after.escalated_to == "person"
    strong = triage(engine, msg, thresholds=TriageThresholds(0.5, 1.0), strong=engine, prior=None)
    assert strong.action == "escalate" and strong.strong is not None
    assert (strong.escalated_to == "model") == (strong.strong["margin"] >= 0.5)
    with pytest.raises(InvalidRequestError, match="empty"):
        triage(engine, " ")
