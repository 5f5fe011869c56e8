"""One key for everything: every route of a keyed server but /health refuses requests without
the key (no key, wrong key), and answers with it (Bearer header, or the viewer's login cookie);
the playground's POST needs the session's CSRF token and shares /v1's admission queue."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from logprobe.server import KeyAuth, create_app
from logprobe.server.auth import SESSION_COOKIE
from logprobe.store import Store

from .sec_support import EXE, KEY, LiveServer, free_port

OPEN = {"/health", "/ui/login", "/ui/static/style.css"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path_factory.mktemp('auth') / 'auth.db'}")
    s.create_run("secret-run")
    yield s
    s.close()


@pytest.fixture(scope="module")
def keyed(engine: Any, store: Store) -> Iterator[tuple[str, Any]]:
    app = create_app(engine, api_key=KEY, store=store, max_queue=1)
    with LiveServer(app) as server:
        yield server.url, app


def concrete(path: str) -> str:
    return (
        path.replace("{response_id}", "1").replace("{page}", "index").replace("{name}", "common.js")
    )


def _flatten(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for r in routes:
        inner = getattr(r, "original_router", None)  # FastAPI's included router
        if inner is not None:
            yield from _flatten(inner.routes, prefix + r.include_context.prefix)
        else:
            yield prefix + r.path, r


def every_route(app: Any) -> list[tuple[str, str]]:
    routes = []
    for path, r in _flatten(app.routes):
        for method in sorted(getattr(r, "methods", None) or {"GET"}):
            if method != "HEAD":
                routes.append((method, concrete(path)))
    return routes


def test_every_route_but_health_refuses_no_key_and_wrong_key(keyed: tuple[str, Any]) -> None:
    url, app = keyed
    routes = every_route(app)
    assert len(routes) >= 25 and ("POST", "/ui/api/playground/generate") in routes
    checked = 0
    for method, path in routes:
        if path in OPEN:
            continue
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": KEY},
            {"Cookie": f"{SESSION_COOKIE}=123.abc"},
        ):
            r = httpx.request(method, url + path, headers=headers, json={}, timeout=30)
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert r.json()["error"]["code"] == "invalid_api_key"
            assert r.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 100
    assert httpx.get(url + "/health").status_code == 200


def test_every_route_answers_with_the_key(keyed: tuple[str, Any]) -> None:
    url, app = keyed
    for method, path in every_route(app):
        if path in OPEN:
            continue
        r = httpx.request(
            method, url + path, json={}, timeout=60, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert r.status_code not in (401, 403), (method, path, r.text[:200])


def test_nothing_secret_leaks_through_open_paths(keyed: tuple[str, Any]) -> None:
    url, _ = keyed
    for path in OPEN:
        r = httpx.get(url + path)
        assert r.status_code == 200 and "secret-run" not in r.text


def test_login_sets_a_strict_httponly_cookie_valid_only_for_the_viewer(
    keyed: tuple[str, Any],
) -> None:
    url, _ = keyed
    page = httpx.get(url + "/ui/runs.html", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fruns.html"
    wrong = httpx.post(url + "/ui/login", data={"key": "nope", "next": "/ui/"})
    assert wrong.status_code == 401 and "wrong key" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    ok = httpx.post(url + "/ui/login", data={"key": KEY, "next": "/ui/run.html?name=x"})
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/run.html?name=x"
    cookie = ok.headers["set-cookie"]
    for attr in ("HttpOnly", "SameSite=strict", "Path=/ui", "Max-Age="):
        assert attr.lower() in cookie.lower(), cookie
    value = ok.cookies[SESSION_COOKIE]
    jar = {SESSION_COOKIE: value}
    assert httpx.get(url + "/ui/api/runs", cookies=jar).json()["runs"][0]["name"] == "secret-run"
    assert httpx.get(url + "/ui/", cookies=jar).status_code == 200
    # the cookie is the viewer's: the API still wants the Bearer key
    assert httpx.get(url + "/v1/models", cookies=jar).status_code == 401
    assert httpx.post(url + "/tokenize", cookies=jar, json={"prompt": "x"}).status_code == 401
    expires, mac = value.split(".")
    flipped = mac[:-1] + ("1" if mac[-1] == "0" else "0")  # a different last hex digit
    for forged in (f"{int(expires) + 10**6}.{mac}", f"{expires}.{flipped}", "1.x", ""):
        assert httpx.get(url + "/ui/api/runs", cookies={SESSION_COOKIE: forged}).status_code == 401


def test_login_never_redirects_off_the_viewer(keyed: tuple[str, Any]) -> None:
    url, _ = keyed
    for target in ("https://evil.example/", "//evil.example/ui/", "/v1/models", "/ui/\\evil"):
        r = httpx.post(url + "/ui/login", data={"key": KEY, "next": target})
        assert r.headers["location"] == "/ui/", target
    page = httpx.get(url + "/ui/login", params={"next": '/ui/"><script>alert(1)</script>'})
    assert "<script>alert" not in page.text and "&quot;&gt;&lt;script&gt;" in page.text


def test_session_cookies_expire() -> None:
    auth = KeyAuth(KEY, ttl_s=60)
    cookie = auth.new_session(now=1000)
    assert auth.session_ok(cookie, now=1059) and not auth.session_ok(cookie, now=1061)
    assert not KeyAuth("other-key").session_ok(cookie, now=1000)  # a new key revokes all


def _login(url: str) -> dict[str, str]:
    r = httpx.post(url + "/ui/login", data={"key": KEY})
    return {SESSION_COOKIE: r.cookies[SESSION_COOKIE]}


def _generate(url: str, **kw: Any) -> httpx.Response:
    body = {"prompt": "The capital of France is", "max_tokens": 2}
    return httpx.post(url + "/ui/api/playground/generate", json=body, timeout=120, **kw)


def test_playground_post_needs_the_sessions_csrf_token(keyed: tuple[str, Any]) -> None:
    url, _ = keyed
    jar = _login(url)
    token = httpx.get(url + "/ui/api/session", cookies=jar).json()["csrf"]
    ok = _generate(url, cookies=jar, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and "event: done" in ok.text
    no_token = _generate(url, cookies=jar)
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf_failed"
    other = httpx.get(url + "/ui/api/session", cookies=_login(url)).json()["csrf"]
    if other != token:  # two logins in the same second share a cookie (and token)
        assert _generate(url, cookies=jar, headers={"X-CSRF-Token": other}).status_code == 403
    cross = _generate(
        url, cookies=jar, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    # an API client with the Bearer key needs no CSRF token (browsers never add that header)
    bearer = _generate(url, headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200
    # the old GET stream is gone: GET has no side effects
    gone = httpx.get(
        url + "/ui/api/playground/stream",
        params={"prompt": "x"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert gone.status_code in (404, 405)


def test_playground_shares_the_v1_admission_queue(keyed: tuple[str, Any]) -> None:
    """max_queue=1: while a /v1 stream holds the only slot, the playground gets 429."""
    url, app = keyed
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {
        "prompt": "Count: 1, 2, 3,",
        "max_tokens": 1500,
        "stream": True,
        "temperature": 0,
        "logit_bias": {"0": -100, "2": -100},
    }
    with httpx.stream(
        "POST", url + "/v1/completions", json=body, headers=auth, timeout=120
    ) as held:
        assert held.status_code == 200
        lines = held.iter_lines()  # kept: a dropped iterator closes the response
        next(lines)
        assert app.state.serving.stats.in_flight == 1
        busy = _generate(url, headers=auth)
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "rate_limit_exceeded"
    deadline = time.monotonic() + 30
    while app.state.serving.stats.in_flight:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _generate(url, headers=auth).status_code == 200


def test_logprobe_ui_with_a_key_and_the_open_host_warning(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ui.db'}"
    with Store.open(db) as s:
        s.create_run("private")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(EXE),
            "ui",
            "--port",
            str(port),
            "--db",
            db,
            "--no-playground",
            "--api-key",
            KEY,
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(base + "/ui/api/runs", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        assert r.status_code == 401
        assert httpx.get(base + "/").status_code == 401
        assert httpx.get(base + "/", headers={"Accept": "text/html"}).status_code == 303
        jar = _login(base)
        assert httpx.get(base + "/ui/api/runs", cookies=jar).json()["runs"][0]["name"] == "private"
        assert (
            httpx.get(base + "/ui/api/runs", headers={"Authorization": f"Bearer {KEY}"}).status_code
            == 200
        )
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "WARNING" not in err
    out = subprocess.run(
        [str(EXE), "ui", "--port", "70000", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2  # bad port: refused before listening, no warning needed


def test_open_host_without_key_warns(capsys: pytest.CaptureFixture[str]) -> None:
    from logprobe.cli.serve import warn_if_open

    warn_if_open("0.0.0.0", None)
    err = capsys.readouterr().err
    assert re.search(r"WARNING: the server listens on 0\.0\.0\.0 WITHOUT an API key", err)
    warn_if_open("0.0.0.0", "k")
    warn_if_open("127.0.0.1", None)
    assert capsys.readouterr().err == ""
