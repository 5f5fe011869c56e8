"""Convert MMLU (57 subject CSVs) into multiple-choice JSONL for ``logprobe eval mc``.

Prompt exactly as lighteval's MMLU cloze task used for the SmolLM2 model card (see
../shared/data/README.md): ``The following are questions about {subject}.\\nQuestion:
{question}\\nAnswer:`` with the subject's underscores replaced by spaces; ``eval mc`` scores each
choice as the continuation ``" {choice}"``; its ``acc_norm_chars`` is lighteval's
``loglikelihood_acc_norm_nospace``.

    python bench/mmlu_to_jsonl.py ../shared/data/mmlu/test bench/out/mmlu_test.jsonl
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

SUFFIX = "_test.csv"


def subject_of(path: Path) -> str:
    name = path.name
    for suffix in ("_test.csv", "_dev.csv", "_val.csv", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ")


def convert(src: Path, dst: Path) -> int:
    n = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", encoding="utf-8") as out:
        for path in sorted(src.glob("*.csv")):
            subject = subject_of(path)
            with path.open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    choices = [row[f"choice{i}"] for i in range(4)]
                    query = (
                        f"The following are questions about {subject}.\n"
                        f"Question: {row['question']}\nAnswer:"
                    )
                    rec = {
                        "query": query,
                        "choices": choices,
                        "gold": int(row["answer"]),
                        "subject": subject,
                    }
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    n += 1
    return n


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    n = convert(Path(argv[0]), Path(argv[1]))
    print(f"wrote {n} items to {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
