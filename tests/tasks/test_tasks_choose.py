"""choose(): constrained generation through llguidance on the real embedded model."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logprobe.errors import InvalidRequestError, UnsatisfiableError
from logprobe.tasks import choose, classify
from logprobe.tasks.grammar import make_constraint, regex_grammar

pytest.importorskip("llguidance")

SLOW = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=10).filter(
    lambda s: s.strip() == s and s != ""
)


@SLOW
@given(st.lists(words, min_size=2, max_size=4, unique=True))
def test_output_is_always_one_of_the_choices(engine: Any, choices: list[str]) -> None:
    r = choose(engine, "Pick one word:", choices=choices)
    assert r.output in choices
    assert r.complete
    assert math.fsum(r.distribution.values()) == pytest.approx(1.0)
    assert set(r.distribution) == set(choices)
    assert r.best in choices


small_regexes = st.sampled_from(
    [
        r"[0-9]{1,3}",
        r"(yes|no)",
        r"[a-z]{2,5}",
        r"(red|green|blue) (car|bike)",
        r"[A-Z][a-z]{1,4}",
        r"-?[0-9]{1,4}\.[0-9]{2}",
        r"(ab|cd){1,3}",
    ]
)


@SLOW
@given(small_regexes, st.sampled_from(["The answer is", "Number:", "Colour and vehicle:"]))
def test_output_always_matches_the_regex(engine: Any, regex: str, prompt: str) -> None:
    r = choose(engine, prompt, regex=regex, max_tokens=24)
    assert r.kind == "regex" and r.complete
    assert re.fullmatch(regex, r.output), (regex, r.output)
    assert len(r.steps) >= 1
    for step in r.steps:
        assert step.n_allowed >= 1
        assert any(a.id == step.token.id for a in step.alternatives)
        assert math.fsum(a.prob for a in step.alternatives) <= 1.0 + 1e-6


def test_budget_exhausted_before_the_grammar_completes_is_flagged(engine: Any) -> None:
    r = choose(engine, "Number:", regex=r"-?[0-9]+\.[0-9]{2}", max_tokens=3)
    assert not r.complete
    assert len(r.steps) == 3 and r.completion is not None
    assert r.completion.choice.finish_reason == "length"
    assert re.fullmatch(r"-?[0-9]*\.?[0-9]{0,2}", r.output)


def test_distribution_comes_from_scoring_not_greedy_steps(engine: Any) -> None:
    prompt = "Q: What is the capital of France?\nA:"
    choices = ["Paris", "Paris, Texas", "Lyon"]
    r = choose(engine, prompt, choices=choices)
    exact = classify(engine, prompt, choices, template=None)
    for c in choices:
        assert r.distribution[c] == pytest.approx(exact.probs[c], abs=1e-6)
    assert r.output in choices
    assert r.greedy_agrees == (r.output == r.best)
    d = r.to_dict()
    assert d["best"] == r.best and "steps" in d and d["kind"] == "choices"


def test_json_schema_output_parses_and_fits(engine: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    r = choose(engine, "A person as JSON:", json_schema=schema, max_tokens=60)
    assert r.complete
    value = json.loads(r.output)
    assert value == r.value
    assert set(value) == {"name", "age"} and 0 <= value["age"] <= 120
    r2 = choose(engine, "A person as JSON:", json_schema=json.dumps(schema), max_tokens=60)
    assert json.loads(r2.output) == value  # greedy: same output from the schema as a string


def test_lark_grammar(engine: Any) -> None:
    r = choose(engine, "Say hello:", lark='start: "hello" | "hi" " there"')
    assert r.output in ("hello", "hi there")


def test_chat_prompt(engine: Any) -> None:
    r = choose(
        engine,
        [{"role": "user", "content": "Is water wet? Answer yes or no."}],
        choices=["yes", "no"],
    )
    assert r.output in ("yes", "no")
    assert math.fsum(r.distribution.values()) == pytest.approx(1.0)


def test_unsatisfiable_grammars_raise(engine: Any) -> None:
    with pytest.raises(UnsatisfiableError) as e:
        choose(engine, "x", json_schema={"type": "string", "minLength": 5, "maxLength": 2})
    assert e.value.param == "json_schema"
    with pytest.raises(UnsatisfiableError) as e:
        choose(engine, "x", regex=r"[^\s\S]", option_prefix="")
    assert e.value.param == "regex"
    with pytest.raises(UnsatisfiableError):
        choose(engine, "x", json_schema={"type": "integer", "minimum": 5, "maximum": 1})


def test_invalid_grammars_name_the_field(engine: Any) -> None:
    with pytest.raises(InvalidRequestError) as e:
        choose(engine, "x", regex="(unclosed")
    assert e.value.param == "regex" and "unclosed" in e.value.message
    with pytest.raises(InvalidRequestError) as e:
        choose(engine, "x", regex="(?=a)a")
    assert e.value.param == "regex"
    with pytest.raises(InvalidRequestError, match="exactly one"):
        choose(engine, "x", choices=["a"], regex="a")
    with pytest.raises(InvalidRequestError, match="exactly one"):
        choose(engine, "x")
    with pytest.raises(InvalidRequestError) as e:
        choose(engine, "x", choices=["a", "a"])
    assert e.value.param == "choices"


def test_choice_the_tokenizer_cannot_produce(engine: Any) -> None:
    # a lone surrogate has no UTF-8 encoding: no token sequence spells it
    with pytest.raises((UnsatisfiableError, InvalidRequestError)) as e:
        choose(engine, "x", choices=["fine", "bad\udc80"])
    assert e.value.param == "choices"


def test_constraint_object_protocol(engine: Any) -> None:
    c = make_constraint(engine, regex_grammar("(yes|no)"), param="regex")
    mask = c.allowed()
    assert mask.shape == (engine.n_vocab,) and mask.dtype == bool
    yes = engine.tokenize("yes")
    assert all(mask[t] for t in yes[:1])
    assert not mask[engine.tokenize("maybe")[0]]
    for t in yes:
        c.advance(t)
    assert c.is_accepting and c.is_finished()
