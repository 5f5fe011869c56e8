"""Calibrators that can change the decision: vector and matrix scaling, contextual calibration.

All three act on the K label log-probabilities ``x = log p`` (``p`` the label distribution a
classifier reported, clipped at ``EPS``) and return ``softmax(z)``:

=============  ==================================  =============================================
method         logits ``z``                        fitted by
=============  ==================================  =============================================
vector         ``s * x + b`` (one shared scale,    L2-penalised multinomial NLL (scipy L-BFGS);
               one bias per label)                 the bias moves the decision, ``s`` is the
                                                   temperature (``s = 1/T``)
matrix         ``W x + b`` (K x K matrix, K        L2-regularised multinomial logistic
               biases)                             regression (scikit-learn), the strength
                                                   picked by cross-validated log loss
contextual     ``x - log p_cf``                    no labels: ``p_cf`` is the mean distribution
                                                   the model gives to content-free inputs
                                                   ("N/A", "", "[MASK]") in the same prompt
                                                   (Zhao et al. 2021, "Calibrate Before Use")
=============  ==================================  =============================================

A bias-only fit is vector scaling with ``s = 1``; the shared scale is fitted too because a bias
alone cannot undo over-confidence. The parameters refer to labels by position, so these
calibrators keep their label order and refuse a distribution over other labels. They map
distributions only: a bare confidence cannot be recalibrated without the other labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import log_softmax

from ..errors import CalibrationError
from .metrics import EPS, FloatArray, check_probs
from .recalibrate import MIN_FIT_POINTS, Calibrator, register_calibrator, require_sklearn

VECTOR_L2 = 1.0
"""Penalty on the vector biases: ``VECTOR_L2 * |b|^2 / n`` added to the mean NLL."""
MATRIX_CS = (0.01, 0.1, 1.0, 10.0, 100.0)
"""Inverse regularisation strengths tried for matrix scaling (scikit-learn's ``C``)."""
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")
"""Content-free inputs of contextual calibration (Zhao et al. 2021)."""


def log_features(p: FloatArray) -> FloatArray:
    """``log p`` clipped at ``log EPS``: (n, k) -> (n, k)."""
    return np.log(np.clip(p, EPS, 1.0))


class _DistributionMap(Calibrator):
    """Shared parts of the maps defined on whole label distributions."""

    needs_label_order: ClassVar[bool] = True

    def _map(self, conf: FloatArray) -> FloatArray:
        raise CalibrationError(
            f"{self.method} calibration maps label distributions: give probs over the labels, "
            "not a bare confidence",
            param="probs",
        )

    def _check_k(self, p: FloatArray, k: int) -> None:
        if p.shape[1] != k:
            raise CalibrationError(
                f"{self.method} calibrator was fitted on {k} labels, got {p.shape[1]}",
                param="probs",
            )


@register_calibrator
@dataclass(frozen=True, kw_only=True)
class VectorCalibrator(_DistributionMap):
    """``softmax(scale * log p + bias)``."""

    method: ClassVar[str] = "vector"
    scale: float
    bias: tuple[float, ...]

    def __post_init__(self) -> None:
        b = np.asarray(self.bias, dtype=np.float64)
        if b.ndim != 1 or b.size < 2 or not np.all(np.isfinite(b)) or not np.isfinite(self.scale):
            raise CalibrationError(
                "vector scaling needs a finite scale and >= 2 finite biases", param="params"
            )

    def _map_probs(self, p: FloatArray) -> FloatArray:
        self._check_k(p, len(self.bias))
        z = self.scale * log_features(p) + np.asarray(self.bias)
        return np.exp(log_softmax(z, axis=1))

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale, "bias": list(self.bias)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **common: Any) -> Calibrator:
        return cls(
            scale=float(params["scale"]), bias=tuple(float(v) for v in params["bias"]), **common
        )


