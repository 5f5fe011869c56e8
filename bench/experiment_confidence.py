"""Do confidence signals from token logprobs tell wrong answers from right ones?

The embedded model answers SST-2 (sentiment) or AG News (topic) in free text, prompted through the
chat template to reply with one word: ``--prompt fewshot`` (example turns; answers are one token)
or ``--prompt zeroshot`` (one user turn; answers run to several tokens). The answer is parsed
(the first label word; none or two labels = wrong); every sequence signal of
``logprobe.analysis`` is scored by ROC-AUC for separating right from wrong answers, with a
bootstrap 95% interval, and the review-gate trade-off (share of answers flagged vs share of errors
caught) is tabulated.

    .venv/bin/python bench/experiment_confidence.py --n 300 --seed 0 --dataset all
    .venv/bin/python bench/experiment_confidence.py --n 300 --seed 0 --dataset all --prompt zeroshot

Each run replaces its dataset/prompt block of docs/experiments/confidence.md (prose is kept).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from sklearn.metrics import roc_auc_score

from logprobe.analysis import Analysis, analyze, gate
from logprobe.types import Completion

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "experiments" / "confidence.md"


@dataclass(frozen=True)
class Task:
    name: str
    system: str
    prefix: str  # "Review" / "Article"
    shots: tuple[tuple[str, str], ...]  # invented examples (not from the data), one turn each
    keywords: dict[str, int]  # answer word -> label
    question: str  # zero-shot: asked after the item, in the same user turn

    def messages(self, text: str, prompt: str = "fewshot") -> list[dict[str, str]]:
        """``fewshot``: system instruction, one user/assistant turn per example, then the item.
        ``zeroshot``: one user turn, the item then the question (answers run longer)."""
        if prompt == "zeroshot":
            return [{"role": "user", "content": f"{self.prefix}: {text}\n\n{self.question}"}]
        msgs = [{"role": "system", "content": self.system}]
        for example, answer in self.shots:
            msgs += [
                {"role": "user", "content": f"{self.prefix}: {example}"},
                {"role": "assistant", "content": answer},
            ]
        return msgs + [{"role": "user", "content": f"{self.prefix}: {text}"}]


SST2 = Task(
    "sst2",
    "Classify the sentiment of movie reviews. Reply with one word: positive or negative.",
    "Review",
    (
        ("a gorgeous , witty , seductive movie .", "positive"),
        ("the plot is nothing but boilerplate cliches .", "negative"),
    ),
    {"positive": 1, "negative": 0},
    "Is the sentiment of this review positive or negative? Answer with one word.",
)
AGNEWS = Task(
    "agnews",
    "Classify news articles by topic. Reply with one word: World, Sports, Business or Technology.",
    "Article",
    (
        ("Rebels and government sign ceasefire in the capital", "World"),
        ("Yankees beat Red Sox 5-3 in extra innings", "Sports"),
        ("Oil prices climb as company profits beat forecasts", "Business"),
        ("New chip doubles the battery life of laptops", "Technology"),
    ),
    {
        "world": 1,
        "politics": 1,
        "political": 1,
        "sports": 2,
        "sport": 2,
        "business": 3,
        "economy": 3,
        "finance": 3,
        "technology": 4,
        "tech": 4,
        "science": 4,
    },
    "Is this article about World, Sports, Business or Technology? Answer with one word.",
)
TASKS = {"sst2": SST2, "agnews": AGNEWS}


def load_items(task: Task, n: int, seed: int) -> list[tuple[str, int]]:
    """``n`` random (text, label) pairs of the task's evaluation split."""
    if task.name == "sst2":
        with (DATA / "sst2" / "dev.tsv").open(encoding="utf-8") as fh:
            rows = [
                (r["text"].strip(), int(r["label"])) for r in csv.DictReader(fh, delimiter="\t")
            ]
    else:
        with (DATA / "ag_news" / "test.csv").open(encoding="utf-8") as fh:
            rows = [
                (f"{r['title']}. {r['description']}".replace("\\", " "), int(r["label"]))
                for r in csv.DictReader(fh)
            ]
    return random.Random(seed).sample(rows, min(n, len(rows)))


def parse_answer(task: Task, text: str) -> tuple[int | None, re.Match[str] | None]:
    """The label named in the answer: the first keyword found; None if none or if two labels."""
    hits = list(re.finditer(r"[A-Za-z]+", text))
    found = [
        (m, task.keywords[m.group().lower()]) for m in hits if m.group().lower() in task.keywords
    ]
    if not found or len({lab for _, lab in found}) > 1:
        return None, None
    return found[0][1], found[0][0]


