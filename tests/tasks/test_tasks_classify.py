"""classify() and rerank() on the real embedded model."""

from __future__ import annotations

import math
from typing import Any

import pytest

from logprobe.engines import GenerationParams
from logprobe.errors import InvalidRequestError
from logprobe.tasks import classify, rerank
from logprobe.tasks.classify import supports_scoring

REVIEW = "An absolute delight from start to finish; I loved every minute."
LABELS = ["positive", "negative", "extraordinarily mixed feelings"]


def test_label_probabilities_sum_to_one_for_each_normalization(engine: Any) -> None:
    for norm in ("none", "tokens", "chars"):
        r = classify(engine, REVIEW, LABELS, normalize=norm)
        assert set(r.probs) == set(LABELS)
        assert math.fsum(r.probs.values()) == pytest.approx(1.0, abs=1e-12)
        assert all(0.0 <= p <= 1.0 for p in r.probs.values())
        assert r.label == max(r.probs, key=r.probs.__getitem__)
        assert r.normalize == norm and r.method == "exact" and not r.approximate
    assert supports_scoring(engine)


def test_normalizations_rank_by_their_own_score(engine: Any) -> None:
    r_none = classify(engine, REVIEW, LABELS, normalize="none")
    r_tok = classify(engine, REVIEW, LABELS, normalize="tokens")
    for a, b in zip(r_none.options, r_tok.options, strict=False):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)  # same scores, other normaliser
        assert b.score == pytest.approx(b.logprob / b.n_tokens)
    multi = next(o for o in r_none.options if o.text == LABELS[2])
    assert multi.n_tokens >= 3


def test_exact_distribution_is_the_conditional_of_sequence_probabilities(engine: Any) -> None:
    r = classify(engine, REVIEW, LABELS)
    mass = sum(math.exp(o.logprob) for o in r.options)
    for o in r.options:
        assert r.probs[o.text] == pytest.approx(math.exp(o.logprob) / mass, rel=1e-6)
    assert r.label_mass == pytest.approx(mass, rel=1e-6)


def _token_by_token_logprob(engine: Any, prompt: str, continuation: str) -> float:
    """Force each token of the continuation with a logit bias, one generation step at a time;
    raw logprobs ignore the bias, so each step reports the model's own logprob of that token."""
    ids = engine.tokenize(prompt, add_bos=True)
    total = 0.0
    for tok in engine.tokenize(continuation):
        params = GenerationParams.make(max_tokens=1, temperature=0.0, logit_bias={tok: 100.0})
        out = engine.complete(ids, params)
        assert out.tokens[0].id == tok
        total += out.tokens[0].logprob
        ids = [*ids, tok]
    return total


def test_multi_token_label_matches_token_by_token_scoring(engine: Any) -> None:
    r = classify(engine, REVIEW, LABELS, template="Review: {text}\nSentiment:")
    multi = next(o for o in r.options if o.text == LABELS[2])
    stepwise = _token_by_token_logprob(engine, f"Review: {REVIEW}\nSentiment:", " " + LABELS[2])
    assert multi.logprob == pytest.approx(stepwise, abs=2e-3)


def test_chat_messages_and_template_prompts(engine: Any) -> None:
    msgs = [{"role": "user", "content": f"Is this review positive or negative?\n{REVIEW}"}]
    r = classify(engine, msgs, ["Positive", "Negative"])
    assert math.fsum(r.probs.values()) == pytest.approx(1.0)
    # the chat prompt is tokenized with its special tokens: scoring after it differs from
    # scoring after the same text read literally
    literal = classify(
        engine, engine.render_chat(msgs), ["Positive", "Negative"], template=None, label_prefix=""
    )
    assert r.options[0].logprob != pytest.approx(literal.options[0].logprob, abs=1e-3)
    r2 = classify(engine, REVIEW, ["positive", "negative"], chat=True)
    assert r2.probs["positive"] > r2.probs["negative"]


def test_abstain_when_top_two_are_close(engine: Any) -> None:
    r = classify(engine, REVIEW, ["positive", "negative"], abstain_margin=1.0)
    assert r.decision == "abstain" and r.abstained
    r = classify(engine, REVIEW, ["positive", "negative"], abstain_margin=0.0)
    assert r.decision == "accept"
    assert r.margin == pytest.approx(abs(r.probs["positive"] - r.probs["negative"]))


def test_calibrator_maps_confidence(engine: Any) -> None:
    class Halve:
        def calibrate(self, p: Any) -> Any:
            return p * 0.5

    r = classify(engine, REVIEW, ["positive", "negative"], calibrator=Halve())
    assert r.confidence == pytest.approx(0.5 * r.probs[r.label])
    assert r.to_dict()["calibrated"] is True


def test_first_token_method_on_the_local_engine(engine: Any) -> None:
    r = classify(engine, REVIEW, ["positive", "negative"], method="first_token")
    assert r.approximate and r.method == "first_token"
    assert math.fsum(r.probs.values()) == pytest.approx(1.0)
    exact = classify(engine, REVIEW, ["positive", "negative"])
    # single-token labels: the first-token approximation equals the exact answer
    assert r.label == exact.label
    assert r.probs["positive"] == pytest.approx(exact.probs["positive"], abs=1e-3)
    # a uniform bias on the labels' first tokens leaves the label ratios alone
    biased = classify(
        engine, REVIEW, ["positive", "negative"], method="first_token", first_token_bias=5.0
    )
    assert any("logit bias +5" in n for n in biased.notes)
    assert biased.probs["positive"] == pytest.approx(r.probs["positive"], abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"labels": []}, "labels"),
        ({"labels": ["yes", "yes"]}, "labels"),
        ({"labels": ["yes", ""]}, "labels"),
        ({"labels": ["a", "b"], "normalize": "bytes"}, "normalize"),
        ({"labels": ["a", "b"], "template": "no placeholder"}, "template"),
        ({"labels": ["a", "b"], "template": "{text} {oops}"}, "template"),
        ({"labels": ["a", "b"], "abstain_margin": 2.0}, "abstain_margin"),
        ({"labels": ["a", "b"], "method": "guess"}, "method"),
    ],
)
def test_bad_input_names_the_parameter(engine: Any, kwargs: dict[str, Any], param: str) -> None:
    labels = kwargs.pop("labels")
    with pytest.raises(InvalidRequestError) as e:
        classify(engine, REVIEW, labels, **kwargs)
    assert e.value.param == param


def test_empty_text_and_bad_messages(engine: Any) -> None:
    with pytest.raises(InvalidRequestError, match="empty"):
        classify(engine, "  ", ["a", "b"])
    with pytest.raises(InvalidRequestError, match="content"):
        classify(engine, [{"role": "user"}], ["a", "b"])


def test_rerank_order_is_consistent_with_scores(engine: Any) -> None:
    cands = ["Paris.", "London.", "the largest city in the south of Germany, Munich.", "Paris"]
    for norm in ("none", "tokens", "chars"):
        r = rerank(engine, "The capital of France is", cands, normalize=norm)
        scores = [c.option.score for c in r.ranked]
        assert scores == sorted(scores, reverse=True)
        assert sorted(r.order) == list(range(len(cands)))
        assert [c.rank for c in r.ranked] == [1, 2, 3, 4]
        assert r.best == cands[r.order[0]]
    by_total = rerank(engine, "The capital of France is", cands, normalize="none")
    totals = [c.option.logprob for c in by_total.ranked]
    assert totals == sorted(totals, reverse=True)
    assert by_total.ranked[0].option.text.startswith("Paris")
    with pytest.raises(InvalidRequestError, match="duplicate"):
        rerank(engine, "x", ["a", "a"])
