"""Read prediction JSONL files and store calibrators per model under ``$LOGPROBE_HOME``.

A prediction row is a JSON object; the fields read are

``confidence``  probability of the prediction (0..1). Missing: taken from ``probs[label]``
                (or the largest prob when there is no ``label``). ``raw_confidence``, when
                present (rows written with a calibrator applied), is used instead: calibrators
                are fitted on, and applied to, the model's raw confidences.
``correct``     true/false (or 1/0). Missing: ``label == gold`` when both are present.
``probs``       optional, ``{label: prob}`` or ``[prob, ...]`` (labels ``"0"``, ``"1"``, ...);
                ``logprobs`` (same shapes, natural-log) is accepted instead and softmaxed.
                Rows are renormalised to sum to 1 (top-k lists often fall a little short).
``label``       optional predicted label; ``gold`` optional true label (multi-class metrics and
                temperature scaling on the full distribution need ``probs`` and ``gold``).
``raw_*``       rows written with a calibrator applied carry the model's own ``raw_probs``,
                ``raw_label`` and ``raw_confidence``: those are read instead (calibrators are
                fitted on, and applied to, the model's raw outputs).
``signature``   the task signature (:class:`.signature.TaskSignature`) the row belongs to;
                ``logprobs`` + ``n_tokens`` give the label's mean token logprob (rule of thumb).

Bad rows (not JSON, not an object, confidence NaN or outside [0, 1], no ``correct`` and no
``label``/``gold`` to derive it, ...) are skipped and reported with their line number; blank lines
are ignored. Multi-class data is used only when every kept row has ``probs`` over the same
labels and a ``gold`` among them; otherwise a note says why it was left out.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._paths import logprobe_home
from ..errors import CalibrationError, InvalidRequestError
from .metrics import BoolArray, FloatArray
from .recalibrate import Calibrator, calibrator_from_dict
from .signature import TaskSignature

MAX_REPORTED_SKIPS = 20


@dataclass(frozen=True)
class SkippedRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Predictions:
    """Validated predictions: arrays aligned row by row, plus what was skipped and why."""

    confidence: FloatArray
    correct: BoolArray
    probs: FloatArray | None = None  # (n, k), columns in ``labels`` order
    gold: NDArray[np.int64] | None = None  # (n,) index into ``labels``
    pred: NDArray[np.int64] | None = None  # (n,) predicted label's index into ``labels``
    labels: tuple[str, ...] | None = None
    skipped: tuple[SkippedRow, ...] = ()
    notes: tuple[str, ...] = ()
    source: str | None = None
    n_skipped: int = field(default=0)
    signatures: tuple[TaskSignature, ...] = ()  # distinct signatures of the rows, in order
    n_unsigned: int = 0  # rows without a signature (older files)
    mean_logprob: FloatArray | None = None  # (n,) mean token logprob of the label

    @property
    def n(self) -> int:
        return int(self.confidence.size)

    @property
    def signature(self) -> TaskSignature | None:
        """The task of every row, or None when rows lack one or come from several tasks."""
        if len(self.signatures) == 1 and self.n_unsigned == 0:
            return self.signatures[0]
        return None

    def require_signature(self) -> TaskSignature:
        """:attr:`signature`, or a CalibrationError saying why there is none."""
        if self.signature is not None:
            return self.signature
        where = self.source or "the predictions"
        if len(self.signatures) > 1:
            raise CalibrationError(
                f"{where} mixes {len(self.signatures)} tasks ("
                + "; ".join(s.describe() for s in self.signatures[:3])
                + "): calibrate each task's rows separately",
                param="signature",
            )
        raise CalibrationError(
            f"{where} has {self.n_unsigned} row(s) without a task signature (written by an older "
            "logprobe or another tool), so there is no task to save a calibrator under: re-run "
            "`logprobe classify --dataset`, give --save PATH, or --no-save to only report",
            param="signature",
        )

    @property
    def multiclass(self) -> bool:
        return self.probs is not None and self.gold is not None

    def subset(self, idx: NDArray[np.int64]) -> Predictions:
        """The rows at ``idx`` (skips and notes are kept)."""
        return replace(
            self,
            confidence=self.confidence[idx],
            correct=self.correct[idx],
            probs=None if self.probs is None else self.probs[idx],
            gold=None if self.gold is None else self.gold[idx],
            pred=None if self.pred is None else self.pred[idx],
            mean_logprob=None if self.mean_logprob is None else self.mean_logprob[idx],
        )


@dataclass
class _Row:
    confidence: float
    correct: bool
    probs: dict[str, float] | None
    gold: str | None
    label: str | None
    used_raw: bool = False
    differs: bool = False
    signature: TaskSignature | None = None
    mean_logprob: float | None = None


class _BadRow(Exception):
    pass


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadRow(f"{name} is not a number ({value!r})")
    v = float(value)
    if not math.isfinite(v):
        raise _BadRow(f"{name} is not finite ({value!r})")
    return v


def _probs_of(row: Mapping[str, Any]) -> dict[str, float] | None:
    raw = row.get("raw_probs") if row.get("raw_probs") is not None else row.get("probs")
    is_log = False
    if raw is None and row.get("logprobs") is not None:
        raw, is_log = row["logprobs"], True
    if raw is None:
        return None
    name = "logprobs" if is_log else "probs"
    if isinstance(raw, list):
        raw = {str(i): v for i, v in enumerate(raw)}
    if not isinstance(raw, Mapping) or len(raw) < 2:
        raise _BadRow(f"{name} must be an object or list with at least 2 labels")
    values = {str(k): _number(v, f"{name}[{k!r}]") for k, v in raw.items()}
    if is_log:
        top = max(values.values())
        values = {k: math.exp(v - top) for k, v in values.items()}
    elif any(not 0 <= v <= 1 for v in values.values()):
        raise _BadRow("probs must lie in [0, 1]")
    total = sum(values.values())
    if total <= 0:
        raise _BadRow(f"{name} sum to zero")
    return {k: v / total for k, v in values.items()}


def _label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadRow(f"label/gold must be a string or an integer index ({value!r})")
    return str(value)


def _signature_of(row: Mapping[str, Any]) -> TaskSignature | None:
    if row.get("signature") is None:
        return None
    try:
        return TaskSignature.from_dict(row["signature"])
    except CalibrationError as e:
        raise _BadRow(f"bad signature: {e.message}") from None


def _mean_logprob(row: Mapping[str, Any], label: str | None) -> float | None:
    lps, ntok = row.get("logprobs"), row.get("n_tokens")
    if label is None or not isinstance(lps, Mapping) or not isinstance(ntok, Mapping):
        return None
    lp, n = lps.get(label), ntok.get(label)
    if isinstance(lp, bool) or not isinstance(lp, int | float) or not math.isfinite(lp):
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return None
    return float(lp) / n


def parse_row(row: Any) -> _Row:
    """One prediction row -> validated fields (raises ``_BadRow`` with the reason)."""
    if not isinstance(row, Mapping):
        raise _BadRow("not a JSON object")
    probs = _probs_of(row)
    raw_row = row.get("raw_probs") is not None or row.get("raw_label") is not None
    label = _label(row.get("raw_label") if raw_row else row.get("label"))
    gold = _label(row.get("gold"))
    used_raw = row.get("raw_confidence") is not None
    if used_raw:
        conf = _number(row["raw_confidence"], "raw_confidence")
        shown = row.get("confidence")
        used_raw = isinstance(shown, int | float) and abs(float(shown) - conf) > 1e-9
    elif row.get("confidence") is not None:
        conf = _number(row["confidence"], "confidence")
    elif probs is not None:
        conf = probs[label] if label in probs else max(probs.values())
    else:
        raise _BadRow("no confidence (and no probs to take it from)")
    if not 0 <= conf <= 1:
        raise _BadRow(f"confidence {conf:g} outside [0, 1]")
    correct = row.get("raw_correct") if raw_row else row.get("correct")
    if correct is None:
        if label is None and probs is not None:
            label = max(probs, key=probs.__getitem__)
        if label is None or gold is None:
            raise _BadRow("no correct (and no label and gold to derive it)")
        correct = label == gold
    elif isinstance(correct, int | float) and not isinstance(correct, bool) and correct in (0, 1):
        correct = bool(correct)
    if not isinstance(correct, bool):
        raise _BadRow(f"correct must be true/false or 1/0 ({correct!r})")
    differs = probs is not None and label in probs and abs(probs[label] - conf) > 1e-6
    return _Row(
        conf,
        correct,
        probs,
        gold,
        label,
        used_raw,
        differs,
        _signature_of(row),
        _mean_logprob(row, label),
    )


def _iter_lines(path: Path) -> Any:
    with path.open("rb") as fh:
        yield from enumerate(fh, start=1)


def read_predictions(path: str | Path) -> Predictions:
    """Read a predictions JSONL file (see module docstring); bad rows are skipped and reported.

    Raises:
        InvalidRequestError: the file cannot be read.
        CalibrationError: no usable row at all.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidRequestError(f"predictions file not found: {p}", param="file")
    rows: list[_Row] = []
    skipped: list[SkippedRow] = []
    try:
        for lineno, raw in _iter_lines(p):
            if not raw.strip():
                continue
            try:
                rows.append(parse_row(json.loads(raw.decode("utf-8"))))
            except UnicodeDecodeError:
                skipped.append(SkippedRow(lineno, "not UTF-8"))
            except json.JSONDecodeError as e:
                skipped.append(SkippedRow(lineno, f"not JSON ({e.msg})"))
            except _BadRow as e:
                skipped.append(SkippedRow(lineno, str(e)))
    except OSError as e:
        raise InvalidRequestError(f"cannot read {p}: {e.strerror or e}", param="file") from None
    if not rows:
        first = f" (first problem: {skipped[0]})" if skipped else " (the file is empty)"
        raise CalibrationError(f"no usable prediction rows in {p}{first}", param="file")
    return _assemble(rows, skipped, str(p))


