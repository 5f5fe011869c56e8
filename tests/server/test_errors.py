"""Every bad request gets OpenAI's error shape, the right status and ``param``; never 422/500."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from .conftest import boot

MSG = [{"role": "user", "content": "Hi"}]


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity (Python's json accepts them by default)."""

    def bad(token: str) -> None:
        raise ValueError(f"non-JSON constant {token}")

    return json.loads(text, parse_constant=bad)


def assert_error(resp: Any, status: int, param: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = strict_json(resp.text)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == param
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"top_logprobs": 3}, "top_logprobs"),  # without logprobs: true
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"stop": [""]}, "stop"),
        ({"logit_bias": {"99999999": 5}}, "logit_bias"),
        ({"logit_bias": {"12": 500}}, "logit_bias"),
        ({"presence_penalty": 3}, "presence_penalty"),
    ],
)
def test_chat_bad_values(client: Any, model_name: str, kw: dict[str, Any], param: str) -> None:
    args = {"max_tokens": 2, **kw}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model_name, messages=MSG, **args)
    assert info.value.status_code == 400
    assert info.value.param == param
    assert info.value.body["type"] == "invalid_request_error"


def test_out_of_range_codes(client: Any, model_name: str) -> None:
    with pytest.raises(openai.BadRequestError) as low:
        client.chat.completions.create(
            model=model_name, messages=MSG, logprobs=True, top_logprobs=-1
        )
    assert low.value.code == "integer_below_min_value"
    with pytest.raises(openai.BadRequestError) as high:
        client.chat.completions.create(
            model=model_name, messages=MSG, logprobs=True, top_logprobs=21
        )
    assert high.value.code == "integer_above_max_value"


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"logprobs": 21}, "logprobs"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [[]]}, "prompt[0]"),
        ({"prompt": [[1, 10_000_000]]}, "prompt"),
        ({"suffix": "x"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"prompt_logprobs": 2, "stream": True}, "prompt_logprobs"),
    ],
)
def test_completion_bad_values(
    client: Any, model_name: str, kw: dict[str, Any], param: str
) -> None:
    args = {"model": model_name, "prompt": "Hi", "max_tokens": 2}
    args.update(kw)
    extra = {k: args.pop(k) for k in ("prompt_logprobs",) if k in args}
    with pytest.raises(openai.BadRequestError) as info:
        result = client.completions.create(**args, extra_body=extra)
        list(result) if args.get("stream") else None
    assert info.value.param == param


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"include": ["reasoning.encrypted_content"]}, "include"),
        ({"top_logprobs": 50}, "top_logprobs"),
        ({"temperature": -1}, "temperature"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ],
)
def test_responses_bad_values(client: Any, model_name: str, kw: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=model_name, input="Hi", max_output_tokens=2, **kw)
    assert info.value.param == param


def test_unknown_model_is_404(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert info.value.param == "model" and info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="davinci-002", prompt="Hi")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input="Hi")


def test_model_file_name_is_accepted(client: Any, engine: Any) -> None:
    from pathlib import Path

    r = client.chat.completions.create(
        model=Path(engine.model_path).name, messages=MSG, max_tokens=1
    )
    assert r.model == engine.model_name


def test_context_overflow(client: Any, model_name: str, engine: Any) -> None:
    long = "hello " * (engine.n_ctx_seq + 10)
    with pytest.raises(openai.BadRequestError) as chat:
        client.chat.completions.create(
            model=model_name, max_tokens=4, messages=[{"role": "user", "content": long}]
        )
    assert chat.value.code == "context_length_exceeded" and chat.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as chat_default:  # no max_tokens: still a 400
        client.chat.completions.create(
            model=model_name, messages=[{"role": "user", "content": long}]
        )
    assert chat_default.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as comp:
        client.completions.create(model=model_name, prompt="Hi", max_tokens=engine.n_ctx_seq)
    assert comp.value.code == "context_length_exceeded" and comp.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError) as stream:
        list(
            client.chat.completions.create(
                model=model_name,
                max_tokens=4,
                stream=True,
                messages=[{"role": "user", "content": long}],
            )
        )
    assert stream.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as resp:
        client.responses.create(model=model_name, input=long, max_output_tokens=4)
    assert resp.value.param == "input"


