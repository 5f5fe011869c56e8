"""/v1/completions (legacy shape, echo scoring, batches, token ids, streaming)."""

from __future__ import annotations

from typing import Any

import pytest

from logprobe.types import LOGPROB_FLOOR

PROMPT = "The capital of France is"


def check_legacy(lp: Any, text: str, start: int) -> None:
    """tokens / token_logprobs / top_logprobs / text_offset agree with each other and the text."""
    n = len(lp.tokens)
    assert len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == n
    assert lp.text_offset[0] == start
    assert lp.text_offset == sorted(lp.text_offset)
    assert "".join(lp.tokens) == text[start:]
    for i, tok in enumerate(lp.tokens):
        end = lp.text_offset[i + 1] if i + 1 < n else len(text)
        assert text[lp.text_offset[i] : end] == tok
        if lp.token_logprobs[i] is not None:
            assert tok in lp.top_logprobs[i]  # the sampled token is always included
            assert lp.top_logprobs[i][tok] == pytest.approx(lp.token_logprobs[i])


def test_legacy_logprobs_shape(client: Any, model_name: str) -> None:
    r = client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=8, temperature=0, logprobs=3
    )
    c = r.choices[0]
    assert r.object == "text_completion"
    assert len(c.logprobs.tokens) == r.usage.completion_tokens == 8
    check_legacy(c.logprobs, PROMPT + c.text, len(PROMPT))
    for top, lp in zip(c.logprobs.top_logprobs, c.logprobs.token_logprobs, strict=True):
        assert 1 <= len(top) <= 4 and LOGPROB_FLOOR <= lp <= 0
        assert max(top.values()) == pytest.approx(lp)  # greedy: the sampled token is the best


def test_default_max_tokens_is_16(client: Any, model_name: str) -> None:
    r = client.completions.create(
        model=model_name, prompt="One, two, three, four,", temperature=0, logprobs=0
    )
    assert r.usage.completion_tokens <= 16
    assert all(len(t) == 1 for t in r.choices[0].logprobs.top_logprobs)


def test_echo_scoring_equals_engine_score(client: Any, model_name: str, engine: Any) -> None:
    r = client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=0, echo=True, logprobs=2
    )
    lp = r.choices[0].logprobs
    assert r.choices[0].text == PROMPT
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    scored = engine.score(PROMPT, top_logprobs=2)
    assert lp.tokens == [t.token for t in scored.tokens]
    assert lp.token_logprobs[1:] == pytest.approx([t.logprob for t in scored.tokens[1:]], abs=1e-4)
    check_legacy(lp, PROMPT, 0)
    assert r.usage.completion_tokens == 0


def test_echo_with_generation(client: Any, model_name: str) -> None:
    r = client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=4, echo=True, logprobs=1, temperature=0
    )
    c = r.choices[0]
    assert c.text.startswith(PROMPT)
    assert len(c.logprobs.tokens) == r.usage.prompt_tokens + r.usage.completion_tokens
    check_legacy(c.logprobs, c.text, 0)
    plain = client.completions.create(model=model_name, prompt=PROMPT, max_tokens=4, temperature=0)
    assert c.text == PROMPT + plain.choices[0].text


def test_batch_of_strings_with_n(client: Any, model_name: str) -> None:
    prompts = ["The capital of France is", "Water boils at"]
    r = client.completions.create(
        model=model_name, prompt=prompts, max_tokens=4, temperature=0, n=2
    )
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    for i, p in enumerate(prompts):
        alone = client.completions.create(model=model_name, prompt=p, max_tokens=4, temperature=0)
        assert r.choices[2 * i].text == r.choices[2 * i + 1].text == alone.choices[0].text


def test_token_id_prompts_as_lm_eval_sends_them(client: Any, model_name: str, engine: Any) -> None:
    texts = ["The capital of France is Paris", "The capital of France is Rome"]
    ids = [engine.tokenize(t) for t in texts]
    r = client.completions.create(
        model=model_name, prompt=ids, max_tokens=1, echo=True, logprobs=1, temperature=0
    )
    assert len(r.choices) == 2
    for choice, text, toks in zip(r.choices, texts, ids, strict=True):
        assert choice.text.startswith(text)
        scored = engine.score(text)
        n = len(toks)
        assert choice.logprobs.token_logprobs[1:n] == pytest.approx(
            [t.logprob for t in scored.tokens[1:]], abs=1e-4
        )
    paris, rome = (
        c.logprobs.token_logprobs[len(t) - 1] for c, t in zip(r.choices, ids, strict=True)
    )
    assert paris > rome  # likelihood ranking works through the token-id path


def test_single_token_id_list_equals_string(client: Any, model_name: str, engine: Any) -> None:
    a = client.completions.create(
        model=model_name, prompt=engine.tokenize(PROMPT), max_tokens=5, temperature=0
    )
    b = client.completions.create(model=model_name, prompt=PROMPT, max_tokens=5, temperature=0)
    assert a.choices[0].text == b.choices[0].text


def test_streaming_matches_whole(client: Any, model_name: str) -> None:
    kw = dict(model=model_name, prompt=PROMPT, max_tokens=8, temperature=0, logprobs=2)
    whole = client.completions.create(**kw).choices[0]
    chunks = list(client.completions.create(stream=True, **kw))
    text = "".join(c.choices[0].text for c in chunks)
    assert text == whole.text
    toks = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    lps = [x for c in chunks if c.choices[0].logprobs for x in c.choices[0].logprobs.token_logprobs]
    offs = [x for c in chunks if c.choices[0].logprobs for x in c.choices[0].logprobs.text_offset]
    assert toks == whole.logprobs.tokens
    assert lps == pytest.approx(whole.logprobs.token_logprobs, abs=1e-5)
    assert offs == whole.logprobs.text_offset
    assert chunks[-1].choices[0].finish_reason == whole.finish_reason


def test_streaming_echo_and_usage(client: Any, model_name: str) -> None:
    chunks = list(
        client.completions.create(
            model=model_name,
            prompt=PROMPT,
            max_tokens=3,
            temperature=0,
            logprobs=1,
            echo=True,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    first = chunks[0].choices[0]
    assert first.text == PROMPT
    assert first.logprobs.token_logprobs[0] is None
    assert "".join(first.logprobs.tokens) == PROMPT
    assert chunks[-1].usage.completion_tokens == 3 and chunks[-1].choices == []
    whole = client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=3, temperature=0, logprobs=1, echo=True
    ).choices[0]
    assert "".join(c.choices[0].text for c in chunks[:-1]) == whole.text
    offs = [
        x for c in chunks[:-1] if c.choices[0].logprobs for x in c.choices[0].logprobs.text_offset
    ]
    assert offs == whole.logprobs.text_offset


def test_prompt_logprobs_extension(client: Any, model_name: str, engine: Any) -> None:
    r = client.completions.create(
        model=model_name,
        prompt=PROMPT,
        max_tokens=1,
        temperature=0,
        extra_body={"prompt_logprobs": 1},
    )
    plp = r.choices[0].model_extra["prompt_logprobs"]
    ids = engine.tokenize(PROMPT)
    assert len(plp) == len(ids) and plp[0] is None
    scored = engine.score(PROMPT)
    for pos, tid, tok in zip(plp[1:], ids[1:], scored.tokens[1:], strict=True):
        assert pos[str(tid)]["logprob"] == pytest.approx(tok.logprob, abs=1e-4)
        assert pos[str(tid)]["rank"] == tok.rank
