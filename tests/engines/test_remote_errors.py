"""The remote engine's retries and error mapping, against the scripted OpenAI stand-in over
real HTTP on loopback (:mod:`.remote_fakes`): 429 and Retry-After, 5xx backoff, timeouts, and
every common error-body shape mapped to one logprobe error with the server's message and param.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from logprobe import ContextOverflowError, InvalidRequestError, ProviderError
from logprobe.engines import GenerationParams
from logprobe.engines._http import retry_after
from logprobe.engines.remote import RemoteEngine

from .remote_fakes import MSGS, Reply, Scripted, chat_ok, engine_for, error_body

# ── retries and errors ───────────────────────────────────────────────────────────────────────


def test_429_honours_retry_after(fake: Scripted) -> None:
    fake.replies = [
        Reply(
            429, error_body("Rate limit", type_="rate_limit_error"), headers={"Retry-After": "0.4"}
        ),
        Reply(body=chat_ok([("Hi", -0.1)])),
    ]
    t0 = time.monotonic()
    with engine_for(fake) as eng:
        assert eng.chat(MSGS).text == "Hi"
    assert time.monotonic() - t0 >= 0.4 and len(fake.requests) == 2


def test_5xx_retried_with_backoff_then_reported_with_the_server_message(fake: Scripted) -> None:
    fake.replies = [
        Reply(503, error_body("overloaded", type_="server_error")),
        Reply(503, error_body("overloaded", type_="server_error")),
        Reply(body=chat_ok([("Hi", -0.1)])),
    ]
    with engine_for(fake, max_retries=2) as eng:
        assert eng.chat(MSGS).text == "Hi"
    assert len(fake.requests) == 3
    fake.requests.clear()
    fake.replies = [Reply(502, b"Bad Gateway")]
    with (
        engine_for(fake, max_retries=1) as eng,
        pytest.raises(ProviderError, match="HTTP 502 after 2 attempts: Bad Gateway"),
    ):
        eng.chat(MSGS)
    assert len(fake.requests) == 2


def test_retry_after_beyond_the_limit_is_reported_not_waited(fake: Scripted) -> None:
    fake.replies = [Reply(429, error_body("slow down"), headers={"Retry-After": "3600"})]
    t0 = time.monotonic()
    with engine_for(fake) as eng, pytest.raises(ProviderError, match="retry after 3600 s"):
        eng.chat(MSGS)
    assert time.monotonic() - t0 < 5


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    resp = httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    assert 25 <= (retry_after(resp) or 0) <= 31
    assert retry_after(httpx.Response(429, headers={"retry-after-ms": "250"})) == 0.25
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None


def test_timeouts_are_retried_then_reported(fake: Scripted) -> None:
    fake.replies = [Reply(body=chat_ok([("Hi", -0.1)]), delay=1.0)]
    with (
        engine_for(fake, timeout=0.2, max_retries=1) as eng,
        pytest.raises(ProviderError, match="timed out"),
    ):
        eng.chat(MSGS)
    assert len(fake.requests) == 2


def test_400_is_an_invalid_request_with_the_server_param(fake: Scripted) -> None:
    fake.replies = [
        Reply(
            400,
            error_body(
                "Invalid 'top_logprobs': integer above maximum value.", param="top_logprobs"
            ),
        )
    ]
    with (
        engine_for(fake) as eng,
        pytest.raises(InvalidRequestError, match="integer above maximum") as info,
    ):
        eng.chat(MSGS, GenerationParams.make(top_logprobs=3))
    assert info.value.param == "top_logprobs" and len(fake.requests) == 1


@pytest.mark.parametrize(
    ("reply", "error", "pattern"),
    [
        (Reply(401, error_body("Incorrect API key provided")), ProviderError, "authentication"),
        (
            Reply(400, error_body("This model's maximum context length is 8 tokens")),
            ContextOverflowError,
            "maximum context length",
        ),
        (
            Reply(422, {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}),
            InvalidRequestError,
            "messages: field required",
        ),
        (
            Reply(404, {"object": "error", "message": "model m not found", "code": 404}),
            InvalidRequestError,
            "model m not found",
        ),
        (Reply(200, b"<html>not json</html>"), ProviderError, "not JSON"),
    ],
)
def test_error_bodies_of_every_common_shape(
    fake: Scripted, reply: Reply, error: type, pattern: str
) -> None:
    fake.replies = [reply]
    with engine_for(fake) as eng, pytest.raises(error, match=pattern):
        eng.chat(MSGS)


def test_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        RemoteEngine(f"http://127.0.0.1:{port}", "m", max_retries=1, backoff=0.01) as eng,
        pytest.raises(ProviderError, match="cannot reach"),
    ):
        eng.chat(MSGS)