def answer_word(a: Analysis, match: re.Match[str] | None) -> tuple[float | None, float | None]:
    """(probability, first-token margin) of the word holding the parsed answer, else of the
    first word (what the model committed to first)."""
    words = [w for w in a.words if not w.is_space]
    if not words:
        return None, None
    w = words[0]
    if match is not None:
        w = next((x for x in words if x.char_start <= match.start() < x.char_end), w)
    return w.prob, a.stats[w.token_start].margin


SIGNALS: dict[str, tuple[str, int]] = {
    # name: (description, direction: +1 means higher = more confident)
    "sum_logprob": ("sum of token logprobs", 1),
    "mean_logprob": ("mean token logprob (= -log perplexity)", 1),
    "logprob_per_char": ("sum / characters", 1),
    "min_prob": ("least likely token", 1),
    "prob_q10": ("10% quantile of token prob", 1),
    "prob_q25": ("25% quantile of token prob", 1),
    "prob_q50": ("median token prob", 1),
    "low_prob_share": ("share of tokens with p < 0.5", -1),
    "mean_entropy": ("mean exact entropy", -1),
    "max_entropy": ("max exact entropy", -1),
    "mean_margin": ("mean margin top-1 vs top-2", 1),
    "first_token_prob": ("probability of the first token", 1),
    "first_k_mean_logprob": ("mean logprob of first 3 tokens", 1),
    "answer_word_prob": ("probability of the answer word", 1),
    "answer_word_margin": ("margin at the answer word's first token", 1),
    "n_tokens": ("answer length in tokens (baseline)", -1),
}


@dataclass
class Item:
    label: int
    completion: Completion
    predicted: int | None
    signals: dict[str, float | None] = field(default_factory=dict)
    decisions: dict[str, str] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return self.predicted == self.label


def measure(task: Task, label: int, c: Completion) -> Item:
    predicted, match = parse_answer(task, c.text)
    a = analyze(c, first_k=3)
    s = a.summary
    word_prob, word_margin = answer_word(a, match)
    first = next((x for x in a.stats if x.prob is not None), None)
    signals = {k: getattr(s, k) for k in SIGNALS if hasattr(s, k)}
    signals.update(
        first_token_prob=None if first is None else first.prob,
        answer_word_prob=word_prob,
        answer_word_margin=word_margin,
        n_tokens=float(s.n_tokens),
    )
    decisions: dict[str, str] = {
        p: gate(c, p).decision for p in ("default", "strict", "lenient", "quantile")
    }
    return Item(label, c, predicted, signals, decisions)


def run_task(engine: object, task: Task, args: argparse.Namespace, console: Console) -> list[Item]:
    from logprobe.engines import GenerationParams

    params = GenerationParams.make(
        max_tokens=args.max_tokens, temperature=0, top_logprobs=args.top_logprobs
    )
    items = load_items(task, args.n, args.seed)

    def one(pair: tuple[str, int]) -> Item:
        text, label = pair
        return measure(task, label, engine.chat(task.messages(text, args.prompt), params))  # type: ignore[attr-defined]

    out: list[Item] = []
    with (
        Progress(console=console, transient=True) as progress,
        ThreadPoolExecutor(args.threads) as pool,
    ):
        bar = progress.add_task(task.name, total=len(items))
        for item in pool.map(one, items):
            out.append(item)
            progress.advance(bar)
    return out