def predictions_from_rows(rows: list[Any], source: str | None = None) -> Predictions:
    """Like :func:`read_predictions` for rows already in memory (index + 1 = "line")."""
    good: list[_Row] = []
    skipped: list[SkippedRow] = []
    for i, row in enumerate(rows, start=1):
        try:
            good.append(parse_row(row))
        except _BadRow as e:
            skipped.append(SkippedRow(i, str(e)))
    if not good:
        first = f" (first problem: {skipped[0]})" if skipped else ""
        raise CalibrationError(f"no usable prediction rows{first}", param="rows")
    return _assemble(good, skipped, source)


def _assemble(rows: list[_Row], skipped: list[SkippedRow], source: str | None) -> Predictions:
    conf = np.array([r.confidence for r in rows], dtype=np.float64)
    corr = np.array([r.correct for r in rows], dtype=np.bool_)
    probs, gold, pred, labels, notes = _multiclass(rows)
    n_raw, n_diff = sum(r.used_raw for r in rows), sum(r.differs for r in rows)
    if n_raw:
        notes.append(
            f"{n_raw} row(s) were calibrated when written: their raw outputs "
            "(raw_confidence, raw_probs) are used"
        )
    if n_diff:
        notes.append(
            f"{n_diff} row(s) have a confidence that differs from probs[label] "
            "(already calibrated?): a calibrator fitted on them stacks on the first"
        )
    sigs = tuple(dict.fromkeys(r.signature for r in rows if r.signature is not None))
    n_unsigned = sum(r.signature is None for r in rows)
    if len(sigs) > 1:
        notes.append(f"rows come from {len(sigs)} different tasks (signatures)")
    mlp = [r.mean_logprob for r in rows]
    mean_lp = None if any(v is None for v in mlp) else np.array(mlp, dtype=np.float64)
    return Predictions(
        conf,
        corr,
        probs,
        gold,
        pred,
        labels,
        tuple(skipped[:MAX_REPORTED_SKIPS]),
        tuple(notes),
        source,
        n_skipped=len(skipped),
        signatures=sigs,
        n_unsigned=n_unsigned,
        mean_logprob=mean_lp,
    )


