"""Retrieval evaluation on WikiQA (answer-sentence selection) with the embedded model.

1. Scorer check: the paper's CNN run (``emnlp-table/WikiQA.CNN.test.rank``) against
   ``WikiQA-test-filtered.ref`` must give MAP 0.6190 / MRR 0.6281 (Yang et al. 2015).
2. Calibration: raw ``P(Yes)`` of the judgement on every pair of ``--dev`` questions drawn from
   the filtered dev split (seed 0); a Platt map is fitted on them.
3. Test: ``--test`` questions drawn from the 237 filtered test questions (seed 0); every
   candidate scored by the judgement, query likelihood and their combination; MAP/MRR/nDCG@10/P@1
   with 95% bootstrap intervals over questions, against random order and word overlap, and ECE of
   ``P(relevant)`` before/after the Platt map. Word-overlap ties are broken at random (seeded):
   document order alone is a strong baseline on WikiQA (the answer is often an early sentence).
4. RAG support check: answer = the question's first correct sentence; passage = the document's
   candidate sentences joined (supports it) or the same without the correct ones (on-topic but
   without the evidence). Platt map fitted on the dev questions, ECE/accuracy/AUC on the test ones.

Run (scores are cached in OUT and reused):

    .venv/bin/python bench/experiment_relevance.py --out build/apps --dev 30 --test 60
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app_common import (  # noqa: E402
    DATA,
    SEED,
    append_jsonl,
    cached_jsonl,
    cis,
    ece_stat,
    engine,
    fmt,
    weighted_mean,
    write_json,
)

from logprobe.calibration import ece, fit_platt, roc_auc, save_calibrator  # noqa: E402
from logprobe.tasks.ranking_metrics import (  # noqa: E402
    evaluate_run,
    read_trec_qrels,
    read_trec_run,
)
from logprobe.tasks.relevance import judge, support  # noqa: E402
from logprobe.tasks.relevance_eval import (  # noqa: E402
    Question,
    load_questions,
    method_reports,
    order_report,
    overlap_report,
    random_baseline,
    score_questions,
    select_questions,
)

W = DATA / "wikiqa"
COLS = dict(
    qid_col="QuestionID", question_col="Question", passage_col="Sentence", label_col="Label"
)


def scorer_check() -> dict[str, float]:
    qrels = read_trec_qrels(W / "WikiQA-test-filtered.ref")
    rep = evaluate_run(qrels, read_trec_run(W / "emnlp-table" / "WikiQA.CNN.test.rank"))
    return {"questions": len(rep.per_question), "map": rep.map, "mrr": rep.mrr}


def dev_judgements(eng: Any, qs: Sequence[Question], cache: Path) -> tuple[list[float], list[bool]]:
    done = cached_jsonl(cache)
    pairs = [(q, i) for q in qs for i in range(len(q.passages))]
    todo = [(q, i) for q, i in pairs if f"{q.qid}/{i}" not in done]

    def one(item: tuple[Question, int]) -> dict[str, Any]:
        q, i = item
        return {
            "key": f"{q.qid}/{i}",
            "p_yes": judge(eng, q.question, q.passages[i]),
            "label": q.grades[i] > 0,
        }

    with ThreadPoolExecutor(4) as ex:
        for rec in ex.map(one, todo):
            append_jsonl(cache, rec)
            done[rec["key"]] = rec
    recs = [done[f"{q.qid}/{i}"] for q, i in pairs]
    return [r["p_yes"] for r in recs], [bool(r["label"]) for r in recs]


def support_items(qs: Sequence[Question]) -> list[tuple[str, str, str, bool]]:
    """(key, passage, answer, supported) per question: with and without the evidence."""
    items = []
    for q in qs:
        gold = [p for p, g in zip(q.passages, q.grades, strict=True) if g > 0]
        rest = [p for p, g in zip(q.passages, q.grades, strict=True) if g <= 0]
        items.append((f"{q.qid}/pos", " ".join(q.passages), gold[0], True))
        items.append((f"{q.qid}/neg", " ".join(rest), gold[0], False))
    return items


def support_scores(eng: Any, qs: Sequence[Question], cache: Path) -> tuple[list[float], list[bool]]:
    done = cached_jsonl(cache)
    items = support_items(qs)
    question = {q.qid: q.question for q in qs}
    todo = [it for it in items if it[0] not in done]

    def one(it: tuple[str, str, str, bool]) -> dict[str, Any]:
        key, passage, answer, label = it
        r = support(eng, passage, answer, question=question[key.split("/")[0]])
        return {"key": key, "p": r.raw_p_supported, "label": label}

    with ThreadPoolExecutor(4) as ex:
        for rec in ex.map(one, todo):
            append_jsonl(cache, rec)
            done[rec["key"]] = rec
    return [done[k]["p"] for k, *_ in items], [bool(done[k]["label"]) for k, *_ in items]


def calib_block(cal: Any, p: Sequence[float], y: Sequence[bool]) -> dict[str, Any]:
    q = [cal.apply(float(v)) for v in p]
    pred_raw = [v >= 0.5 for v in p]
    pred_cal = [v >= 0.5 for v in q]
    acc_raw = [a == b for a, b in zip(pred_raw, y, strict=True)]
    acc_cal = [a == b for a, b in zip(pred_cal, y, strict=True)]
    out: dict[str, Any] = {
        "n": len(p),
        "positives": int(sum(y)),
        "ece_raw": ece(p, y, n_bins=10),
        "ece_calibrated": ece(q, y, n_bins=10),
        "accuracy_raw@0.5": float(np.mean(acc_raw)),
        "accuracy_cal@0.5": float(np.mean(acc_cal)),
        "roc_auc": roc_auc(p, y),
        "majority_accuracy": max(np.mean(y), 1 - np.mean(y)),
    }
    out["ci95"] = cis(
        {
            "ece_raw": ece_stat(p, y),
            "ece_calibrated": ece_stat(q, y),
            "accuracy_cal@0.5": weighted_mean(acc_cal),
        },
        len(p),
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("build/apps"))
    ap.add_argument("--dev", type=int, default=30)
    ap.add_argument("--test", type=int, default=60)
    args = ap.parse_args(argv)
    out: Path = args.out
    eng = engine()
    check = scorer_check()
    print(
        f"scorer check (CNN run): MAP {check['map']:.4f} MRR {check['mrr']:.4f} "
        f"over {check['questions']} questions",
        file=sys.stderr,
    )
    dev = select_questions(
        load_questions(W / "WikiQA-dev.tsv", **COLS).questions, limit=args.dev, seed=SEED
    )
    test = select_questions(
        load_questions(W / "WikiQA-test.tsv", **COLS).questions, limit=args.test, seed=SEED
    )
    p_dev, y_dev = dev_judgements(eng, dev, out / "wikiqa_dev_judge.jsonl")
    cal = fit_platt(p_dev, y_dev, model=eng.model_name)
    save_calibrator(cal, out / "relevance_platt.json")
    print(f"dev: {len(p_dev)} pairs; Platt {cal.params()}", file=sys.stderr)
    scored, failed = score_questions(
        eng,
        test,
        calibrator=cal,
        workers=2,
        on_question=lambda q, r, e: print(".", end="", flush=True, file=sys.stderr),
    )
    qs_done = [q for q, _ in scored]
    reports = {
        **method_reports(scored),
        "word_overlap": overlap_report(qs_done),
        "document_order": order_report(qs_done),
    }
    result: dict[str, Any] = {
        "scorer_check": check,
        "dev_questions": len(dev),
        "dev_pairs": len(p_dev),
        "test_questions": len(scored),
        "failed": failed,
        "platt": cal.params(),
        "seed": SEED,
        "random": random_baseline([q for q, _ in scored]),
    }
    result["methods"] = {m: r.to_dict(n_boot=1000, seed=SEED) for m, r in reports.items()}
    ap_c = np.array([x.ap for x in reports["combined"].per_question])
    ap_o = np.array([x.ap for x in reports["word_overlap"].per_question])
    result["combined_minus_overlap_map"] = {
        "value": float(np.mean(ap_c - ap_o)),
        "ci95": cis({"d": weighted_mean(ap_c - ap_o)}, len(ap_c))["d"],
    }
    p_raw = [c.raw_p_yes for _, r in scored for c in sorted(r.ranked, key=lambda c: c.index)]
    y = [g > 0 for q, _ in scored for g in q.grades]
    result["judge_calibration"] = calib_block(cal, p_raw, y)
    ps_dev, ys_dev = support_scores(eng, dev, out / "wikiqa_dev_support.jsonl")
    ps, ys = support_scores(eng, [q for q, _ in scored], out / "wikiqa_test_support.jsonl")
    scal = fit_platt(ps_dev, ys_dev, model=eng.model_name)
    result["support"] = {"platt": scal.params(), **calib_block(scal, ps, ys)}
    write_json(out / "relevance.json", result)
    print(file=sys.stderr)
    print(markdown(result))
    eng.close()
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"WikiQA test, {r['test_questions']} questions (seed {r['seed']}); calibration on "
        f"{r['dev_pairs']} dev pairs ({r['dev_questions']} questions).",
        "",
        "| method | MAP | MRR | nDCG@10 | P@1 |",
        "|---|---|---|---|---|",
    ]
    rnd = r["random"]
    lines.append(
        f"| random order (mean of 100) | {rnd['map']:.3f} | {rnd['mrr']:.3f} | "
        f"{rnd['ndcg@10']:.3f} | {rnd['p@1']:.3f} |"
    )
    for m, d in r["methods"].items():
        ci = d.get("ci95", {})
        lines.append(
            f"| {m} | {fmt(d['map'], ci.get('map'))} | {fmt(d['mrr'], ci.get('mrr'))} | "
            f"{fmt(d['ndcg@10'], ci.get('ndcg@10'))} | {fmt(d['p@1'], ci.get('p@1'))} |"
        )
    lines.append("| CNN (Yang et al. 2015; all 237 questions) | 0.619 | 0.628 | | |")
    lines.append("| CNN-Cnt (Yang et al. 2015; all 237 questions) | 0.652 | 0.665 | | |")
    d = r["combined_minus_overlap_map"]
    lines += ["", f"combined minus word overlap, MAP: {fmt(d['value'], d['ci95'])}", ""]
    lines += [
        "| probability | n | ECE raw | ECE Platt | acc@0.5 (Platt) | ROC-AUC |",
        "|---|---|---|---|---|---|",
    ]
    for name, key in (("P(relevant) judgement", "judge_calibration"), ("support check", "support")):
        b = r[key]
        ci = b["ci95"]
        lines.append(
            f"| {name} | {b['n']} | {fmt(b['ece_raw'], ci['ece_raw'])} | "
            f"{fmt(b['ece_calibrated'], ci['ece_calibrated'])} | "
            f"{fmt(b['accuracy_cal@0.5'], ci['accuracy_cal@0.5'])} | {b['roc_auc']:.3f} |"
        )
    sc = r["scorer_check"]
    lines += [
        "",
        f"Scorer check: the CNN run scores MAP {sc['map']:.4f} / MRR {sc['mrr']:.4f} "
        f"over {sc['questions']} questions (published 0.6190 / 0.6281).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
