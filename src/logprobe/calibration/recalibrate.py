"""Recalibration maps fitted on held-out predictions: temperature scaling, Platt, isotonic.

A :class:`Calibrator` is a small, JSON-serialisable map from raw model probabilities to
calibrated ones. Applying one needs only numpy (scikit-learn is used only to *fit* Platt and
isotonic maps, and is imported lazily). ``Calibrator.apply`` takes

* a confidence (``float``) and returns the calibrated confidence;
* one probability distribution (``dict`` label -> prob, ``list``/``tuple`` or 1-D array) and
  returns the calibrated distribution of the same kind; a 2-D array is a batch of distributions.

Temperature scaling divides the log-probabilities by ``T`` and renormalises (argmax never
changes). On a bare confidence it acts on the two-way logit: ``sigmoid(logit(c) / T)``, which
is exact for two classes. Platt and isotonic maps calibrate the *top-label* confidence; applied
to a distribution they replace the predicted label's probability by the calibrated confidence
and scale the other labels to share the remainder in their original proportions.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, overload

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, logit

from ..errors import CalibrationError
from .metrics import EPS, BoolArray, FloatArray, check_inputs, check_probs
from .signature import TaskSignature

Method = Literal["temperature", "platt", "isotonic", "vector", "matrix", "contextual"]
METHODS: tuple[str, ...] = ("temperature", "platt", "isotonic", "vector", "matrix", "contextual")
CALIBRATOR_FORMAT = "logprobe.calibrator/2"
READABLE_FORMATS = ("logprobe.calibrator/1", CALIBRATOR_FORMAT)
"""Version 1 files (no task signature) are still read; they apply only when forced."""
MIN_FIT_POINTS = 10
"""Fewest predictions (with at least one right and one wrong) a calibrator is fitted on."""
TEMPERATURE_BOUNDS = (0.01, 100.0)

ProbsLike = Mapping[str, float] | Sequence[float] | np.ndarray


def _logit(conf: FloatArray) -> FloatArray:
    return np.asarray(logit(np.clip(conf, EPS, 1 - EPS)), dtype=np.float64)


def require_sklearn(what: str) -> Any:
    """Import scikit-learn or raise a CalibrationError saying how to install it."""
    try:
        import sklearn  # noqa: F401  (checks the optional extra is present)
    except ImportError:
        raise CalibrationError(
            f"{what} needs scikit-learn: pip install 'logprobe[calibration]'", param="method"
        ) from None
    return sklearn


@dataclass(frozen=True, kw_only=True)
class Calibrator(ABC):
    """A fitted recalibration map (see module docstring). Subclasses hold the parameters."""

    method: ClassVar[str]
    changes_decision: ClassVar[bool] = True
    """True when the calibrated distribution's argmax is the decision (distribution maps);
    False for maps of the top-label confidence only (Platt, isotonic): the label is kept."""
    needs_label_order: ClassVar[bool] = False
    """True when the parameters refer to labels by position (vector, matrix, contextual)."""
    model: str | None = None
    n_fit: int = 0
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)
    signature: TaskSignature | None = None
    labels: tuple[str, ...] | None = None

    @abstractmethod
    def _map(self, conf: FloatArray) -> FloatArray:
        """Calibrated confidences for raw top-label confidences (validated 1-D array)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The map's parameters as JSON-ready values."""

    def apply_confidence(self, confidence: ArrayLike) -> FloatArray:
        """Calibrated confidences for a batch (1-D array-like) of raw confidences."""
        from .metrics import check_confidence

        return np.clip(self._map(check_confidence(confidence)), 0.0, 1.0)

    def apply_probs(self, probs: ArrayLike) -> FloatArray:
        """Calibrated distributions for a ``(n, k)`` (or ``(k,)``) probability array."""
        p = _as_prob_matrix(probs)
        out = self._map_probs(p)
        return out[0] if np.ndim(probs) == 1 else out

    def _map_probs(self, p: FloatArray) -> FloatArray:
        rows = np.arange(p.shape[0])
        top = p.argmax(axis=1)
        p_top = p[rows, top]
        new_top = np.clip(self._map(p_top), 0.0, 1.0)
        rest = 1.0 - p_top
        k = p.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(rest > 0, (1.0 - new_top) / rest, 0.0)
        out = p * scale[:, None]
        # a one-hot row has no proportions to keep: the others share the remainder equally
        flat = rest <= 0
        out[flat] = ((1.0 - new_top[flat]) / (k - 1))[:, None]
        out[rows, top] = new_top
        return out

    @overload
    def apply(self, x: float) -> float: ...
    @overload
    def apply(self, x: Mapping[str, float]) -> dict[str, float]: ...
    @overload
    def apply(self, x: Sequence[float]) -> list[float]: ...
    @overload
    def apply(self, x: np.ndarray) -> np.ndarray: ...

    def apply(self, x: Any) -> Any:
        """Calibrate a confidence (float) or a distribution (dict, list/tuple, 1-D/2-D array)."""
        if isinstance(x, bool):
            raise CalibrationError(
                "apply() takes a confidence or probabilities, not a bool", param="confidence"
            )
        if isinstance(x, int | float | np.floating | np.integer):
            return float(self.apply_confidence([float(x)])[0])
        if isinstance(x, Mapping):
            labels = self._label_order(x)
            out = self.apply_probs([x[label] for label in labels])
            return {label: float(v) for label, v in zip(labels, out, strict=True)}
        if isinstance(x, np.ndarray):
            return self.apply_probs(x)
        if isinstance(x, Sequence) and not isinstance(x, str | bytes):
            return [float(v) for v in self.apply_probs(list(x))]
        raise CalibrationError(
            f"apply() takes a float, a dict label->prob or a list of probs, not {type(x).__name__}",
            param="confidence",
        )

    @property
    def label_order(self) -> tuple[str, ...] | None:
        """The labels, in the order the map's parameters refer to (None: any order)."""
        if self.labels is not None:
            return self.labels
        return None if self.signature is None else self.signature.labels

    def _label_order(self, probs: Mapping[str, float]) -> list[str]:
        order = self.label_order
        if order is None or not self.needs_label_order:
            return list(probs)
        if set(order) != set(probs):
            raise CalibrationError(
                f"{self.method} calibrator was fitted on labels [{', '.join(order)}], got "
                f"[{', '.join(probs)}]",
                param="labels",
            )
        return list(order)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **common: Any) -> Calibrator:
        """Rebuild from :meth:`params` (subclasses override; raise KeyError/ValueError)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :func:`calibrator_from_dict` reads it back."""
        return {
            "format": CALIBRATOR_FORMAT,
            "method": self.method,
            "model": self.model,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "labels": None if self.labels is None else list(self.labels),
            "n_fit": self.n_fit,
            "created": self.created,
            "params": self.params(),
            "info": dict(self.info),
        }