@register_calibrator
@dataclass(frozen=True, kw_only=True)
class MatrixCalibrator(_DistributionMap):
    """``softmax(W log p + b)``; ``W`` is K x K, row k gives label k's logit."""

    method: ClassVar[str] = "matrix"
    weights: tuple[tuple[float, ...], ...]
    bias: tuple[float, ...]

    def __post_init__(self) -> None:
        w, b = np.asarray(self.weights, dtype=np.float64), np.asarray(self.bias, dtype=np.float64)
        if (
            b.ndim != 1
            or b.size < 2
            or w.shape != (b.size, b.size)
            or not (np.all(np.isfinite(w)) and np.all(np.isfinite(b)))
        ):
            raise CalibrationError(
                "matrix scaling needs a finite K x K matrix and K biases", param="params"
            )

    def _map_probs(self, p: FloatArray) -> FloatArray:
        self._check_k(p, len(self.bias))
        z = log_features(p) @ np.asarray(self.weights).T + np.asarray(self.bias)
        return np.exp(log_softmax(z, axis=1))

    def params(self) -> dict[str, Any]:
        return {"weights": [list(r) for r in self.weights], "bias": list(self.bias)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **common: Any) -> Calibrator:
        return cls(
            weights=tuple(tuple(float(v) for v in row) for row in params["weights"]),
            bias=tuple(float(v) for v in params["bias"]),
            **common,
        )


@register_calibrator
@dataclass(frozen=True, kw_only=True)
class ContextualCalibrator(_DistributionMap):
    """``softmax(log p - log prior)``: the content-free prior divided out."""

    method: ClassVar[str] = "contextual"
    prior: tuple[float, ...]

    def __post_init__(self) -> None:
        q = np.asarray(self.prior, dtype=np.float64)
        if q.ndim != 1 or q.size < 2 or not np.all(np.isfinite(q)) or np.any(q <= 0):
            raise CalibrationError(
                "contextual calibration needs >= 2 positive prior probs", param="params"
            )

    def _map_probs(self, p: FloatArray) -> FloatArray:
        self._check_k(p, len(self.prior))
        z = log_features(p) - np.log(np.asarray(self.prior))
        return np.exp(log_softmax(z, axis=1))

    def params(self) -> dict[str, Any]:
        return {"prior": list(self.prior)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **common: Any) -> Calibrator:
        return cls(prior=tuple(float(v) for v in params["prior"]), **common)


# --------------------------------------------------------------------------- fitting


def _fit_data(probs: ArrayLike, gold: ArrayLike, what: str) -> tuple[FloatArray, np.ndarray]:
    p, g = check_probs(probs, gold)
    if p.shape[0] < MIN_FIT_POINTS:
        raise CalibrationError(
            f"{what} needs at least {MIN_FIT_POINTS} labelled rows to fit, got {p.shape[0]}",
            param="fit",
        )
    if np.unique(g).size < 2:
        raise CalibrationError(
            f"{what} needs rows of at least two gold labels to fit", param="gold"
        )
    return p, g


def fit_vector(
    probs: ArrayLike,
    gold: ArrayLike,
    *,
    l2: float = VECTOR_L2,
    **common: Any,
) -> VectorCalibrator:
    """Vector scaling: minimise mean NLL + ``l2 * |b|^2 / n`` over the scale and the biases."""
    p, g = _fit_data(probs, gold, "vector scaling")
    x = log_features(p)  # (n, k)
    n, k = x.shape
    onehot = np.eye(k)[g]  # (n, k)

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        s, b = theta[0], theta[1:]
        logq = log_softmax(s * x + b, axis=1)  # (n, k)
        resid = (np.exp(logq) - onehot) / n  # d mean-NLL / dz
        value = -float(np.sum(logq * onehot)) / n + l2 * float(b @ b) / n
        grad = np.concatenate([[float(np.sum(resid * x))], resid.sum(axis=0) + 2 * l2 * b / n])
        return value, grad

    theta0 = np.concatenate([[1.0], np.zeros(k)])
    bounds = [(0.01, 100.0)] + [(None, None)] * k
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    b = res.x[1:] - res.x[1:].mean()  # softmax ignores a common shift
    info = {"converged": bool(res.success), "l2": l2}
    return VectorCalibrator(
        scale=float(res.x[0]),
        bias=tuple(float(v) for v in b),
        n_fit=n,
        info={**info, **dict(common.pop("info", {}))},
        **common,
    )


