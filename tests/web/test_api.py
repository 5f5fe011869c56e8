"""The viewer's HTTP API on a real uvicorn server: data, paging, errors, headers, mounting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from web_data import XSS, ViewerData
from web_support import LiveServer, free_port

from logprobe.store import Store
from logprobe.web import mount_ui

Viewer = tuple[str, Store, ViewerData]


def get(url: str, **params: object) -> httpx.Response:
    return httpx.get(url, params=params or None, timeout=30)


def test_pages_and_assets_carry_security_headers(viewer: Viewer) -> None:
    base, _, _ = viewer
    for path in ("", "response.html", "static/common.js", "static/style.css", "api/runs"):
        r = get(base + path)
        assert r.status_code == 200, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    assert get(base + "static/common.js").headers["content-type"].startswith("text/javascript")
    html = get(base).text
    assert "http://" not in html and "https://" not in html  # no CDN: everything local
    for name in ("nope.js", "..%2Fapp.py", "app.py"):
        assert get(base + "static/" + name).status_code == 404
    assert get(base + "admin.html").status_code == 404


def test_runs_and_responses(viewer: Viewer) -> None:
    base, _, _ = viewer
    runs = get(base + "api/runs").json()["runs"]
    assert {"baseline", "candidate", "calib", f"evil {XSS}"} <= {r["name"] for r in runs}
    assert [r["name"] for r in get(base + "api/runs", tag="quantized").json()["runs"]] == [
        "candidate"
    ]
    run = get(base + "api/run", name=f"evil {XSS}").json()["run"]
    assert run["tags"] == [XSS]  # raw in JSON: escaping is the page's job (textContent)
    page = get(base + "api/run/responses", name="calib", offset=10, limit=5).json()
    assert page["total"] == 60 and [r["prompt"] for r in page["responses"]] == [
        f"question {i}" for i in range(10, 15)
    ]


def test_response_analysis_and_token_pages(viewer: Viewer) -> None:
    base, _, data = viewer
    d = get(f"{base}api/responses/{data.story}").json()
    assert d["analysis"]["decision"] in ("publish", "review", "reject")
    low = [
        (s["token_start"], s["token_end"], s["text"].strip()) for s in d["analysis"]["low_spans"]
    ]
    assert (22, 24, "about 19") in low
    assert d["response"]["n_tokens"] == 27
    t = get(f"{base}api/responses/{data.story}/tokens", offset=20, limit=3).json()
    assert (t["total"], t["offset"]) == (27, 20)
    assert [x["index"] for x in t["tokens"]] == [20, 21, 22]
    assert [x["token"] for x in t["tokens"]] == [" Buzz", " Aldrin", " about"]
    assert t["tokens"][2]["alternatives"][0]["token"] == " some"


@pytest.mark.parametrize(
    "path, params, status, message",
    [
        ("api/run", {"name": "nope"}, 404, "no run named 'nope'"),
        ("api/responses/424242", {}, 404, "no response with id 424242"),
        ("api/responses/1/tokens", {"part": "both"}, 400, "part must be"),
        ("api/compare", {"a": "baseline", "b": "ghost"}, 404, "no run named 'ghost'"),
        ("api/run/calibration", {"name": "baseline"}, 400, "no predictions.jsonl artifact"),
        ("api/run/calibration", {"name": "calib", "confidence": "max"}, 400, "confidence must be"),
        ("api/run/calibration", {"name": "calib", "n_bins": 0}, 400, "n_bins must be"),
    ],
)
def test_errors_are_json_with_a_clear_message(
    viewer: Viewer, path: str, params: dict[str, object], status: int, message: str
) -> None:
    base, _, _ = viewer
    r = get(base + path, **params)
    assert r.status_code == status
    assert message in r.json()["error"]["message"]


def test_playground_without_an_engine_is_a_400(viewer: Viewer) -> None:
    base, _, _ = viewer
    csrf = get(base + "api/session").json()["csrf"]
    r = httpx.post(
        base + "api/playground/generate",
        json={"prompt": "hi"},
        headers={"X-CSRF-Token": csrf},
        timeout=30,
    )
    assert r.status_code == 400 and "started without an engine" in r.json()["error"]["message"]


def test_token_page_limits_are_validated(viewer: Viewer) -> None:
    base, _, data = viewer
    assert get(f"{base}api/responses/{data.story}/tokens", limit=100_000).status_code == 400
    assert get(f"{base}api/responses/{data.story}/tokens", offset=-1).status_code == 400


def test_compare_and_token_alignment(viewer: Viewer) -> None:
    base, _, data = viewer
    c = get(base + "api/compare", a="baseline", b="candidate").json()
    assert [r["status"] for r in c["rows"]] == ["regressed", "regressed", "improved"]
    assert c["prompts_only_a"] == ["Tell me about the Apollo 11 landing."]
    pairs = get(base + "api/compare/tokens", a=data.paris_a, b=data.paris_b).json()["pairs"]
    assert [p["status"] for p in pairs] == ["same", "same"]
    assert pairs[0]["delta"] == pytest.approx(-1.0986, abs=1e-3)  # ln(0.31 / 0.93)


def test_calibration_from_artifact_and_from_labelled_responses(viewer: Viewer) -> None:
    base, _, _ = viewer
    art = get(base + "api/run/calibration", name="calib", n_bins=5).json()
    assert (art["source"], art["n"], art["reliability"]["n_bins"]) == ("artifact", 60, 5)
    assert len(art["risk_coverage"]["coverage"]) == len(art["risk_coverage"]["risk"])
    resp = get(
        base + "api/run/calibration", name="calib", source="responses", confidence="sequence"
    ).json()
    assert (resp["source"], resp["confidence"], resp["n"]) == ("responses", "sequence", 60)
    assert 0 <= resp["reliability"]["ece"] <= 1


def test_viewer_mounts_under_ui_of_another_app(viewer_store: tuple[Store, ViewerData]) -> None:
    store, _ = viewer_store
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    mount_ui(app, store)
    with LiveServer(app) as server:
        assert httpx.get(f"{server.url}/health").json() == {"ok": True}
        assert httpx.get(f"{server.url}/ui/api/run", params={"name": "calib"}).status_code == 200
        r = httpx.get(f"{server.url}/ui", follow_redirects=True)
        assert r.status_code == 200 and "<title>logprobe" in r.text


def test_logprobe_ui_command_serves_the_viewer(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ui.db'}"
    with Store.open(db) as s:
        s.create_run(f"r {XSS}")
    port = free_port()
    exe = Path(sys.executable).with_name("logprobe")
    proc = subprocess.Popen(
        [str(exe), "ui", "--port", str(port), "--db", db, "--no-playground"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/ui/api/runs", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "logprobe ui did not start"
                time.sleep(0.3)
        assert [x["name"] for x in r.json()["runs"]] == [f"r {XSS}"]
        root = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True)
        assert root.url.path == "/ui/" and root.status_code == 200
        info = httpx.get(f"http://127.0.0.1:{port}/ui/api/playground").json()
        assert info["available"] is False
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"logprobe viewer on http://127.0.0.1:{port}/ui/" in err


def test_ui_command_rejects_bad_port_and_unreachable_db(capsys: pytest.CaptureFixture[str]) -> None:
    from logprobe.cli.main import main

    assert main(["ui", "--port", "70000"]) == 2
    assert capsys.readouterr().err == "error: --port must be 1-65535, got 70000\n"
    assert main(["ui", "--db", "postgresql://x:pw@127.0.0.1:9/db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open store") and "pw@" not in err


def test_run_names_with_slashes_and_queries_work(viewer: Viewer) -> None:
    base, store, _ = viewer
    store.create_run("team/a?b=c#d", exist_ok=True)
    r = get(base + "api/run", name="team/a?b=c#d")
    assert r.status_code == 200 and r.json()["run"]["name"] == "team/a?b=c#d"
    direct = httpx.get(f"{base}api/run?name={quote('team/a?b=c#d', safe='')}", timeout=30)
    assert direct.json()["run"]["n_responses"] == 0
    assert (
        json.loads(get(base + "api/runs", search="team/").text)["runs"][0]["name"] == "team/a?b=c#d"
    )