def _multiclass(rows: list[_Row]) -> tuple[Any, Any, Any, Any, list[str]]:
    with_probs = [r for r in rows if r.probs is not None]
    if not with_probs:
        return None, None, None, None, []
    labels = tuple(with_probs[0].probs or {})
    label_set = set(labels)
    if len(with_probs) < len(rows):
        why = f"{len(rows) - len(with_probs)} row(s) have no probs"
    elif any(set(r.probs or {}) != label_set for r in rows):
        why = "rows have probs over different label sets"
    elif any(r.gold not in label_set for r in rows):
        why = "some rows have no gold label among the probs' labels"
    else:
        probs = np.array([[r.probs[k] for k in labels] for r in rows if r.probs], dtype=np.float64)
        index = {k: i for i, k in enumerate(labels)}
        gold = np.array([index[str(r.gold)] for r in rows], dtype=np.int64)
        pred = np.array(
            [
                index[r.label] if r.label in index else int(np.argmax(row))
                for r, row in zip(rows, probs, strict=True)
            ],
            dtype=np.int64,
        )
        return probs, gold, pred, labels, []
    return None, None, None, None, [f"multi-class metrics left out: {why}"]


# --------------------------------------------------------------------------- calibrator files


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_stem(model: str) -> str:
    if not model or not model.strip():
        raise CalibrationError("model name must not be empty", param="model")
    stem = _SAFE.sub("_", model).strip("._") or "model"
    if stem != model:
        stem = f"{stem}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"
    return stem