def _matrix_fit(x: FloatArray, g: np.ndarray, k: int, c: float) -> tuple[FloatArray, FloatArray]:
    """(W, b) of an L2 logistic regression with strength ``C = c``; unseen labels get a row of 0
    and a bias far below the others."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    lr = LogisticRegression(C=c, max_iter=5000)
    with threadpool_limits(limits=1):  # a 4-feature fit: BLAS threads only add contention
        lr.fit(x, g)
    classes = [int(v) for v in lr.classes_]
    w, b = np.zeros((k, k)), np.zeros(k)
    if len(classes) == 2:  # sklearn's binary form: one row
        w[classes[1]], b[classes[1]] = lr.coef_[0], lr.intercept_[0]
    else:
        for row, cls in enumerate(classes):
            w[cls], b[cls] = lr.coef_[row], lr.intercept_[row]
    missing = [i for i in range(k) if i not in classes]
    if missing:
        b[missing] = b[classes].min() - np.log(x.shape[0]) - 10.0
    return w, b


def _nll(w: FloatArray, b: FloatArray, x: FloatArray, g: np.ndarray) -> float:
    logq = log_softmax(x @ w.T + b, axis=1)
    return -float(np.mean(logq[np.arange(g.size), g]))


def fit_matrix(
    probs: ArrayLike,
    gold: ArrayLike,
    *,
    cs: Sequence[float] = MATRIX_CS,
    folds: int = 5,
    seed: int = 0,
    **common: Any,
) -> MatrixCalibrator:
    """Matrix scaling: L2 multinomial logistic regression of the gold label on ``log p``, its
    ``C`` picked from ``cs`` by ``folds``-fold cross-validated log loss (stratified, seeded)."""
    p, g = _fit_data(probs, gold, "matrix scaling")
    require_sklearn("matrix scaling")
    x, k = log_features(p), p.shape[1]
    cv = {
        c: cv_log_loss(
            lambda xt, gt, c=c: _matrix_fit(xt, gt, k, c),
            lambda m, xv, gv: _nll(m[0], m[1], xv, gv),
            x,
            g,
            folds,
            seed,
        )
        for c in cs
    }
    best = min(cs, key=lambda c: cv[c])
    w, b = _matrix_fit(x, g, k, best)
    info = {"C": best, "cv_log_loss": {str(c): v for c, v in cv.items()}}
    return MatrixCalibrator(
        weights=tuple(tuple(float(v) for v in row) for row in w),
        bias=tuple(float(v) for v in b),
        n_fit=int(g.size),
        info={**info, **dict(common.pop("info", {}))},
        **common,
    )


def cv_folds(g: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, seeded (train, test) index pairs; fewer folds when a label is rare."""
    require_sklearn("cross-validation")
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(g)
    smallest = int(counts[counts > 0].min())
    n_splits = max(2, min(folds, g.size // 2))
    if smallest >= n_splits:
        splitter: Any = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(g.size), g))
    splitter = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(g.size)))


def cv_log_loss(fit: Any, score: Any, x: FloatArray, g: np.ndarray, folds: int, seed: int) -> float:
    """Mean held-out log loss of ``fit(x_train, g_train)`` scored by ``score(model, x, g)``,
    weighted by fold size."""
    total = 0.0
    for train, test in cv_folds(g, folds, seed):
        total += score(fit(x[train], g[train]), x[test], g[test]) * test.size
    return total / g.size


def fit_contextual(
    prior_probs: ArrayLike, *, inputs: Sequence[str] = CONTENT_FREE_INPUTS, **common: Any
) -> ContextualCalibrator:
    """Contextual calibration from the label distributions of content-free inputs ((m, k) or
    (k,)): their mean is the prior divided out. Needs no labelled rows."""
    q = np.asarray(prior_probs, dtype=np.float64)
    q = q[None, :] if q.ndim == 1 else q
    if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] < 2:
        raise CalibrationError(
            "contextual calibration needs the label distribution of at least "
            "one content-free input",
            param="prior",
        )
    q, _ = check_probs(q, np.zeros(q.shape[0], dtype=np.int64))
    prior = np.clip(q.mean(axis=0), EPS, 1.0)
    prior = prior / prior.sum()
    info = {
        "content_free_inputs": list(inputs),
        "content_free_probs": [[float(v) for v in row] for row in q],
    }
    return ContextualCalibrator(
        prior=tuple(float(v) for v in prior),
        n_fit=0,
        info={**info, **dict(common.pop("info", {}))},
        **common,
    )


__all__ = [
    "CONTENT_FREE_INPUTS",
    "ContextualCalibrator",
    "MatrixCalibrator",
    "VectorCalibrator",
    "cv_folds",
    "cv_log_loss",
    "fit_contextual",
    "fit_matrix",
    "fit_vector",
    "log_features",
]