def _as_prob_matrix(probs: ArrayLike) -> FloatArray:
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError("probs must be numbers", param="probs") from None
    if p.ndim == 1:
        p = p[None, :]
    gold = np.zeros(p.shape[0] if p.ndim == 2 else 0, dtype=np.int64)
    p, _ = check_probs(p, gold)
    return p


@dataclass(frozen=True, kw_only=True)
class TemperatureCalibrator(Calibrator):
    """``softmax(log p / T)``; ``T > 1`` softens over-confident models, ``T < 1`` sharpens."""

    method: ClassVar[str] = "temperature"
    temperature: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise CalibrationError(
                f"temperature must be > 0, got {self.temperature!r}", param="temperature"
            )

    def _map(self, conf: FloatArray) -> FloatArray:
        return np.asarray(expit(_logit(conf) / self.temperature), dtype=np.float64)

    def _map_probs(self, p: FloatArray) -> FloatArray:
        return np.exp(log_softmax(np.log(np.clip(p, EPS, 1.0)) / self.temperature, axis=1))

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **common: Any) -> Calibrator:
        return cls(temperature=float(params["temperature"]), **common)


@dataclass(frozen=True, kw_only=True)
class PlattCalibrator(Calibrator):
    """``sigmoid(slope * logit(c) + intercept)``: logistic regression on the confidence's logit."""

    method: ClassVar[str] = "platt"
    changes_decision: ClassVar[bool] = False
    slope: float
    intercept: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slope) and math.isfinite(self.intercept)):
            raise CalibrationError("Platt slope and intercept must be finite", param="params")

    def _map(self, conf: FloatArray) -> FloatArray:
        return np.asarray(expit(self.slope * _logit(conf) + self.intercept), dtype=np.float64)

    def params(self) -> dict[str, Any]:
        return {"slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **common: Any) -> Calibrator:
        return cls(slope=float(params["slope"]), intercept=float(params["intercept"]), **common)


@dataclass(frozen=True, kw_only=True)
class IsotonicCalibrator(Calibrator):
    """A non-decreasing step-linear map through ``(x[i], y[i])``, flat outside ``[x[0], x[-1]]``."""

    method: ClassVar[str] = "isotonic"
    changes_decision: ClassVar[bool] = False
    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        x, y = np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64)
        if x.ndim != 1 or x.size == 0 or x.shape != y.shape:
            raise CalibrationError(
                "isotonic x and y must be non-empty and of equal length", param="params"
            )
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise CalibrationError("isotonic x and y must be finite", param="params")
        if np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0) or y.min() < 0 or y.max() > 1:
            raise CalibrationError(
                "isotonic x and y must be non-decreasing, y in [0, 1]", param="params"
            )

    def _map(self, conf: FloatArray) -> FloatArray:
        return np.interp(conf, np.asarray(self.x), np.asarray(self.y))

    def params(self) -> dict[str, Any]:
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **common: Any) -> Calibrator:
        return cls(
            x=tuple(float(v) for v in params["x"]), y=tuple(float(v) for v in params["y"]), **common
        )


