"""What the viewer's JSON API returns, built from the store, :mod:`logprobe.analysis` and
:mod:`logprobe.calibration` (an optional extra: imported where used).

Large responses: the full analysis (gate decision, low-confidence and critical spans) is
computed for responses up to :data:`FULL_ANALYSIS_MAX_TOKENS` tokens and cached; above that
the page shows the stored metrics and analyses each page of tokens on its own.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from .._json import json_safe
from ..analysis import gate, token_view
from ..errors import CalibrationError, LogprobeError
from ..store import Store
from ..store.models import RunNotFoundError
from ..types import TokenLogprob

FULL_ANALYSIS_MAX_TOKENS = 20_000
PREDICTIONS_ARTIFACT = "predictions.jsonl"
CONFIDENCE_KINDS = ("mean", "sequence", "min")


def _plain_view(tokens: Sequence[TokenLogprob], offset: int) -> list[dict[str, Any]]:
    """Per-token view of tokens the analysis cannot read (shown plainly, not hidden)."""
    out = []
    for i, t in enumerate(tokens):
        out.append(
            {
                "index": offset + i,
                "text": t.token,
                "token": t.token,
                "bytes": None if t.bytes is None else list(t.bytes),
                "logprob": t.logprob,
                "prob": t.prob,
                "rank": t.rank,
                "entropy": t.entropy,
                "low_span": False,
                "critical": None,
                "alternatives": [
                    {
                        "token": a.token,
                        "bytes": None if a.bytes is None else list(a.bytes),
                        "logprob": a.logprob,
                        "prob": a.prob,
                        "chosen": a.token == t.token,
                    }
                    for a in t.top_logprobs
                ],
            }
        )
    return out


def token_page(tokens: Sequence[TokenLogprob], offset: int) -> list[dict[str, Any]]:
    """Per-token view (text, prob, colour bucket, alternatives...) with absolute indexes."""
    try:
        view = token_view(list(tokens))
    except LogprobeError:  # tokens analysis cannot read: still show them, plainly
        return json_safe(_plain_view(tokens, offset))
    for item in view:
        item["index"] = offset + item["index"]
    return view


class AnalysisCache:
    """Gate decisions of recently viewed responses (stored responses never change)."""

    def __init__(self, size: int = 16):
        self._size = size
        self._items: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: Store, response_id: int, n_tokens: int) -> dict[str, Any]:
        with self._lock:
            if response_id in self._items:
                self._items.move_to_end(response_id)
                return self._items[response_id]
        result = self._compute(store, response_id, n_tokens)
        with self._lock:
            self._items[response_id] = result
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return result

    @staticmethod
    def _compute(store: Store, response_id: int, n_tokens: int) -> dict[str, Any]:
        if n_tokens > FULL_ANALYSIS_MAX_TOKENS:
            return {
                "analysis": None,
                "note": f"{n_tokens} tokens: spans and the review "
                f"decision are computed per page above {FULL_ANALYSIS_MAX_TOKENS} tokens",
            }
        try:
            decision = gate(store.tokens(response_id))
        except LogprobeError as e:
            return {"analysis": None, "note": f"analysis failed: {e.message}"}
        return {"analysis": decision.to_dict(), "note": None}


def response_payload(store: Store, cache: AnalysisCache, response_id: int) -> dict[str, Any]:
    resp = store.response(response_id, with_tokens=False)
    analysis = cache.get(store, response_id, resp.n_tokens)
    return json_safe({"response": resp.to_dict(), **analysis})


def tokens_payload(
    store: Store, response_id: int, *, offset: int, limit: int, prompt: bool
) -> dict[str, Any]:
    resp = store.response(response_id, with_tokens=False)  # RunNotFoundError if unknown
    total = store.count_tokens(response_id, prompt=True) if prompt else resp.n_tokens
    toks = store.tokens(response_id, prompt=prompt, offset=offset, limit=limit)
    return {
        "response_id": response_id,
        "part": "prompt" if prompt else "completion",
        "total": total,
        "offset": offset,
        "limit": limit,
        "tokens": token_page(toks, offset),
    }


# -- calibration ------------------------------------------------------------------------------
def _confidence(resp: Any, kind: str) -> float | None:
    value = {"mean": resp.mean_logprob, "sequence": resp.sum_logprob, "min": resp.min_logprob}[kind]
    return None if value is None else math.exp(value)


def calibration_inputs(
    store: Store, run: str, source: str, kind: str
) -> tuple[list[float], list[bool], str, list[str]]:
    """``(confidence, correct, source used, notes)`` for a run's calibration pages.

    ``artifact``: the run's ``predictions.jsonl`` (rows as ``logprobe calibrate`` reads them);
    ``responses``: stored responses labelled ``correct``, confidence from their logprobs
    (``mean`` = exp(mean logprob), ``sequence`` = exp(sum), ``min`` = exp(min));
    ``auto``: the artifact when the run has one, else the labelled responses.
    """
    if kind not in CONFIDENCE_KINDS:
        raise CalibrationError(
            f"confidence must be one of {', '.join(CONFIDENCE_KINDS)}", param="confidence"
        )
    if source not in ("auto", "artifact", "responses"):
        raise CalibrationError("source must be auto, artifact or responses", param="source")
    if source in ("auto", "artifact"):
        try:
            raw = store.artifact(run, PREDICTIONS_ARTIFACT)
        except RunNotFoundError:
            if source == "artifact":
                raise
        else:
            return _from_artifact(raw)
    conf: list[float] = []
    correct: list[bool] = []
    for resp in store.responses(run):
        c = _confidence(resp, kind)
        if resp.correct is not None and c is not None:
            conf.append(c)
            correct.append(bool(resp.correct))
    if not conf:
        raise CalibrationError(
            f"run {run!r} has no {PREDICTIONS_ARTIFACT} artifact and no responses labelled "
            "correct/incorrect: attach one with `logprobe runs attach` or import responses "
            "with a 'correct' field",
            param="run",
        )
    return conf, correct, "responses", []


def _from_artifact(raw: bytes) -> tuple[list[float], list[bool], str, list[str]]:
    from ..calibration import predictions_from_rows

    rows: list[Any] = []
    for line in raw.decode("utf-8", "replace").split("\n"):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                rows.append(None)  # reported as a skipped row with its line number
    preds = predictions_from_rows(rows, source=PREDICTIONS_ARTIFACT)
    notes = [f"skipped {s}" for s in preds.skipped[:10]]
    return (
        [float(x) for x in preds.confidence],
        [bool(x) for x in preds.correct],
        "artifact",
        notes,
    )


def calibration_payload(
    store: Store, run: str, *, source: str, kind: str, n_bins: int
) -> dict[str, Any]:
    from ..calibration import reliability_data, risk_coverage_data

    if not 1 <= n_bins <= 100:
        raise CalibrationError("n_bins must be between 1 and 100", param="n_bins")
    conf, correct, used, notes = calibration_inputs(store, run, source, kind)
    return json_safe(
        {
            "run": run,
            "source": used,
            "confidence": kind if used == "responses" else "artifact",
            "n": len(conf),
            "notes": notes,
            "reliability": reliability_data(conf, correct, n_bins),
            "risk_coverage": risk_coverage_data(conf, correct),
        }
    )
