"""Every command that reads a file, fed any bytes (Hypothesis): random bytes, broken UTF-8, and
JSON lines built from the field names the readers look for. Whatever the bytes, the command
either succeeds or ends with exactly one ``error: ...`` line and exit code 2; never a traceback
or an uncaught exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logprobe.cli.main import main

FIELDS = [
    "choices",
    "logprobs",
    "content",
    "token",
    "logprob",
    "bytes",
    "top_logprobs",
    "message",
    "text",
    "tokens",
    "token_logprobs",
    "confidence",
    "correct",
    "label",
    "probs",
    "gold",
    "question",
    "answer",
    "prompt",
    "id",
    "object",
    "model",
    "delta",
    "output",
    "completion",
    "labels",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(FIELDS),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=12,
)


def _lines(items: list[Any]) -> bytes:
    return "\n".join(json.dumps(v) for v in items).encode()


files = st.one_of(
    st.binary(max_size=400),
    st.lists(values, max_size=5).map(_lines),
    st.tuples(
        st.lists(values, min_size=1, max_size=3).map(_lines),
        st.binary(max_size=40),
        st.integers(0, 200),
    ).map(lambda t: t[0][: t[2]] + t[1]),  # truncated + garbage
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(st.lists(st.text(max_size=8), max_size=4), max_size=4).map(  # CSV-ish
        lambda rows: "\n".join(",".join(r) for r in [["text", "label"], *rows]).encode()
    ),
)

COMMANDS = {
    "inspect": ["inspect", "{file}"],
    "import": ["import", "{file}", "--run", "fuzz", "--db", "sqlite:///{dir}/fuzz.db"],
    "gate": ["gate", "{file}"],
    "calibrate": ["calibrate", "{file}"],
    "eval mc": ["eval", "mc", "{file}"],
    "classify --dataset": ["classify", "--labels", "a,b", "--dataset", "{file}"],
}


def check_one(
    capsys: pytest.CaptureFixture[str], tmp: Path, argv: list[str], data: bytes, suffix: str
) -> None:
    path = tmp / f"input{suffix}"
    path.write_bytes(data)
    args = [a.format(file=path, dir=tmp) for a in argv]
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out, err[-2000:]
    if code == 0:
        return
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, (code, err[-500:])
    assert len(errors) == 1 and err.rstrip().endswith(errors[0].rstrip()), err[-500:]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_any_bytes_give_one_error_line_never_a_traceback(
    command: str, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")

    @given(data=files, suffix=st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".txt"]))
    @example(data=b'{"\\r": 0}', suffix=".json")  # found: a key's CR split the error line
    @example(data=b'{"question": "\xff"}', suffix=".jsonl")  # found: UnicodeDecodeError
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def fuzz(data: bytes, suffix: str) -> None:
        check_one(capsys, tmp, COMMANDS[command], data, suffix)

    fuzz()


@pytest.mark.parametrize("command", ["eval mc", "classify --dataset"])
def test_non_utf8_datasets_are_a_one_line_error(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The case the fuzz found: a dataset with invalid UTF-8 crashed with UnicodeDecodeError."""
    check_one(capsys, tmp_path, COMMANDS[command], b'{"question": "\xff\xfe"}\n', ".jsonl")
    assert (
        main([a.format(file=tmp_path / "input.jsonl", dir=tmp_path) for a in COMMANDS[command]])
        == 2
    )
