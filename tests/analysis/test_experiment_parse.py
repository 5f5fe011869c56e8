"""The confidence experiment's answer parsing and statistics (bench/experiment_confidence.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from analysis_helpers import completion, p, toks

from logprobe.analysis import analyze

BENCH = Path(__file__).resolve().parents[2] / "bench" / "experiment_confidence.py"


@pytest.fixture(scope="module")
def exp() -> ModuleType:
    spec = importlib.util.spec_from_file_location("experiment_confidence", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["experiment_confidence"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("dataset", "answer", "label"),
    [
        ("sst2", "Positive.", 1),
        ("sst2", "The sentiment is negative", 0),
        ("sst2", "positive or negative", None),
        ("sst2", "I cannot tell", None),
        ("agnews", "Politics", 1),
        ("agnews", " Sports", 2),
        ("agnews", "Business and Technology", None),
        ("agnews", "Sci/Tech", 4),
    ],
)
def test_parse_answer(exp: ModuleType, dataset: str, answer: str, label: int | None) -> None:
    assert exp.parse_answer(exp.TASKS[dataset], answer)[0] == label


def test_answer_word_is_the_label_word(exp: ModuleType) -> None:
    c = completion(
        toks(
            [
                ("The", p(0.4)),
                (" answer", p(0.9)),
                (" is", p(0.9)),
                (" neg", p(0.3)),
                ("ative", p(0.8)),
            ]
        )
    )
    label, match = exp.parse_answer(exp.SST2, c.text)
    prob, margin = exp.answer_word(analyze(c), match)
    assert label == 0 and prob == pytest.approx(0.24) and margin is None


def test_auc_and_few_shot_messages(exp: ModuleType) -> None:
    y = np.array([0, 0, 1, 1])
    auc, lo, hi = exp.auc_with_ci(y, np.array([0.1, 0.2, 0.8, 0.9]), np.random.default_rng(0), 50)
    assert auc == 1.0 and lo <= 1.0 <= hi + 1e-12
    assert (
        exp.auc_with_ci(np.array([1, 1]), np.array([0.1, 0.2]), np.random.default_rng(0), 5) is None
    )
    msgs = exp.AGNEWS.messages("x")
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * 4 + ["user"]
    assert msgs[-1]["content"] == "Article: x"
    (zero,) = exp.SST2.messages("fine film", "zeroshot")
    assert zero["role"] == "user" and zero["content"].startswith(
        "Review: fine film\n\nIs the sentiment"
    )
