"""The library surface a new user meets first: top-level imports, Completion shortcuts,
``logprobe.normalize`` as a function, keyword options and the engine capabilities."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import logprobe
from logprobe import Choice, Completion, GenerationParams, InvalidRequestError, TokenLogprob
from logprobe.engines import resolve_params

LOGPROBS = st.lists(st.floats(min_value=-50.0, max_value=0.0), max_size=12)


def _choice(lps: list[float | None], index: int = 0) -> Choice:
    toks = tuple(TokenLogprob(f"t{i}", f"t{i}".encode(), lp) for i, lp in enumerate(lps))
    return Choice(text="".join(t.token for t in toks), tokens=toks, index=index)


@given(LOGPROBS, LOGPROBS)
def test_completion_shortcuts_read_the_first_choice(
    first: list[float], second: list[float]
) -> None:
    c = Completion(choices=(_choice(list(first)), _choice(list(second), 1)))
    assert c.text == c.choices[0].text and c.tokens == c.choices[0].tokens
    for choice, lps in ((c.choices[0], first), (c.choices[1], second)):
        if not lps:
            assert choice.mean_logprob is None and choice.perplexity is None
            continue
        mean = sum(lps) / len(lps)
        assert choice.mean_logprob == pytest.approx(mean, abs=1e-12)
        assert choice.perplexity == pytest.approx(math.exp(-mean), rel=1e-12)
        assert choice.logprob == pytest.approx(sum(lps), abs=1e-9)
    assert c.mean_logprob == c.choices[0].mean_logprob
    assert c.perplexity == c.choices[0].perplexity
    assert c.logprob == c.choices[0].logprob


def test_mean_logprob_skips_tokens_without_logprob() -> None:
    c = Completion(choices=(_choice([None, -1.0, -3.0]),))
    assert c.mean_logprob == -2.0
    assert c.perplexity == pytest.approx(math.exp(2.0))


def test_a_completion_without_choices_says_so() -> None:
    with pytest.raises(IndexError, match="no choices"):
        _ = Completion(choices=()).text


def test_normalize_is_a_function_and_the_subpackage_still_imports() -> None:
    code = (
        "import importlib, types, logprobe\n"
        "import logprobe.normalize\n"
        "from logprobe.normalize import normalize_with_notes, PROVIDERS\n"
        "assert isinstance(logprobe.normalize, types.FunctionType), logprobe.normalize\n"
        "pkg = importlib.import_module('logprobe.normalize')\n"
        "assert isinstance(pkg, types.ModuleType) and pkg.normalize is logprobe.normalize\n"
        "import logprobe.normalize.detect\n"
        "assert isinstance(logprobe.normalize, types.FunctionType)\n"
        "assert 'openai_chat' in PROVIDERS and callable(normalize_with_notes)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_embedded_engine_is_imported_on_first_use() -> None:
    code = (
        "import sys, logprobe, logprobe.engines\n"
        "assert 'llama_cpp' not in sys.modules\n"
        "assert 'logprobe.engines.llamacpp' not in sys.modules\n"
        "from logprobe import LlamaEngine\n"
        "assert 'logprobe.engines.llamacpp' in sys.modules\n"
        "assert logprobe.engines.LlamaEngine is LlamaEngine\n"
        "assert LlamaEngine.__module__ == 'logprobe.engines.llamacpp'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_unknown_top_level_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        logprobe.Nope  # noqa: B018


# ── resolve_params ──────────────────────────────────────────────────────────────────────────


def test_keywords_build_validated_params() -> None:
    p = resolve_params(top_logprobs=5, max_tokens=8, temperature=0)
    assert (p.top_logprobs, p.max_tokens, p.temperature) == (5, 8, 0)
    assert resolve_params() == GenerationParams()
    assert resolve_params(stop="\n").stop == ("\n",)


def test_params_alone_are_validated_against_the_engine_cap() -> None:
    p = GenerationParams(top_logprobs=30)  # built without make(): not validated yet
    with pytest.raises(InvalidRequestError) as info:
        resolve_params(p, max_logprobs=20)
    assert info.value.param == "top_logprobs"
    assert resolve_params(p, max_logprobs=50) is p


def test_keywords_that_agree_with_params_are_accepted() -> None:
    p = GenerationParams.make(top_logprobs=5, max_tokens=8)
    assert resolve_params(p, top_logprobs=5, temperature=None) is p


def test_keywords_that_contradict_params_name_the_option() -> None:
    p = GenerationParams.make(top_logprobs=5)
    with pytest.raises(InvalidRequestError, match="top_logprobs=3 contradicts") as info:
        resolve_params(p, top_logprobs=3)
    assert info.value.param == "top_logprobs"


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"top_logprob": 5}, "top_logprob"),
        ({"temperature": 9.0}, "temperature"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"max_tokens": -1}, "max_tokens"),
    ],
)
def test_bad_keywords_raise_naming_the_param(options: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        resolve_params(**options)  # type: ignore[arg-type]
    assert info.value.param == param
