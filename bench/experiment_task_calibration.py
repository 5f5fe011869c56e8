"""Task calibration, honestly: fit on a validation split, report on a separate test split.

For each task of ``bench/task_calibration_tasks.py`` (SST-2, AG News, SMS spam, TweetEval
offensive and a 4-label task not measured before: AG News headlines with other label words):

1. ``predict``: classify the val and test splits with ``logprobe.tasks.classify_dataset`` (the
   code path of ``logprobe classify --dataset``; exact label scoring with the embedded
   SmolLM2-135M-Instruct), rows to ``OUT/<task>_<split>.jsonl`` (resumable, reused).
2. ``evaluate``: every method (temperature, Platt, isotonic, vector, matrix, contextual, auto)
   is fitted on the val rows only (contextual: on the model's answers to content-free inputs)
   and compared before/after on the test rows: accuracy, macro-F1, ECE, Brier, ROC-AUC with
   paired bootstrap intervals, the majority-label baseline, and selective prediction
   ("catch 80% of errors") against the mean-logprob rule of thumb.

Run (about 20-30 minutes on 2 busy cores; predictions are reused on a second run):

    .venv/bin/python bench/experiment_task_calibration.py --out build/task_calibration

Writes ``OUT/summary.json`` and prints the markdown tables of docs/experiments/task_calibration.md;
``OUT/<task>_<split>.input.jsonl`` holds the same rows for ``logprobe classify --dataset`` (the
CLI flow of that document).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from task_calibration_tasks import TASKS, Task  # noqa: E402


def predict(task: Task, split: str, out: Path, engine: Any, workers: int) -> float:
    """Classify one split of ``task`` into ``out`` (resumes a partial file); seconds taken."""
    from logprobe.tasks import TextRow, classify_dataset

    rows = [
        TextRow(index=i, line=i + 1, text=t, gold=g) for i, (t, g) in enumerate(task.load(split))
    ]
    start = time.perf_counter()
    done = [0]

    def progress(*_: Any) -> None:
        done[0] += 1
        if done[0] % 100 == 0:
            print(
                f"{task.name}/{split}: {done[0]}/{len(rows)} ({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    summary = classify_dataset(
        engine,
        rows,
        list(task.labels),
        out,
        workers=workers,
        resume=out.is_file(),
        on_row=progress,
        template=task.template,
    )
    if summary.skipped:
        print(f"{task.name}/{split}: skipped {summary.skipped[:3]}", file=sys.stderr)
    return time.perf_counter() - start


def export_inputs(names: list[str], out: Path) -> None:
    """``OUT/<task>_<split>.input.jsonl`` ({"text", "gold"} per row): the same rows for the CLI
    (``logprobe classify --dataset``), in the same order."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        for split in ("val", "test"):
            rows = TASKS[name].load(split)
            (out / f"{name}_{split}.input.jsonl").write_text(
                "".join(
                    json.dumps({"text": t, "gold": g}, ensure_ascii=False) + "\n" for t, g in rows
                ),
                encoding="utf-8",
            )


def run_predictions(names: list[str], out: Path, threads: int, workers: int) -> dict[str, float]:
    from logprobe.engines.llamacpp import LlamaEngine

    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    engine = LlamaEngine(n_threads=threads)
    try:
        for name in names:
            for split in ("val", "test"):
                path = out / f"{name}_{split}.jsonl"
                seconds[f"{name}/{split}"] = predict(TASKS[name], split, path, engine, workers)
    finally:
        engine.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("build/task_calibration"))
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--stage", choices=("predict", "evaluate", "all"), default="all")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        ap.error(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    export_inputs(names, args.out)
    if args.stage in ("predict", "all"):
        seconds = run_predictions(names, args.out, args.threads, args.workers)
        (args.out / "predict_seconds.json").write_text(json.dumps(seconds, indent=2))
        print(json.dumps(seconds), file=sys.stderr)
    if args.stage in ("evaluate", "all"):
        from task_calibration_eval import evaluate_all

        evaluate_all(names, args.out, n_boot=args.bootstrap, seed=args.seed, threads=args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