def auc_with_ci(
    y: np.ndarray, score: np.ndarray, rng: np.random.Generator, n_boot: int
) -> tuple[float, float, float] | None:
    """ROC-AUC of ``score`` for ``y`` (1 = correct) and a bootstrap 95% interval."""
    if y.min() == y.max():
        return None
    auc = float(roc_auc_score(y, score))
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            boots.append(roc_auc_score(y[idx], score[idx]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return auc, float(lo), float(hi)


def signal_array(items: Sequence[Item], name: str) -> np.ndarray:
    """Signal oriented so higher = more confident; undefined values rank as least confident."""
    sign = SIGNALS[name][1]
    vals = np.array(
        [
            np.nan if i.signals.get(name) is None else sign * float(i.signals[name])  # type: ignore[arg-type]
            for i in items
        ]
    )
    finite = np.isfinite(vals)
    vals[~finite] = vals[finite].min() - 1.0 if finite.any() else 0.0
    return vals


def _auc_cells(items: Sequence[Item], name: str, rng: np.random.Generator, n_boot: int) -> str:
    y = np.array([i.correct for i in items], dtype=int)
    res = auc_with_ci(y, signal_array(items, name), rng, n_boot) if len(items) > 1 else None
    return "n/a | n/a" if res is None else f"{res[0]:.3f} | {res[1]:.2f}-{res[2]:.2f}"


def auc_table(items: Sequence[Item], seed: int, n_boot: int) -> list[str]:
    """ROC-AUC (and CI) per signal over all answers and over answers that name one label."""
    rng = np.random.default_rng(seed)
    parsed = [i for i in items if i.predicted is not None]
    rows = [
        f"| signal | meaning | ROC-AUC all | 95% CI | ROC-AUC parsed (n={len(parsed)}) | 95% CI |",
        "|---|---|---|---|---|---|",
    ]
    for name, (desc, _) in SIGNALS.items():
        rows.append(
            f"| `{name}` | {desc} | {_auc_cells(items, name, rng, n_boot)} "
            f"| {_auc_cells(parsed, name, rng, n_boot)} |"
        )
    return rows


def tradeoff_table(
    items: Sequence[Item], names: Sequence[str], shares: Sequence[float]
) -> list[str]:
    """Flag the least confident ``share`` of answers by each signal: errors caught, error left."""
    y = np.array([i.correct for i in items], dtype=bool)
    n_err = int((~y).sum())
    rows = ["| signal | flagged | errors caught | error rate of the rest |", "|---|---|---|---|"]
    for name in names:
        score = signal_array(items, name)
        order = np.argsort(score, kind="stable")  # least confident first
        for share in shares:
            k = int(round(share * len(items)))
            flagged = np.zeros(len(items), dtype=bool)
            flagged[order[:k]] = True
            caught = int((~y & flagged).sum())
            rest = ~flagged
            rest_err = float((~y[rest]).mean()) if rest.any() else float("nan")
            rows.append(
                f"| `{name}` | {k / len(items):.0%} | {caught}/{n_err} ({caught / max(n_err, 1):.0%}) "  # noqa: E501
                f"| {rest_err:.1%} |"
            )
    return rows


def mean_rule_table(items: Sequence[Item], thresholds: Sequence[float]) -> list[str]:
    y = np.array([i.correct for i in items], dtype=bool)
    mean = np.array(
        [
            i.signals["mean_logprob"] if i.signals["mean_logprob"] is not None else -np.inf
            for i in items
        ]
    )
    rows = [
        "| mean logprob below | flagged | errors caught | error rate of the rest |",
        "|---|---|---|---|",
    ]
    n_err = int((~y).sum())
    for t in thresholds:
        flagged = mean < t
        caught = int((~y & flagged).sum())
        rest = ~flagged
        rest_err = f"{float((~y[rest]).mean()):.1%}" if rest.any() else "n/a"
        rows.append(
            f"| {t:g} | {flagged.mean():.0%} | {caught}/{n_err} ({caught / max(n_err, 1):.0%}) | {rest_err} |"  # noqa: E501
        )
    return rows


def policy_table(items: Sequence[Item]) -> list[str]:
    rows = [
        "| policy | publish (error rate) | review (error rate) | reject (error rate) |",
        "|---|---|---|---|",
    ]
    for pol in ("default", "strict", "lenient", "quantile"):
        cells = []
        for kind in ("publish", "review", "reject"):
            group = [i for i in items if i.decisions[pol] == kind]
            err = f"{sum(not i.correct for i in group) / len(group):.0%}" if group else "n/a"
            cells.append(f"{len(group)} ({err})")
        rows.append(f"| `{pol}` | " + " | ".join(cells) + " |")
    return rows


def section(
    task: Task, items: Sequence[Item], args: argparse.Namespace, seconds: float
) -> list[str]:
    n = len(items)
    parsed = sum(i.predicted is not None for i in items)
    correct = sum(i.correct for i in items)
    lengths = [i.signals["n_tokens"] or 0 for i in items]
    examples = ", ".join(json.dumps(i.completion.text) for i in items[:5])
    best = ["mean_logprob", "prob_q10", "min_prob", "first_token_prob", "answer_word_prob"]
    return [
        f"### {task.name}, {args.prompt} (n = {n})",
        "",
        f"- accuracy {correct / n:.1%} ({correct}/{n}); answers naming exactly one label: "
        f"{parsed / n:.1%}; errors: {n - correct} (of which unparseable: {n - parsed})",
        f"- answer length: median {np.median(lengths):.0f} tokens, max {max(lengths):.0f}; "
        f"first answers: {examples}",
        f"- wall time {seconds:.0f} s" if seconds else "- recomputed from saved completions",
        "",
        "ROC-AUC for telling right answers from wrong ones, oriented so that above 0.5 means the "
        "signal's confident side is more often right (0.5 = no information; below 0.5 = "
        "informative "
        f'the other way round; CI: {args.boot} bootstrap resamples). "parsed": only answers '
        "that name exactly one label (is the model's confidence in its label informative?):",
        "",
        *auc_table(items, args.seed, args.boot),
        "",
        "Review gate by share flagged (least confident first):",
        "",
        *tradeoff_table(items, best, (0.1, 0.2, 0.3, 0.5)),
        "",
        "Fixed mean-logprob thresholds (the -0.5 / -1.5 rule of thumb):",
        "",
        *mean_rule_table(items, (-0.1, -0.25, -0.5, -1.0, -1.5)),
        "",
        "Built-in policies (count and error rate per decision):",
        "",
        *policy_table(items),
        "",
    ]


def write_doc(name: str, lines: Sequence[str]) -> None:
    """Replace this dataset's block of the results doc (other text is kept)."""
    start, end = f"<!-- results:{name}:start -->", f"<!-- results:{name}:end -->"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    block = "\n".join([start, *lines, end])
    old = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Confidence signals\n"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(new, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", choices=["sst2", "agnews", "all"], default="all")
    ap.add_argument("--n", type=int, default=300, help="examples per dataset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--prompt",
        choices=["fewshot", "zeroshot"],
        default="fewshot",
        help="fewshot: example turns, one-word answers; zeroshot: free-text answers",
    )
    ap.add_argument(
        "--max-tokens", type=int, default=None, help="default 5 (fewshot), 12 (zeroshot)"
    )
    ap.add_argument("--top-logprobs", type=int, default=5)
    ap.add_argument(
        "--threads", type=int, default=8, help="concurrent requests (batched by the engine)"
    )
    ap.add_argument(
        "--engine-threads",
        type=int,
        default=1,
        help="llama.cpp threads; 1 is several times faster when other jobs share the cores",
    )
    ap.add_argument(
        "--boot", type=int, default=500, help="bootstrap resamples for the AUC interval"
    )
    ap.add_argument(
        "--raw", type=Path, default=None, help="also write every completion as JSONL here"
    )
    ap.add_argument(
        "--from-raw",
        type=Path,
        default=None,
        help="recompute the tables from a --raw file instead of running the model",
    )
    ap.add_argument(
        "--no-doc", action="store_true", help="print the tables instead of writing the doc"
    )
    args = ap.parse_args(argv)
    if args.n < 10:
        ap.error("--n must be at least 10")
    if args.max_tokens is None:
        args.max_tokens = 5 if args.prompt == "fewshot" else 12

    console = Console(stderr=True)
    command = "python bench/experiment_confidence.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    names = ["sst2", "agnews"] if args.dataset == "all" else [args.dataset]
    if args.from_raw:
        return from_raw(args, names, command, console)
    from logprobe.engines.llamacpp import LlamaEngine

    engine = LlamaEngine(n_threads=args.engine_threads)
    raw = args.raw.open("w", encoding="utf-8") if args.raw else None
    for name in names:
        t0 = time.perf_counter()
        items = run_task(engine, TASKS[name], args, console)
        header = (
            f"Command: `{command}` (model {engine.model_name}, {args.prompt} prompt, greedy, "
            f"max_tokens={args.max_tokens}, top_logprobs={args.top_logprobs}, "
            f"engine threads={args.engine_threads})."
        )
        emit(
            f"{name}-{args.prompt}",
            [header, "", *section(TASKS[name], items, args, time.perf_counter() - t0)],
            args,
            console,
        )
        for i in items if raw else ():
            raw.write(
                json.dumps(
                    {
                        "dataset": name,
                        "label": i.label,
                        "predicted": i.predicted,  # type: ignore[union-attr]
                        "command": command,
                        "completion": i.completion.to_dict(),
                    }
                )
                + "\n"
            )
    if raw:
        raw.close()
    engine.close()
    return 0


def emit(block: str, lines: Sequence[str], args: argparse.Namespace, console: Console) -> None:
    if args.no_doc:
        print("\n".join(lines), flush=True)
    else:
        write_doc(block, lines)
        console.print(f"wrote {block} results to {DOC}")


def from_raw(args: argparse.Namespace, names: Sequence[str], command: str, console: Console) -> int:
    """Recompute the tables from completions saved with ``--raw`` (no model needed)."""
    rows = [
        json.loads(line) for line in args.from_raw.read_text(encoding="utf-8").splitlines() if line
    ]
    for name in names:
        mine = [r for r in rows if r["dataset"] == name]
        if not mine:
            continue
        items = [
            measure(TASKS[name], r["label"], Completion.from_dict(r["completion"])) for r in mine
        ]
        source = mine[0].get("command", "unknown")
        header = (
            f"Completions from `{source}` (model {items[0].completion.model}); "
            f"tables recomputed with `{command}`."
        )
        emit(
            f"{name}-{args.prompt}",
            [header, "", *section(TASKS[name], items, args, 0.0)],
            args,
            console,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
