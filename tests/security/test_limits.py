"""Limits that hold: bodies over the limit get 413 before they are read whole, slow bodies 408,
request bounds are OpenAI-shaped 400s, and a client that never reads its stream loses its slot."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from logprobe.errors import InvalidRequestError
from logprobe.server import create_app
from logprobe.server.header_timeout import header_timeout_protocol
from logprobe.server.limits import DEFAULT_BOUNDS, parse_size

from .sec_support import LiveServer, SocketServer

LIMIT = 64 * 1024
NO_EOS = {"0": -100, "2": -100}  # SmolLM2's end tokens: generations run to max_tokens


@pytest.fixture(scope="module")
def limited(engine: Any) -> Iterator[tuple[str, Any]]:
    app = create_app(engine, max_body_bytes=LIMIT, body_timeout_s=1.5, send_timeout_s=1.0)
    with LiveServer(app) as server:
        yield server.url, app


def raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = [
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    while length and len(body) < length[0]:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(data.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


def test_declared_oversize_body_is_413_without_being_sent(limited: tuple[str, Any]) -> None:
    url, _ = limited
    with raw(url) as s:
        s.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: 10000000\r\n\r\n"
        )
        status, data = read_status(s)  # answered although not one body byte was sent
    assert status == 413 and b"request_too_large" in data


def test_chunked_oversize_body_is_refused_once_past_the_limit(limited: tuple[str, Any]) -> None:
    url, _ = limited
    sent = 0
    with raw(url) as s:
        s.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        s.settimeout(0.05)
        piece = b"x" * 8192
        data = b""
        while sent < 50 * LIMIT:
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
                data += s.recv(65536)
                if data:
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        s.settimeout(10)
        if not data:
            data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 413"), data[:100]
    assert sent <= LIMIT + 8 * 8192  # refused close to the limit, not after the whole body


def test_a_body_that_trickles_in_gets_408(limited: tuple[str, Any]) -> None:
    url, _ = limited
    with raw(url) as s:
        s.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b'\r\nContent-Length: 100\r\n\r\n{"prompt":'
        )
        started = time.monotonic()
        status, data = read_status(s)
    assert status == 408 and b"request_timeout" in data
    assert 1.0 < time.monotonic() - started < 10


def test_bodies_under_the_limit_are_served(limited: tuple[str, Any]) -> None:
    url, _ = limited
    prompt = "word " * 2000  # ~10 kB of JSON
    r = httpx.post(url + "/tokenize", json={"prompt": prompt}, timeout=60)
    assert r.status_code == 200 and r.json()["count"] > 1000


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": ["a"] * (DEFAULT_BOUNDS.max_prompts + 1)}, "prompt", "array_above_max_length"),
        ({"prompt": ["a"] * 10, "n": 30}, "n", "integer_above_max_value"),
        ({"prompt": "a", "n": DEFAULT_BOUNDS.max_n + 1}, "n", "integer_above_max_value"),
        (
            {
                "prompt": "a",
                "logit_bias": {str(i): 1 for i in range(DEFAULT_BOUNDS.max_logit_bias + 1)},
            },
            "logit_bias",
            "array_above_max_length",
        ),
        (
            {"prompt": "a", "stop": ["x"] * (DEFAULT_BOUNDS.max_stop + 1)},
            "stop",
            "array_above_max_length",
        ),
        ({"prompt": "a", "stop": ["y" * 300]}, "stop[0]", "string_above_max_length"),
        ({"prompt": "a", "stop": "y" * 300}, "stop", "string_above_max_length"),
        ({"prompt": "a", "logprobs": 21}, "logprobs", "integer_above_max_value"),
    ],
)
def test_request_bounds_are_openai_shaped_400s(
    limited: tuple[str, Any], body: dict[str, Any], param: str, code: str
) -> None:
    url, app = limited
    r = httpx.post(url + "/v1/completions", json={"max_tokens": 1, **body}, timeout=60)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert app.state.serving.stats.in_flight == 0


def test_chat_bounds_too(limited: tuple[str, Any]) -> None:
    url, _ = limited
    r = httpx.post(
        url + "/v1/chat/completions",
        timeout=60,
        json={"messages": [{"role": "user", "content": "hi"}], "stop": ["z"] * 17},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "stop"


def test_sizes_parse() -> None:
    assert parse_size("4MB") == parse_size("4m") == 4 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024 and parse_size("2048") == 2048
    for bad in ("lots", "12", "-1"):
        with pytest.raises(InvalidRequestError):
            parse_size(bad)


def test_a_client_that_never_reads_its_stream_loses_its_slot(engine: Any) -> None:
    """A raw client with a tiny receive buffer asks for a stream that echoes a long prompt with
    20 alternatives per token (a frame of about a megabyte, more than the socket buffers hold)
    and never reads: once a write stays blocked for the send timeout (1 s here), the response is
    dropped, the generation cancelled and the slot freed. The server's send buffer is pinned
    small (16 KiB) so that a loaded test machine need not generate megabytes to fill it."""
    app = create_app(engine, send_timeout_s=1.0)
    with SocketServer(app, sndbuf=16384) as server:
        _never_read(server.url, app)


def _never_read(url: str, app: Any) -> None:
    stats = app.state.serving.stats
    cancelled0, events0 = stats.streams_cancelled, stats.stream_events
    body = json.dumps(
        {
            "prompt": "Once upon a time " * 50,
            "max_tokens": 300,
            "stream": True,
            "echo": True,
            "logprobs": 20,
            "temperature": 0,
            "logit_bias": NO_EOS,
        }
    ).encode()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.removeprefix("http://").split(":")
    s.connect((host, int(port)))
    try:
        s.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = b""
        while b"\r\n\r\n" not in head:  # the status line and headers, then never read again
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 200"), head
        deadline = time.monotonic() + 240
        while stats.in_flight:  # ...and then dropped, without the client reading a byte
            assert time.monotonic() < deadline, "the unread stream still holds its slot"
            time.sleep(0.05)
        assert stats.streams_cancelled == cancelled0 + 1
        assert stats.stream_events - events0 < 300  # cancelled well before max_tokens
    finally:
        s.close()
    r = httpx.post(url + "/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, timeout=60)
    assert r.status_code == 200


def test_half_open_connections_hold_no_slot(limited: tuple[str, Any]) -> None:
    """Slowloris: connections that never finish their headers take no generation slot, and the
    server keeps serving."""
    url, app = limited
    socks = [raw(url) for _ in range(30)]
    try:
        for s in socks:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        r = httpx.post(url + "/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, timeout=60)
        assert r.status_code == 200
        assert app.state.serving.stats.in_flight == 0
    finally:
        for s in socks:
            s.close()


def test_headers_that_never_finish_are_cut_off(engine: Any) -> None:
    """Slowloris: with the header timeout (1 s here), a connection that trickles its request
    head, or sends nothing, is closed; a request that completes its head in time is served,
    and so is a second request on the same keep-alive connection."""
    app = create_app(engine)
    with SocketServer(app, http=header_timeout_protocol(1.0)) as server:
        slow, silent = raw(server.url), raw(server.url)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for s in (slow, silent):
            s.settimeout(10)
            assert s.recv(100) == b""  # closed by the server
            s.close()
        assert time.monotonic() - started < 8
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/health").status_code == 200
            time.sleep(0.3)
            assert client.get("/health").status_code == 200
