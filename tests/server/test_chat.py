"""/v1/chat/completions through the official openai client against a real uvicorn server."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest

from logprobe.types import LOGPROB_FLOOR

MSG = [{"role": "user", "content": "Name three colours."}]


def rebuild(entries: list[Any]) -> str:
    return bytes(b for e in entries for b in e.bytes).decode("utf-8")


def test_logprobs_shape_and_bytes(client: Any, model_name: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model_name, messages=MSG, max_tokens=12, temperature=0, logprobs=True, top_logprobs=5
    )
    body = raw.http_response.json()
    r = raw.parse()
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.model == model_name
    assert set(body["choices"][0]["logprobs"]) == {"content", "refusal"}
    assert body["choices"][0]["logprobs"]["refusal"] is None
    assert body["choices"][0]["message"]["refusal"] is None
    content = choice.logprobs.content
    assert len(content) == r.usage.completion_tokens > 0
    assert set(body["choices"][0]["logprobs"]["content"][0]) == {
        "token",
        "logprob",
        "bytes",
        "top_logprobs",
    }
    for entry in content:
        assert LOGPROB_FLOOR <= entry.logprob <= 0 and math.isfinite(entry.logprob)
        assert len(entry.top_logprobs) == 5
        alts = [a.logprob for a in entry.top_logprobs]
        assert alts == sorted(alts, reverse=True)
        # greedy decoding picks the most likely token: it heads its own alternatives
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-9)
        assert all(a.bytes is not None for a in entry.top_logprobs)
    assert rebuild(content) == choice.message.content
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_logprobs_without_top_logprobs_still_returns_entries(client: Any, model_name: str) -> None:
    r = client.chat.completions.create(
        model=model_name, messages=MSG, max_tokens=6, temperature=0, logprobs=True
    )
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert all(e.top_logprobs == [] for e in content)


def test_no_logprobs_when_not_asked(client: Any, model_name: str) -> None:
    r = client.chat.completions.create(model=model_name, messages=MSG, max_tokens=4, temperature=0)
    assert r.choices[0].logprobs is None
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content


def test_n3_with_seed_is_reproducible(client: Any, model_name: str) -> None:
    kw = dict(
        model=model_name,
        messages=MSG,
        max_tokens=10,
        temperature=1.0,
        seed=1234,
        n=3,
        logprobs=True,
    )
    a = client.chat.completions.create(**kw)
    b = client.chat.completions.create(**kw)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    for ca, cb in zip(a.choices, b.choices, strict=True):
        assert [e.logprob for e in ca.logprobs.content] == pytest.approx(
            [e.logprob for e in cb.logprobs.content], abs=1e-6
        )
    assert a.usage.completion_tokens == sum(len(c.logprobs.content) for c in a.choices)


def test_default_temperature_is_openais_one(client: Any, model_name: str) -> None:
    base = dict(model=model_name, messages=MSG, max_tokens=5)
    greedy = client.chat.completions.create(**base, temperature=0).choices[0].message.content
    defaults = []
    for seed in (3, 4, 5):
        default = client.chat.completions.create(**base, seed=seed).choices[0]
        explicit = client.chat.completions.create(**base, seed=seed, temperature=1.0).choices[0]
        assert default.message.content == explicit.message.content
        defaults.append(default)
    # the default samples (T=1): across seeds some text leaves the greedy path
    assert {d.message.content for d in defaults} != {greedy}


def test_stop_and_finish_reasons(client: Any, model_name: str) -> None:
    full = client.chat.completions.create(
        model=model_name, messages=MSG, max_tokens=12, temperature=0
    )
    text = full.choices[0].message.content
    assert full.choices[0].finish_reason in ("length", "stop")
    words = text.split()
    stop = words[len(words) // 2]
    cut = client.chat.completions.create(
        model=model_name, messages=MSG, max_tokens=12, temperature=0, stop=[stop]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert stop not in cut.choices[0].message.content
    assert text.startswith(cut.choices[0].message.content)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_fields(client: Any, model_name: str, field: str) -> None:
    msgs = [{"role": "user", "content": "Count from one to one hundred in words."}]
    r = client.chat.completions.create(model=model_name, messages=msgs, temperature=0, **{field: 5})
    assert r.usage.completion_tokens == 5
    assert r.choices[0].finish_reason == "length"


def test_logit_bias_forces_a_token_and_logprobs_stay_raw(
    client: Any, model_name: str, engine: Any
) -> None:
    token_id = engine.tokenize(" banana")[0]
    piece = engine.token_bytes(token_id).decode()
    kw = dict(
        model=model_name,
        messages=MSG,
        max_tokens=3,
        temperature=0,
        logprobs=True,
        logit_bias={str(token_id): 100},
    )
    raw = client.chat.completions.create(**kw)
    entries = raw.choices[0].logprobs.content
    assert [e.token for e in entries] == [piece] * 3
    assert entries[0].logprob < -1.0  # raw: the model's own (low) probability of " banana"
    processed = client.chat.completions.create(**kw, extra_body={"logprobs_mode": "processed"})
    assert processed.choices[0].logprobs.content[0].logprob == pytest.approx(0.0, abs=1e-3)


def test_processed_logprobs_reflect_temperature(client: Any, model_name: str) -> None:
    kw = dict(
        model=model_name,
        messages=MSG,
        max_tokens=8,
        temperature=0.5,
        seed=9,
        logprobs=True,
        top_logprobs=3,
    )
    raw = client.chat.completions.create(**kw).choices[0].logprobs.content
    proc = (
        client.chat.completions.create(**kw, extra_body={"logprobs_mode": "processed"})
        .choices[0]
        .logprobs.content
    )
    assert [e.token for e in raw] == [e.token for e in proc]  # same seed, same samples
    assert any(abs(a.logprob - b.logprob) > 1e-3 for a, b in zip(raw, proc, strict=True))
    for a, b in zip(raw, proc, strict=True):
        if a.top_logprobs[0].token == a.token:  # a top-1 token gains probability at T < 1
            assert b.logprob >= a.logprob - 1e-6


def test_top_p_shapes_processed_but_not_raw_logprobs(client: Any, model_name: str) -> None:
    kw = dict(
        model=model_name,
        messages=MSG,
        max_tokens=4,
        temperature=1.0,
        top_p=0.05,
        seed=1,
        logprobs=True,
        top_logprobs=5,
    )
    processed = client.chat.completions.create(**kw, extra_body={"logprobs_mode": "processed"})
    raw = client.chat.completions.create(**kw)
    for p, r in zip(
        processed.choices[0].logprobs.content, raw.choices[0].logprobs.content, strict=True
    ):
        assert p.token == r.token
        assert len(r.top_logprobs) == 5  # raw: the model's own top 5, whatever top_p says
        # processed: only tokens inside the nucleus could be sampled; their mass sums to 1
        assert p.logprob >= r.logprob - 1e-6
        assert sum(
            math.exp(a.logprob) for a in p.top_logprobs if a.logprob > LOGPROB_FLOOR
        ) == pytest.approx(1.0, abs=1e-3)


def _stream(client: Any, **kw: Any) -> list[Any]:
    return list(client.chat.completions.create(stream=True, **kw))


def test_streamed_logprobs_equal_non_streamed(client: Any, model_name: str) -> None:
    kw = dict(
        model=model_name, messages=MSG, max_tokens=12, temperature=0, logprobs=True, top_logprobs=4
    )
    whole = client.chat.completions.create(**kw).choices[0]
    chunks = _stream(client, **kw)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    entries = [e for c in chunks if c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert text == whole.message.content
    assert [e.token for e in entries] == [e.token for e in whole.logprobs.content]
    assert [e.bytes for e in entries] == [e.bytes for e in whole.logprobs.content]
    assert [e.logprob for e in entries] == pytest.approx(
        [e.logprob for e in whole.logprobs.content], abs=1e-5
    )
    for s, w in zip(entries, whole.logprobs.content, strict=True):
        assert [a.token for a in s.top_logprobs] == [a.token for a in w.top_logprobs]
    assert chunks[-1].choices[0].finish_reason == whole.finish_reason
    # one token per chunk: every logprobs-bearing chunk carries exactly one entry
    assert all(len(c.choices[0].logprobs.content) == 1 for c in chunks if c.choices[0].logprobs)


def test_stream_include_usage_and_n(client: Any, model_name: str) -> None:
    chunks = _stream(
        client,
        model=model_name,
        messages=MSG,
        max_tokens=5,
        temperature=1.0,
        seed=5,
        n=2,
        stream_options={"include_usage": True},
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    finished = {c.choices[0].index for c in chunks[:-1] if c.choices[0].finish_reason}
    assert finished == {0, 1}
    whole = client.chat.completions.create(
        model=model_name, messages=MSG, max_tokens=5, temperature=1.0, seed=5, n=2
    )
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    for i in (0, 1):
        streamed = "".join(
            c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices[0].index == i
        )
        assert streamed == whole.choices[i].message.content


def test_async_client_plain_and_streaming(server: Any, model_name: str) -> None:
    async def go() -> tuple[Any, list[Any]]:
        async with server.async_client() as ac:
            kw = dict(
                model=model_name,
                messages=MSG,
                max_tokens=6,
                temperature=0,
                logprobs=True,
                top_logprobs=2,
            )
            whole = await ac.chat.completions.create(**kw)
            stream = await ac.chat.completions.create(stream=True, **kw)
            chunks = [c async for c in stream]
            return whole, chunks

    whole, chunks = asyncio.run(go())
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content
    streamed = [
        e.logprob for c in chunks if c.choices[0].logprobs for e in c.choices[0].logprobs.content
    ]
    assert streamed == pytest.approx(
        [e.logprob for e in whole.choices[0].logprobs.content], abs=1e-5
    )


def test_prompt_logprobs_extension(client: Any, model_name: str) -> None:
    r = client.chat.completions.create(
        model=model_name,
        messages=MSG,
        max_tokens=2,
        temperature=0,
        extra_body={"prompt_logprobs": 2},
    )
    plp = r.model_extra["prompt_logprobs"]
    assert len(plp) == r.usage.prompt_tokens
    assert plp[0] is None
    for pos in plp[1:]:
        assert 1 <= len(pos) <= 3  # the prompt token itself plus up to 2 alternatives
        ranks = sorted(v["rank"] for v in pos.values())
        assert ranks[0] >= 1
        assert all(
            LOGPROB_FLOOR <= v["logprob"] <= 0 and isinstance(v["decoded_token"], str)
            for v in pos.values()
        )


def test_content_parts_and_developer_role(client: Any, model_name: str) -> None:
    parts = [
        {"role": "developer", "content": "Answer briefly."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Name three "},
                {"type": "text", "text": "colours."},
            ],
        },
    ]
    plain = [{"role": "system", "content": "Answer briefly."}, MSG[0]]
    a = client.chat.completions.create(
        model=model_name, messages=parts, max_tokens=6, temperature=0
    )
    b = client.chat.completions.create(
        model=model_name, messages=plain, max_tokens=6, temperature=0
    )
    assert a.choices[0].message.content == b.choices[0].message.content


def test_unknown_fields_are_accepted_and_logged(
    client: Any, model_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="logprobe.server")
    r = client.chat.completions.create(
        model=model_name, messages=MSG, max_tokens=2, temperature=0, extra_body={"frobnicate": True}
    )
    assert r.choices[0].message.content
    assert any("frobnicate" in rec.getMessage() for rec in caplog.records)


def test_models_and_health(client: Any, http: Any, model_name: str) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [model_name]
    health = http.get("/health").json()
    assert health["status"] == "ok" and health["model"] == model_name