_CLASSES: dict[str, type[Calibrator]] = {
    "temperature": TemperatureCalibrator,
    "platt": PlattCalibrator,
    "isotonic": IsotonicCalibrator,
}


def register_calibrator(cls: type[Calibrator]) -> type[Calibrator]:
    """Make ``cls`` readable by :func:`calibrator_from_dict` (class decorator)."""
    _CLASSES[cls.method] = cls
    return cls


def calibrator_from_dict(d: Mapping[str, Any]) -> Calibrator:
    """Rebuild a calibrator written by :meth:`Calibrator.to_dict` (validates every field).

    Version 1 files (written before task signatures) are read with ``signature=None``.
    """
    if not isinstance(d, Mapping) or d.get("format") not in READABLE_FORMATS:
        raise CalibrationError(
            f"not a calibrator file (expected format {CALIBRATOR_FORMAT!r})", param="format"
        )
    method = d.get("method")
    if method not in _CLASSES:
        raise CalibrationError(f"unknown calibration method {method!r}", param="method")
    params = d.get("params")
    if not isinstance(params, Mapping):
        raise CalibrationError("calibrator params must be an object", param="params")
    labels = d.get("labels")
    common: dict[str, Any] = {
        "model": d.get("model"),
        "n_fit": int(d.get("n_fit") or 0),
        "info": dict(d.get("info") or {}),
        "signature": None
        if d.get("signature") is None
        else TaskSignature.from_dict(d["signature"]),
        "labels": None if labels is None else tuple(str(x) for x in labels),
    }
    if d.get("created"):
        common["created"] = str(d["created"])
    try:
        return _CLASSES[method].from_params(params, **common)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CalibrationError):
            raise
        raise CalibrationError(f"bad {method} calibrator params: {e!r}", param="params") from None


# --------------------------------------------------------------------------- fitting


def _check_fit_data(corr: BoolArray, method: str) -> None:
    n, n_ok = corr.size, int(corr.sum())
    if n < MIN_FIT_POINTS:
        raise CalibrationError(
            f"{method} needs at least {MIN_FIT_POINTS} predictions to fit, got {n}", param="fit"
        )
    if n_ok in (0, n):
        kind = "correct" if n_ok else "wrong"
        raise CalibrationError(
            f"{method} needs both correct and wrong predictions to fit; all {n} are {kind}",
            param="correct",
        )


def fit_temperature(
    confidence: ArrayLike | None = None,
    correct: ArrayLike | None = None,
    *,
    probs: ArrayLike | None = None,
    gold: ArrayLike | None = None,
    model: str | None = None,
) -> TemperatureCalibrator:
    """Fit ``T`` by minimising the negative log-likelihood (bounded search on ``log T``).

    With ``probs`` and ``gold`` the NLL is the multi-class one of the gold label under
    ``softmax(log p / T)``; otherwise the binary NLL of ``correct`` under
    ``sigmoid(logit(confidence) / T)``.
    """
    lo, hi = (math.log(b) for b in TEMPERATURE_BOUNDS)
    if probs is not None and gold is not None:
        p, g = check_probs(probs, gold)
        _check_fit_data(p.argmax(axis=1) == g, "temperature scaling")
        logits = np.log(np.clip(p, EPS, 1.0))  # (n, k): log-probs are logits up to a constant
        rows = np.arange(p.shape[0])

        def nll(log_t: float) -> float:
            return float(-np.mean(log_softmax(logits / math.exp(log_t), axis=1)[rows, g]))

        n = p.shape[0]
    else:
        if confidence is None or correct is None:
            raise CalibrationError(
                "temperature scaling needs probs+gold or confidence+correct", param="probs"
            )
        conf, corr = check_inputs(confidence, correct)
        _check_fit_data(corr, "temperature scaling")
        z, y = _logit(conf), corr.astype(np.float64)

        def nll(log_t: float) -> float:
            q = np.clip(expit(z / math.exp(log_t)), EPS, 1 - EPS)
            return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))

        n = conf.size
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    t = float(math.exp(res.x))
    info = {
        "at_bound": bool(min(abs(res.x - lo), abs(res.x - hi)) < 1e-3),
        "input": "probs" if probs is not None and gold is not None else "confidence",
    }
    return TemperatureCalibrator(temperature=t, model=model, n_fit=n, info=info)


