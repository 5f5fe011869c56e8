"""Pure parts of the applications (issue 17): ranking metrics, policies, fits, word handling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logprobe.errors import InvalidRequestError
from logprobe.tasks.autocomplete import join_text, starts_word, word_prefix
from logprobe.tasks.moderate import Thresholds, calibrated_probs, decide, policy_from_dict
from logprobe.tasks.moderate_fit import fit_moderation, load_fit, save_fit
from logprobe.tasks.ranking_metrics import (
    average_precision,
    evaluate_run,
    ndcg_at_k,
    read_trec_qrels,
    read_trec_run,
    reciprocal_rank,
)
from logprobe.tasks.relevance_eval import load_questions, select_questions
from logprobe.tasks.triage import (
    TOPICS,
    TriageThresholds,
    actions_for,
    clarifying_question,
    fit_triage,
    prior_corrected,
    top_two,
)

POLICY = {
    "name": "test policy",
    "allow_label": "fine",
    "labels": [{"name": "toxic", "description": "insults"}, {"name": "fine"}],
    "thresholds": {"toxic": {"flag_at": 0.8, "allow_below": 0.3}},
}

scores_grades = st.integers(min_value=1, max_value=12).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(-50, 50, allow_nan=False), min_size=n, max_size=n, unique=True),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


def test_cnn_run_reproduces_the_published_wikiqa_figures(shared_data: Path) -> None:
    w = shared_data / "wikiqa"
    rep = evaluate_run(
        read_trec_qrels(w / "WikiQA-test-filtered.ref"),
        read_trec_run(w / "emnlp-table" / "WikiQA.CNN.test.rank"),
    )
    assert len(rep.per_question) == 237
    assert round(rep.map, 4) == 0.6190 and round(rep.mrr, 4) == 0.6281


@settings(max_examples=200, deadline=None)
@given(scores_grades)
def test_metrics_are_bounded_and_perfect_order_scores_one(
    sg: tuple[list[float], list[int]],
) -> None:
    scores, grades = sg
    for f in (average_precision, reciprocal_rank, ndcg_at_k):
        assert 0.0 <= f(scores, grades) <= 1.0 + 1e-12
    if any(grades):
        ideal = [float(g) for g in grades]  # score = grade: a perfect order (ties among equals)
        assert average_precision(ideal, grades) == pytest.approx(1.0)
        assert ndcg_at_k(ideal, grades, k=len(grades)) == pytest.approx(1.0)
        assert reciprocal_rank(ideal, grades) == 1.0


@settings(max_examples=100, deadline=None)
@given(scores_grades, st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_input_order(sg: tuple[list[float], list[int]], rnd) -> None:
    scores, grades = sg
    perm = list(range(len(scores)))
    rnd.shuffle(perm)
    s2, g2 = [scores[i] for i in perm], [grades[i] for i in perm]
    assert average_precision(scores, grades) == pytest.approx(average_precision(s2, g2))
    assert ndcg_at_k(scores, grades, 5) == pytest.approx(ndcg_at_k(s2, g2, 5))


def test_load_questions_groups_rows_and_names_a_missing_column(tmp_path: Path) -> None:
    f = tmp_path / "q.tsv"
    f.write_text(
        "qid\tquestion\tpassage\tlabel\nq1\twho?\ta\t0\nq1\twho?\tb\t1\n"
        "q2\twhat?\tc\tx\nq2\twhat?\td\t1\n",
        encoding="utf-8",
    )
    loaded = load_questions(f)
    assert [q.qid for q in loaded.questions] == ["q1", "q2"]
    assert loaded.questions[0].grades == (0.0, 1.0)
    assert loaded.skipped and "not a number" in loaded.skipped[0]["error"]
    assert [q.qid for q in select_questions(loaded.questions)] == ["q1"]  # q2: all relevant
    with pytest.raises(InvalidRequestError, match="missing column 'Sentence'"):
        load_questions(f, passage_col="Sentence")


def test_policy_validation_names_unknown_labels_and_keys() -> None:
    p = policy_from_dict(POLICY)
    assert p.flaggable == ("toxic",) and p.thresholds["toxic"] == Thresholds(0.8, 0.3)
    bad = [
        ({**POLICY, "thresholds": {"toxik": {"flag_at": 0.9}}}, "unknown label 'toxik'"),
        ({**POLICY, "allow_label": "ok"}, "unknown label 'ok'"),
        ({**POLICY, "colour": 1}, "unknown key 'colour'"),
        ({**POLICY, "thresholds": {"toxic": {"flag_at": 0.2, "allow_below": 0.5}}}, "allow_below"),
        ({**POLICY, "labels": [{"name": "fine"}]}, "at least two labels"),
        ({**POLICY, "template": "no text field"}, "{text}"),
    ]
    for data, msg in bad:
        with pytest.raises(InvalidRequestError, match=msg) as e:
            policy_from_dict(data)
        assert "\n" not in e.value.message


@given(st.floats(0, 1))
def test_decisions_follow_the_thresholds(q: float) -> None:
    p = policy_from_dict(POLICY)
    decision, label, _ = decide(p, {"toxic": q, "fine": 1 - q})
    expected = "flag" if q >= 0.8 else "review" if q >= 0.3 else "allow"
    assert decision == expected
    assert label == ("fine" if expected == "allow" else "toxic")


def _synthetic(n: int = 400, seed: int = 0) -> tuple[list[dict[str, float]], list[str]]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.35
    p = np.clip(np.where(y, rng.beta(5, 2, n), rng.beta(2, 5, n)), 0.001, 0.999)
    return [{"toxic": float(v), "fine": float(1 - v)} for v in p], [
        "toxic" if t else "fine" for t in y
    ]


def test_moderation_fit_meets_its_precision_targets_on_the_fit_data(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    p = policy_from_dict(POLICY)
    raw, gold = _synthetic()
    fit = fit_moderation(p, raw, gold, precision=0.97, allow_precision=0.97)
    pol = p.with_thresholds(fit.thresholds)
    dec = [decide(pol, calibrated_probs(pol, r, fit.calibrators))[0] for r in raw]
    flagged = [g for d, g in zip(dec, gold, strict=True) if d == "flag"]
    allowed = [g for d, g in zip(dec, gold, strict=True) if d == "allow"]
    assert flagged and sum(g == "toxic" for g in flagged) / len(flagged) >= 0.97
    assert allowed and sum(g == "fine" for g in allowed) / len(allowed) >= 0.97
    assert 0 < dec.count("review") < len(dec)
    path = save_fit(fit, p, tmp_path / "fit.json")
    back = load_fit(path, p)
    assert back.thresholds == fit.thresholds
    data = json.loads(path.read_text())
    data["thresholds"]["hate"] = data["thresholds"].pop("toxic")
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidRequestError, match="unknown label 'hate'"):
        load_fit(path, p)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
)
def test_prior_correction_is_a_distribution(p: list[float], prior: list[float]) -> None:
    labels = ["a", "b", "c"]
    q = prior_corrected(dict(zip(labels, p, strict=True)), dict(zip(labels, prior, strict=True)))
    assert math.isclose(sum(q.values()), 1.0, rel_tol=1e-9)
    (a, b), margin, mass = top_two(q)
    assert q[a] >= q[b] and 0 <= margin <= mass <= 1 + 1e-12


def test_triage_fit_and_actions_agree() -> None:
    rng = np.random.default_rng(1)
    labels = ["billing", "bug report", "feature request", "account access"]
    probs, gold = [], []
    for _ in range(300):
        g = int(rng.integers(4))
        logits = rng.normal(0, 1, 4)
        logits[g] += rng.uniform(0, 3)
        e = np.exp(logits) / np.exp(logits).sum()
        probs.append(dict(zip(labels, map(float, e), strict=True)))
        gold.append(labels[g])
    fit = fit_triage(probs, gold, route_precision=0.85, clarify_precision=0.85)
    acts = actions_for(probs, fit.thresholds)
    routed = [i for i, a in enumerate(acts) if a == "route"]
    assert routed and np.mean([top_two(probs[i])[0][0] == gold[i] for i in routed]) >= 0.85
    assert set(acts) <= {"route", "clarify", "escalate"}
    with pytest.raises(InvalidRequestError):
        TriageThresholds(clarify_margin=1.5)
    q = clarifying_question("billing", "bug report")
    assert TOPICS["billing"] in q and TOPICS["bug report"] in q


def test_word_helpers() -> None:
    assert join_text("The capital is", "Paris") == " Paris"
    assert join_text("The capital is ", "Paris") == "Paris"
    assert join_text("Hello", ", world") == ", world"
    assert word_prefix(" don't stop") == "don't" and word_prefix(" ...") == ""
    assert starts_word("I saw", " him") and not starts_word("I saw", "ing")
    assert starts_word("I saw ", "him") and not starts_word("I saw", " .")
