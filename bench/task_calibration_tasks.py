"""The five tasks of bench/experiment_task_calibration.py: data, prompt, labels, val/test splits.

Each task has a validation split (calibrators are fitted on it) and a disjoint test split (every
number is reported on it). Where the shared data has one file, the two splits are disjoint seeded
samples of it; TweetEval offensive has its own val and test files.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class Task:
    """A labelled dataset, its prompt and labels, and how to draw its two splits."""

    name: str
    title: str
    template: str
    labels: tuple[str, ...]
    load: Callable[[str], Rows]  # "val" | "test" -> [(text, gold label)]
    n_val: int
    n_test: int
    new: bool = False  # a task the project has not measured before


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _disjoint(rows: Rows, split: str, n_val: int, n_test: int, seed: int = 0) -> Rows:
    """Seeded disjoint samples: the first ``n_val`` of a shuffle are val, the next test."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    take = order[:n_val] if split == "val" else order[n_val : n_val + n_test]
    return [rows[i] for i in take]


def _sst2(split: str) -> Rows:
    rows = [
        (r["text"].strip(), ["negative", "positive"][int(r["label"])])
        for r in _tsv(DATA / "sst2" / "dev.tsv")
    ]
    return _disjoint(rows, split, TASKS["sst2"].n_val, TASKS["sst2"].n_test)


def _sms(split: str) -> Rows:
    rows = [
        (r["SMS"].strip(), "spam" if r["Label"] == "spam" else "normal")
        for r in _tsv(DATA / "sms_spam" / "SMSSpamCollection.tsv")
    ]
    return _disjoint(rows, split, TASKS["sms_spam"].n_val, TASKS["sms_spam"].n_test)


AG_NAMES = {"1": "World", "2": "Sports", "3": "Business", "4": "Technology"}


def _ag_rows() -> list[dict[str, str]]:
    with (DATA / "ag_news" / "test.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _ag_news(split: str) -> Rows:
    rows = [
        (f"{r['title']}. {r['description']}".replace("\\", " "), AG_NAMES[r["label"]])
        for r in _ag_rows()
    ]
    return _disjoint(rows, split, TASKS["ag_news"].n_val, TASKS["ag_news"].n_test, seed=0)


HEADLINE_NAMES = {"1": "world", "2": "sports", "3": "business", "4": "science"}


def _ag_headlines(split: str) -> Rows:
    """Titles only, other label words, rows drawn with another seed from the second half of the
    file (the AG News task samples the whole file with seed 0; overlap is possible but the
    prompt, input and labels differ, so it is a different task for the model)."""
    half = _ag_rows()[3800:]
    rows = [(r["title"].replace("\\", " ").strip(), HEADLINE_NAMES[r["label"]]) for r in half]
    t = TASKS["ag_headlines"]
    return _disjoint(rows, split, t.n_val, t.n_test, seed=1)


def _tweet_offensive(split: str) -> Rows:
    folder = DATA / "tweet_eval_offensive"
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")[:-1]
    golds = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split("\n")[:-1]
    rows = [
        (t.strip(), "yes" if g.strip() == "1" else "no") for t, g in zip(texts, golds, strict=True)
    ]
    n = TASKS["tweet_offensive"].n_val if split == "val" else TASKS["tweet_offensive"].n_test
    return random.Random(0).sample(rows, min(n, len(rows)))


TASKS: dict[str, Task] = {
    "sst2": Task(
        "sst2",
        "SST-2 (dev, split in two)",
        "Review: {text}\nSentiment (positive or negative):",
        ("positive", "negative"),
        _sst2,
        250,
        250,
    ),
    "ag_news": Task(
        "ag_news",
        "AG News (test file, split in two)",
        "Article: {text}\nTopic (World, Sports, Business or Technology):",
        ("World", "Sports", "Business", "Technology"),
        _ag_news,
        500,
        400,
    ),
    "sms_spam": Task(
        "sms_spam",
        "SMS Spam Collection",
        "Message: {text}\nIs this a spam message or a normal message?\nAnswer: a",
        ("spam", "normal"),
        _sms,
        250,
        250,
    ),
    "tweet_offensive": Task(
        "tweet_offensive",
        "TweetEval offensive (val / test files)",
        "Tweet: {text}\nQuestion: Is this tweet offensive (yes or no)?\nAnswer:",
        ("yes", "no"),
        _tweet_offensive,
        250,
        250,
    ),
    "ag_headlines": Task(
        "ag_headlines",
        "AG News headlines only (new 4-label task)",
        "Headline: {text}\nThis headline belongs in the newspaper section:",
        ("world", "sports", "business", "science"),
        _ag_headlines,
        300,
        300,
        new=True,
    ),
}