def calibrator_path(model: str) -> Path:
    """``$LOGPROBE_HOME/calibrators/<model>.json`` (per-model files of logprobe 0.1, which
    ``classify`` no longer applies by itself); a name with unsafe characters (``/``, spaces)
    gets them replaced by ``_`` and a short hash appended, so distinct names never collide."""
    return logprobe_home() / "calibrators" / f"{_safe_stem(model)}.json"


def task_calibrator_path(signature: TaskSignature) -> Path:
    """``$LOGPROBE_HOME/calibrators/tasks/<model>/<signature id>.json``."""
    return (
        logprobe_home()
        / "calibrators"
        / "tasks"
        / _safe_stem(signature.model)
        / f"{signature.id}.json"
    )


def load_task_calibrator(signature: TaskSignature) -> tuple[Calibrator, Path] | None:
    """The calibrator saved for exactly this task and its path (None when there is none).

    Raises:
        CalibrationError: the file is malformed or holds another task's calibrator.
    """
    p = task_calibrator_path(signature)
    if not p.is_file():
        return None
    cal = read_calibrator(p)
    if cal.signature != signature:
        got = "no signature" if cal.signature is None else cal.signature.describe()
        raise CalibrationError(
            f"{p} holds a calibrator for another task ({got}), not {signature.describe()}",
            param="calibrator",
        )
    return cal, p


def save_calibrator(calibrator: Calibrator, path: str | Path | None = None) -> Path:
    """Write ``calibrator`` as JSON (atomically) to ``path``, or by default under its task
    signature (:func:`task_calibrator_path`), or, with no signature, under its model name."""
    if path is None:
        if calibrator.signature is not None:
            path = task_calibrator_path(calibrator.signature)
        elif calibrator.model:
            path = calibrator_path(calibrator.model)
        else:
            raise CalibrationError(
                "give a path or a calibrator with a task signature", param="signature"
            )
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".calibrator-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(calibrator.to_dict(), fh, indent=2, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, target)
    except OSError as e:
        raise CalibrationError(
            f"cannot write calibrator {target}: {e.strerror or e}", param="save"
        ) from None
    return target


def read_calibrator(path: str | Path) -> Calibrator:
    """Load a calibrator JSON file; CalibrationError if it is missing or malformed."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"calibrator file not found: {p}", param="path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CalibrationError(f"cannot read calibrator {p}: {e}", param="path") from None
    try:
        return calibrator_from_dict(data)
    except CalibrationError as e:
        raise CalibrationError(f"{p}: {e.message}", param=e.param) from None


def load_calibrator(
    model: str | None = None, *, path: str | Path | None = None
) -> Calibrator | None:
    """The calibrator saved for ``model`` (``None`` when there is none), or the one at ``path``.

    Raises:
        CalibrationError: the file exists but is malformed or was saved for another model, or
            an explicit ``path`` does not exist.
    """
    if path is not None:
        return read_calibrator(path)
    if model is None:
        raise CalibrationError("load_calibrator needs a model name or a path", param="model")
    p = calibrator_path(model)
    if not p.is_file():
        return None
    cal = read_calibrator(p)
    if cal.model is not None and cal.model != model:
        raise CalibrationError(
            f"{p} holds a calibrator for {cal.model!r}, not {model!r}", param="model"
        )
    return cal
