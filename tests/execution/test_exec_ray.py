"""The Ray executor on a real local Ray runtime (``ray.init`` with 2 CPUs): input order, row
errors, actors killed mid-job (nothing lost, nothing duplicated), and the dataset commands giving
byte-identical output to the local executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from exec_helpers import REVIEWS, SlowRow, mc_jsonl, reviews_jsonl

from logprobe.cli.main import main
from logprobe.execution import RayExecutor, RayOptions
from logprobe.tasks import classify_dataset, text_rows

LABELS = ["positive", "negative"]


def _run(
    executor: RayExecutor,
    fn: Any,
    items: list[int],
    kill_after: int | None = None,
    kill: Any = None,
) -> list[Any]:
    out = []
    for i, outcome in enumerate(executor.map(fn, items)):
        out.append(outcome)
        if kill_after is not None and i == kill_after:
            kill(executor)
    return out


def test_rows_come_back_in_input_order_with_their_errors(ray_local: Any) -> None:
    with RayExecutor(None, RayOptions(actors=2, chunk_size=3, concurrency=2)) as ex:
        outs = _run(ex, SlowRow(0.002, bad=13), list(range(60)))
        assert ex.stats.rows == 60 and ex.stats.chunks == 20
        assert ex.describe()["actors"] == 2
    assert [o.item for o in outs] == list(range(60))
    assert [o.item for o in outs if o.error] == [0, 13, 26, 39, 52]
    assert all(
        o.result == {"n": o.item, "square": o.item**2, "pid": o.result["pid"]}
        for o in outs
        if o.error is None
    )
    assert len({o.result["pid"] for o in outs if o.result}) == 2  # both actors worked


def _os_kill_first_actor(ex: RayExecutor) -> None:
    os.kill(ex.actor_infos()[0]["pid"], signal.SIGKILL)


def _ray_kill_first_actor(ex: RayExecutor) -> None:
    import ray

    ray.kill(ex.actors[0], no_restart=True)


@pytest.mark.slow
def test_a_killed_actor_process_is_restarted_and_no_row_is_lost(ray_local: Any) -> None:
    items = list(range(48))
    with RayExecutor(None, RayOptions(actors=2, chunk_size=4)) as ex:
        before = {i["pid"] for i in ex.actor_infos()}
        outs = _run(ex, SlowRow(0.05), items, kill_after=6, kill=_os_kill_first_actor)
        after = {i["pid"] for i in ex.actor_infos()}
    assert [o.item for o in outs] == items and all(o.error is None for o in outs)
    assert [o.result["square"] for o in outs] == [n * n for n in items]
    assert len(after - before) == 1  # Ray restarted the killed actor (max_restarts)
    assert {o.result["pid"] for o in outs} & (after - before)  # ...and it ran retried rows


@pytest.mark.slow
def test_an_actor_gone_for_good_is_replaced_and_its_rows_resent(ray_local: Any) -> None:
    items = list(range(40))
    with RayExecutor(None, RayOptions(actors=2, chunk_size=4)) as ex:
        outs = _run(ex, SlowRow(0.05), items, kill_after=5, kill=_ray_kill_first_actor)
        assert ex.stats.replaced_actors == 1 and ex.stats.resent_chunks >= 1
        assert ex.stats.rows == 40
    assert [o.item for o in outs] == items and all(o.error is None for o in outs)


def _classify(
    tmp_path: Path, data: Path, name: str, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], str]:
    out = tmp_path / f"{name}.jsonl"
    assert (
        main(
            [
                "classify",
                "--dataset",
                str(data),
                "-l",
                ",".join(LABELS),
                "--out",
                str(out),
                "--json",
                "--uncalibrated",
                *extra,
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    return d, out.read_text(encoding="utf-8")


FIGURES = (
    "rows",
    "written",
    "skipped",
    "labelled",
    "correct",
    "accuracy",
    "abstained",
    "skipped_rows",
)


@pytest.mark.slow
def test_classify_dataset_on_ray_equals_the_local_run(
    ray_local: Any, ray_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = reviews_jsonl(tmp_path / "reviews.jsonl", 12)
    local, local_out = _classify(tmp_path, data, "local", [], capsys)
    on_ray, ray_out = _classify(tmp_path, data, "ray", ["--ray", "--actors", "2"], capsys)
    assert ray_out == local_out  # byte-identical predictions, in input order
    assert {k: on_ray[k] for k in FIGURES} == {k: local[k] for k in FIGURES}
    assert local["written"] == 12 and local["skipped"] == 1
    assert on_ray["execution"]["backend"] == "ray" and on_ray["execution"]["actors"] == 2


@pytest.mark.slow
def test_eval_mc_and_score_on_ray_equal_the_local_run(
    ray_local: Any, ray_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = mc_jsonl(tmp_path / "mc.jsonl")
    runs = {}
    for name, extra in (("local", []), ("ray", ["--ray", "--actors", "2"])):
        out = tmp_path / f"mc-{name}.jsonl"
        assert main(["eval", "mc", str(items), "--out", str(out), "--json", *extra]) == 0
        runs[name] = (json.loads(capsys.readouterr().out), out.read_text(encoding="utf-8"))
    assert runs["ray"] == runs["local"]
    assert runs["local"][0]["n"] == 6
    texts = tmp_path / "texts.jsonl"
    texts.write_text(
        "".join(json.dumps({"text": f"{t} ({i})"}) + "\n" for i, (t, _) in enumerate(REVIEWS)),
        encoding="utf-8",
    )
    scored = {}
    for name, extra in (("local", []), ("ray", ["--ray", "--actors", "2"])):
        out = tmp_path / f"s-{name}.jsonl"
        assert main(["score", "--dataset", str(texts), "--out", str(out), "--json", *extra]) == 0
        d = json.loads(capsys.readouterr().out)
        scored[name] = (
            {k: v for k, v in d.items() if k not in ("out", "execution")},
            out.read_text(encoding="utf-8"),
        )
    assert scored["ray"] == scored["local"]


@pytest.mark.slow
def test_killing_an_engine_actor_mid_classify_loses_and_duplicates_nothing(
    ray_local: Any, engine: Any, tmp_path: Path
) -> None:
    data = reviews_jsonl(tmp_path / "reviews.jsonl", 16)
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    classify_dataset(engine, text_rows(data, labels=LABELS), LABELS, local_out, workers=2)
    with RayExecutor(_default_spec(), RayOptions(actors=2, chunk_size=2)) as ex:
        pids = [i["pid"] for i in ex.actor_infos()]
        done: list[int] = []

        def on_row(row: Any, rec: Any, err: Any) -> None:
            done.append(row.index)
            if len(done) == 3:
                os.kill(pids[1], signal.SIGKILL)

        s = classify_dataset(
            None, text_rows(data, labels=LABELS), LABELS, ray_out, executor=ex, on_row=on_row
        )
    assert s.n_written == 16 and len(s.skipped) == 1
    assert ray_out.read_text(encoding="utf-8") == local_out.read_text(encoding="utf-8")


def _default_spec() -> Any:
    from logprobe.execution import EngineSpec

    return EngineSpec()


@pytest.mark.slow
def test_eval_mc_with_ray_through_a_real_subprocess(tmp_path: Path) -> None:
    """``--ray`` with no cluster around starts (and stops) its own local runtime."""
    items = mc_jsonl(tmp_path / "mc.jsonl")
    exe = str(Path(sys.executable).with_name("logprobe"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    figures = []
    for extra in ([], ["--ray", "--actors", "1"]):
        r = subprocess.run(
            [exe, "eval", "mc", str(items), "--json", *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        figures.append(json.loads(r.stdout))
    assert figures[1] == figures[0]
    assert "rows/s" in r.stderr


def _responses_file(path: Path) -> Path:
    from logprobe.types import Choice, Completion, TokenLogprob

    lines = []
    for i in range(12):
        toks = tuple(
            TokenLogprob(token=f" w{j}", logprob=-0.1 * (i + j + 1), bytes=f" w{j}".encode())
            for j in range(3 + i % 4)
        )
        comp = Completion(
            id=f"c{i}",
            model="m",
            choices=(Choice(index=0, text="".join(t.token for t in toks), tokens=toks),),
        )
        lines.append(json.dumps(comp.to_dict()))
        if i == 5:
            lines.append("{not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_gate_and_import_on_ray_equal_the_local_run(
    ray_local: Any, ray_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from logprobe.store import Store

    src = _responses_file(tmp_path / "responses.jsonl")
    gated = {}
    for name, extra in (("local", []), ("ray", ["--ray", "--actors", "2"])):
        out = tmp_path / f"gate-{name}.jsonl"
        assert main(["gate", str(src), "--out", str(out), *extra]) == 0
        printed = [x for x in capsys.readouterr().out.splitlines() if "│" in x or "skipped" in x]
        gated[name] = (printed, out.read_text(encoding="utf-8"))
    assert gated["ray"] == gated["local"] and gated["local"][1].count("\n") == 12
    assert any("publish" in x for x in gated["local"][0])
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    for name, extra in (("local", []), ("ray", ["--ray", "--actors", "2"])):
        assert (
            main(
                ["import", str(src), "--run", name, "--db", db, "--skip-invalid", "--json", *extra]
            )
            == 0
        )
        report = json.loads(capsys.readouterr().out)
        assert report["imported"] == 12 and report["skipped"] == [
            "line 7: invalid JSON: Expecting property name enclosed in double quotes (column 2)"
        ]
    with Store.open(db) as store:

        def rows(run: str) -> list[tuple[Any, ...]]:
            return [
                (r.completion_id, r.text, r.n_tokens, r.sum_logprob, r.min_logprob)
                for r in store.responses(run)
            ]

        assert rows("ray") == rows("local") and len(rows("local")) == 12