# ---------------------------------------------------------------- raw HTTP (httpx)


def test_bad_json(http: Any) -> None:
    r = http.post(
        "/v1/chat/completions",
        content=b'{"messages": [',
        headers={"content-type": "application/json"},
    )
    err = assert_error(r, 400, None)
    assert "JSON" in err["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MSG, "temperature": "hot"}, "temperature"),
        ({"messages": MSG, "n": True}, "n"),
        ({"messages": MSG, "n": 2.5}, "n"),
        ({"messages": MSG, "max_tokens": "10"}, "max_tokens"),
        ({"messages": MSG, "logprobs": "yes"}, "logprobs"),
        ({"messages": MSG, "stop": [1, 2]}, "stop[0]"),
        ({"messages": MSG, "stop": 5}, "stop"),
        ({"messages": MSG, "stop": ["ok", 2]}, "stop[1]"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
        ({}, "messages"),
        (
            {"messages": MSG, "stream_options": {"include_usage": "yes"}},
            "stream_options.include_usage",
        ),
        ({"messages": MSG, "logit_bias": {"5": "up"}}, "logit_bias.5"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_wrong_types_are_400_with_field_path(http: Any, body: dict[str, Any], param: str) -> None:
    assert_error(http.post("/v1/chat/completions", json=body), 400, param)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"prompt": [[1, "a"]]}, "prompt[0][1]"),
        ("/v1/completions", {"prompt": None}, "prompt"),
        ("/v1/completions", {"prompt": "hi", "echo": 1}, "echo"),
        ("/v1/completions", {"prompt": "hi", "logprobs": True}, "logprobs"),
        ("/v1/responses", {"input": 7}, "input"),
        ("/v1/responses", {"input": "hi", "include": "message.output_text.logprobs"}, "include"),
    ],
)
def test_wrong_types_other_endpoints(
    http: Any, path: str, body: dict[str, Any], param: str
) -> None:
    assert_error(http.post(path, json=body), 400, param)


def test_body_that_is_not_an_object(http: Any) -> None:
    assert_error(http.post("/v1/completions", json=[1, 2]), 400, None)


def test_unknown_route_and_method(http: Any) -> None:
    assert_error(http.get("/v1/nothing"), 404, None)
    assert_error(http.get("/v1/chat/completions"), 405, None)


def test_processed_truncated_distribution_is_valid_json(http: Any, model_name: str) -> None:
    """top_p leaves most tokens impossible (-inf before clamping): the JSON stays strict."""
    body = {
        "model": model_name,
        "messages": MSG,
        "max_tokens": 3,
        "temperature": 0.7,
        "top_p": 0.01,
        "seed": 1,
        "logprobs": True,
        "top_logprobs": 20,
        "logprobs_mode": "processed",
        "prompt_logprobs": 20,
    }
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    data = strict_json(r.text)  # raises on NaN / Infinity
    for entry in data["choices"][0]["logprobs"]["content"]:
        assert -9999.0 <= entry["logprob"] <= 0.0
        assert all(-9999.0 <= a["logprob"] <= 0.0 for a in entry["top_logprobs"])
    assert all(
        -9999.0 <= v["logprob"] <= 0.0 for pos in data["prompt_logprobs"][1:] for v in pos.values()
    )


def test_api_key_required_when_set(engine: Any, model_name: str) -> None:
    live = boot(engine, api_key="sekret")
    try:
        with pytest.raises(openai.AuthenticationError) as missing_or_wrong:
            live.client(api_key="wrong").chat.completions.create(model=model_name, messages=MSG)
        assert missing_or_wrong.value.code == "invalid_api_key"
        import httpx

        r = httpx.post(f"{live.base_url}/chat/completions", json={"messages": MSG})
        assert_error(r, 401, None)
        bad_json = httpx.post(
            f"{live.base_url}/chat/completions",
            content=b"{",
            headers={"Authorization": "Bearer wrong"},
        )
        assert_error(bad_json, 401, None)  # the key is checked before the body is read
        ok = live.client(api_key="sekret").chat.completions.create(
            model=model_name, messages=MSG, max_tokens=1
        )
        assert ok.choices[0].message.content is not None
        assert httpx.get(f"{live.url}/health").status_code == 200  # health stays open
    finally:
        live.stop()
