"""/v1/responses with output-text logprobs, plain and streamed, through the openai client."""

from __future__ import annotations

from typing import Any

import pytest

INCLUDE = ["message.output_text.logprobs"]


def test_response_with_logprobs(client: Any, model_name: str) -> None:
    r = client.responses.create(
        model=model_name,
        input="Name three colours.",
        include=INCLUDE,
        top_logprobs=3,
        max_output_tokens=10,
        temperature=0,
    )
    assert r.object == "response" and r.status in ("completed", "incomplete")
    part = r.output[0].content[0]
    assert part.type == "output_text" and part.text == r.output_text
    assert len(part.logprobs) == r.usage.output_tokens > 0
    assert all(len(e.top_logprobs) == 3 for e in part.logprobs)
    assert bytes(b for e in part.logprobs for b in e.bytes).decode() == r.output_text
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_response_matches_chat(client: Any, model_name: str) -> None:
    r = client.responses.create(
        model=model_name,
        input="Name three colours.",
        instructions="Be brief.",
        include=INCLUDE,
        max_output_tokens=8,
        temperature=0,
    )
    chat = client.chat.completions.create(
        model=model_name,
        max_tokens=8,
        temperature=0,
        logprobs=True,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name three colours."},
        ],
    )
    assert r.output_text == chat.choices[0].message.content
    assert [e.logprob for e in r.output[0].content[0].logprobs] == pytest.approx(
        [e.logprob for e in chat.choices[0].logprobs.content], abs=1e-5
    )


def test_incomplete_when_max_output_tokens_hit(client: Any, model_name: str) -> None:
    r = client.responses.create(
        model=model_name, input="Count to one hundred.", max_output_tokens=3, temperature=0
    )
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].content[0].logprobs == []  # not asked for


def test_input_items(client: Any, model_name: str) -> None:
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Name three colours."}]}]
    a = client.responses.create(model=model_name, input=items, max_output_tokens=5, temperature=0)
    b = client.responses.create(
        model=model_name, input="Name three colours.", max_output_tokens=5, temperature=0
    )
    assert a.output_text == b.output_text


def test_streaming_events_carry_logprobs(client: Any, model_name: str) -> None:
    kw = dict(
        model=model_name,
        input="Say hello.",
        include=INCLUDE,
        top_logprobs=2,
        max_output_tokens=40,
        temperature=0,
    )
    whole = client.responses.create(**kw)
    events = list(client.responses.create(stream=True, **kw))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    done = next(e for e in events if e.type == "response.output_text.done")
    assert "".join(d.delta for d in deltas) == done.text == whole.output_text
    streamed = [lp for d in deltas for lp in d.logprobs]
    assert [lp.token for lp in streamed] == [e.token for e in whole.output[0].content[0].logprobs]
    assert [lp.logprob for lp in streamed] == pytest.approx(
        [e.logprob for e in whole.output[0].content[0].logprobs], abs=1e-5
    )
    assert [lp.logprob for lp in done.logprobs] == pytest.approx([lp.logprob for lp in streamed])
    assert all(len(lp.top_logprobs) == 2 for lp in streamed)
    final = events[-1].response
    assert final.output_text == whole.output_text
    assert final.output[0].content[0].logprobs[0].bytes is not None


def test_stream_helper_reads_completed_response(client: Any, model_name: str) -> None:
    with client.responses.stream(
        model=model_name, input="Say hi.", include=INCLUDE, max_output_tokens=60, temperature=0
    ) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == text
