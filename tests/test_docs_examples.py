"""The Python blocks of docs/API.md and README.md run as written.

Each block runs in its own interpreter (so it imports what it uses, as a reader's would) in a
folder holding ``response.json``, the saved OpenAI chat completion the normalize example opens.
README blocks that need a running server (they name a URL) are left to tests/server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / "API.md", ROOT / "README.md"]
NEEDS_SERVER = re.compile(r"https?://|base_url")

# An OpenAI chat completion as saved from the API with logprobs=True, top_logprobs=2 (shape:
# wire doc "OpenAI Chat Completions").
RESPONSE = {
    "id": "chatcmpl-42",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "logprobs": {
                "refusal": None,
                "content": [
                    {
                        "token": "Paris",
                        "logprob": -0.02,
                        "bytes": [80, 97, 114, 105, 115],
                        "top_logprobs": [
                            {"token": "Paris", "logprob": -0.02, "bytes": [80, 97, 114, 105, 115]},
                            {"token": "The", "logprob": -4.1, "bytes": [84, 104, 101]},
                        ],
                    },
                    {
                        "token": ".",
                        "logprob": -0.3,
                        "bytes": [46],
                        "top_logprobs": [
                            {"token": ".", "logprob": -0.3, "bytes": [46]},
                            {"token": "!", "logprob": -1.5, "bytes": [33]},
                        ],
                    },
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16},
    "system_fingerprint": "fp_0",
}


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line, code) of every ```python block."""
    if not path.exists():
        return []
    out, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            out.append((start + 1, "\n".join(body) + "\n"))
        i += 1
    return out


BLOCKS = [
    pytest.param(code, id=f"{path.name}:{line}")
    for path in DOCS
    for line, code in python_blocks(path)
    if not NEEDS_SERVER.search(code)
]


def test_the_api_page_has_the_three_quick_start_examples() -> None:
    code = "".join(c for _, c in python_blocks(DOCS[0]))
    assert "top_logprobs=5" in code and "classify(" in code and "logprobe.normalize(" in code
    assert len(BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("code", BLOCKS)
def test_block_runs_as_written(code: str, tmp_path: Path) -> None:
    (tmp_path / "response.json").write_text(json.dumps(RESPONSE))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "every example prints what it shows"
    if "logprobe.normalize(" in code:  # the numbers the reader sees, worked out by hand
        assert "mean logprob -0.160, perplexity 1.17" in proc.stdout  # mean(-0.02, -0.3)