def fit_platt(
    confidence: ArrayLike, correct: ArrayLike, *, model: str | None = None
) -> PlattCalibrator:
    """Platt scaling: unregularised logistic regression of correctness on ``logit(confidence)``."""
    conf, corr = check_inputs(confidence, correct)
    _check_fit_data(corr, "Platt scaling")
    require_sklearn("Platt scaling")
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e12, max_iter=1000)  # effectively unpenalised on one feature
    lr.fit(_logit(conf)[:, None], corr.astype(np.int64))
    return PlattCalibrator(
        slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]), model=model, n_fit=conf.size
    )


def fit_isotonic(
    confidence: ArrayLike, correct: ArrayLike, *, model: str | None = None
) -> IsotonicCalibrator:
    """Isotonic regression of correctness on confidence (non-decreasing, clipped to [0, 1])."""
    conf, corr = check_inputs(confidence, correct)
    _check_fit_data(corr, "isotonic regression")
    require_sklearn("isotonic regression")
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(conf, corr.astype(np.float64))
    return IsotonicCalibrator(
        x=tuple(float(v) for v in iso.X_thresholds_),
        y=tuple(float(v) for v in iso.y_thresholds_),
        model=model,
        n_fit=conf.size,
    )


def fit_calibrator(
    method: str,
    confidence: ArrayLike | None = None,
    correct: ArrayLike | None = None,
    *,
    probs: ArrayLike | None = None,
    gold: ArrayLike | None = None,
    model: str | None = None,
    **common: Any,
) -> Calibrator:
    """Fit a calibrator by method name (``temperature``, ``platt``, ``isotonic``, ``vector`` or
    ``matrix``; ``contextual`` needs the engine: see :func:`.scaling.fit_contextual`).
    ``common`` (``signature``, ``labels``) is stored on the calibrator."""
    if method == "temperature":
        cal: Calibrator = fit_temperature(confidence, correct, probs=probs, gold=gold, model=model)
    elif method in ("vector", "matrix"):
        from .scaling import fit_matrix, fit_vector

        if probs is None or gold is None:
            raise CalibrationError(
                f"{method} scaling needs probs over the labels and gold", param="probs"
            )
        fit = fit_vector if method == "vector" else fit_matrix
        return fit(probs, gold, model=model, **common)
    elif method == "contextual":
        raise CalibrationError(
            "contextual calibration is fitted from the engine's content-free "
            "predictions (fit_contextual), not from labelled rows",
            param="method",
        )
    elif method not in ("platt", "isotonic"):
        raise CalibrationError(
            f"unknown method {method!r}; choose one of {', '.join(METHODS)}", param="method"
        )
    elif confidence is None or correct is None:
        raise CalibrationError(f"{method} needs confidence and correct", param="confidence")
    elif method == "platt":
        cal = fit_platt(confidence, correct, model=model)
    else:
        cal = fit_isotonic(confidence, correct, model=model)
    return replace(cal, **common) if common else cal


def split_indices(n: int, fit_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into (fit, evaluation) index arrays.

    ``fit_fraction == 1`` fits on everything and leaves the evaluation part empty.
    """
    if not 0 < fit_fraction <= 1:
        raise CalibrationError(
            f"fit fraction must be in (0, 1], got {fit_fraction}", param="fit_split"
        )
    perm = np.random.default_rng(seed).permutation(n)
    n_fit = n if fit_fraction == 1 else min(max(int(round(n * fit_fraction)), 1), n - 1)
    return np.sort(perm[:n_fit]), np.sort(perm[n_fit:])
