"""Calibration and selective-prediction metrics on (confidence, correct) pairs (numpy/scipy only).

Conventions (relied on by every module of :mod:`logprobe.calibration`):

* ``confidence[i]`` is the probability the model gave to its own prediction; ``correct[i]`` says
  whether that prediction was right. Confidences must be finite and in ``[0, 1]``; anything else
  raises :class:`~logprobe.errors.CalibrationError` naming the first offending index.
* Equal-width bins are ``[0, 1/M], (1/M, 2/M], ..., ((M-1)/M, 1]`` (Guo et al. 2017, Naeini et al.
  2015): a bin holds the confidences greater than its lower edge and at most its upper edge, and 0
  falls into the first bin. Equal-mass bins sort the points by confidence and cut them into ``M``
  groups whose sizes differ by at most one; a tie group straddling a cut is shared between the
  two bins pro rata (the mean over the orders of the tied points).
* ``ECE = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|``; ``MCE = max_m |acc(B_m) - conf(B_m)|`` over
  non-empty bins. Brier on confidences is ``mean((c - y)^2)``; multi-class Brier is
  ``mean(sum_k (p_k - 1[k == gold])^2)`` (range 0..2). Log losses clip probabilities to
  ``[EPS, 1 - EPS]`` so that a confident mistake costs a large finite amount, never ``inf``.
* ROC-AUC is the probability that a correct prediction gets a higher confidence than a wrong one
  (ties count one half). Risk-coverage: accept the most confident predictions first; risk is the
  error rate among those accepted. Points with equal confidence cannot be separated by a
  threshold, so within a tie group errors are spread evenly (the mean over tie orders).
  ``AURC`` is the mean risk over the ``n`` coverage levels ``1/n .. n/n``; the prediction-rejection
  ratio is ``(AURC_random - AURC) / (AURC_random - AURC_oracle)``: 1 for a perfect ranking, 0 for
  a random one, negative for worse than random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import CalibrationError

Binning = Literal["equal_width", "equal_mass"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

EPS = 1e-12
"""Probabilities are clipped to ``[EPS, 1 - EPS]`` inside log losses and logits."""

DEFAULT_BINS = 15


# --------------------------------------------------------------------------- validation


def check_inputs(confidence: ArrayLike, correct: ArrayLike) -> tuple[FloatArray, BoolArray]:
    """Validated copies: ``confidence`` as float64 in ``[0, 1]``, ``correct`` as bool, same length.

    Raises:
        CalibrationError: empty input, different lengths, NaN/inf, values outside ``[0, 1]``, or
            ``correct`` holding values other than booleans / 0 / 1.
    """
    conf = check_confidence(confidence)
    corr = np.asarray(correct)
    if corr.ndim != 1:
        raise CalibrationError(f"correct must be 1-D, got shape {corr.shape}", param="correct")
    if corr.shape[0] != conf.shape[0]:
        raise CalibrationError(
            f"confidence and correct differ in length ({conf.shape[0]} vs {corr.shape[0]})",
            param="correct",
        )
    if corr.dtype != np.bool_:
        try:
            as_float = corr.astype(np.float64)
        except (TypeError, ValueError):
            raise CalibrationError("correct must hold booleans or 0/1", param="correct") from None
        bad = np.flatnonzero((as_float != 0) & (as_float != 1))
        if bad.size:
            raise CalibrationError(
                f"correct must hold booleans or 0/1; got {corr[bad[0]].item()!r} at index {bad[0]}",
                param="correct",
            )
        corr = as_float == 1
    return conf, corr.astype(np.bool_)


def check_confidence(confidence: ArrayLike, param: str = "confidence") -> FloatArray:
    """``confidence`` as a 1-D float64 array of finite values in ``[0, 1]``.

    Raises:
        CalibrationError: not numbers, not 1-D, empty, NaN/inf, or outside ``[0, 1]``.
    """
    try:
        conf = np.asarray(confidence, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{param} must be numbers", param=param) from None
    if conf.ndim != 1:
        raise CalibrationError(f"{param} must be 1-D, got shape {conf.shape}", param=param)
    if conf.size == 0:
        raise CalibrationError(f"{param} is empty: nothing to calibrate", param=param)
    bad = np.flatnonzero(~np.isfinite(conf))
    if bad.size:
        raise CalibrationError(
            f"{param} has {bad.size} NaN/inf value(s), first at index {bad[0]}", param=param
        )
    bad = np.flatnonzero((conf < 0) | (conf > 1))
    if bad.size:
        raise CalibrationError(
            f"{param} must lie in [0, 1]; got {conf[bad[0]]:g} at index {bad[0]}", param=param
        )
    return conf


def check_probs(
    probs: ArrayLike, gold: ArrayLike, tol: float = 1e-3
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Validated ``(n, k)`` probability matrix (rows sum to 1 within ``tol``) and gold indices."""
    try:
        p = np.asarray(probs, dtype=np.float64)
        g = np.asarray(gold)
    except (TypeError, ValueError):
        raise CalibrationError("probs must be a numeric matrix", param="probs") from None
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise CalibrationError(
            f"probs must have shape (n, k) with n >= 1 and k >= 2, got {p.shape}", param="probs"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise CalibrationError("probs must be finite and in [0, 1]", param="probs")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > tol)
    if bad.size:
        raise CalibrationError(
            f"probs rows must sum to 1; row {bad[0]} sums to {sums[bad[0]]:.6g}", param="probs"
        )
    if g.shape != (p.shape[0],) or not np.issubdtype(g.dtype, np.integer):
        raise CalibrationError("gold must be one integer class index per row", param="gold")
    if np.any(g < 0) or np.any(g >= p.shape[1]):
        raise CalibrationError(f"gold indices must lie in [0, {p.shape[1] - 1}]", param="gold")
    return p, g.astype(np.int64)


def _need_both_classes(correct: BoolArray, what: str) -> None:
    n_ok = int(correct.sum())
    if n_ok == 0 or n_ok == correct.size:
        kind = "correct" if n_ok else "wrong"
        raise CalibrationError(
            f"{what} needs both correct and wrong predictions; all {correct.size} are {kind}",
            param="correct",
        )


# --------------------------------------------------------------------------- grouped kernels
#
# Every metric is computed from per-group sums, a group being one distinct confidence value.
# A bootstrap resample is then just a weight vector (how often each row was drawn): no resorting.


@dataclass(frozen=True)
class Grouped:
    """Predictions grouped by distinct confidence (ascending), ready for weighted sums."""

    values: FloatArray  # (G,) distinct confidences, ascending
    inverse: NDArray[np.int64]  # (n,) group of each row
    y: FloatArray  # (n,) 1.0 where correct
    n: int

    @classmethod
    def of(cls, conf: FloatArray, corr: BoolArray) -> Grouped:
        values, inverse = np.unique(conf, return_inverse=True)
        return cls(values, inverse.astype(np.int64), corr.astype(np.float64), int(conf.size))

    def sums(self, w: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
        """(rows, correct rows) per group, each row counted ``w[i]`` times (default once)."""
        g = self.values.size
        if w is None:
            return (_bincount(self.inverse, None, g), _bincount(self.inverse, self.y, g))
        return _bincount(self.inverse, w, g), _bincount(self.inverse, w * self.y, g)


def _bincount(idx: NDArray[np.int64], weights: FloatArray | None, length: int) -> FloatArray:
    return np.asarray(np.bincount(idx, weights=weights, minlength=length), dtype=np.float64)


def _width_bins(
    values: FloatArray, count: FloatArray, cor: FloatArray, n_bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per equal-width bin: rows, correct rows, sum of confidences."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.searchsorted(edges[1:-1], values, side="left")  # bin i holds (e_i, e_i+1]
    return (
        _bincount(b, count, n_bins),
        _bincount(b, cor, n_bins),
        _bincount(b, count * values, n_bins),
    )


def _mass_positions(n: int, n_bins: int) -> NDArray[np.int64]:
    """Cut positions 0 = P_0 < ... < P_M = n of M groups whose sizes differ by at most one."""
    size, extra = divmod(n, n_bins)
    sizes = np.full(n_bins, size, dtype=np.int64)
    sizes[:extra] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def _mass_bins(
    values: FloatArray, count: FloatArray, cor: FloatArray, n_bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per equal-mass bin: rows, correct rows, sum of confidences (ties cut pro rata)."""
    keep = count > 0
    values, count, cor = values[keep], count[keep], cor[keep]
    pos = _mass_positions(int(round(count.sum())), n_bins).astype(np.float64)
    cum_n = np.concatenate([[0.0], np.cumsum(count)])
    cum_cor = np.interp(pos, cum_n, np.concatenate([[0.0], np.cumsum(cor)]))
    cum_conf = np.interp(pos, cum_n, np.concatenate([[0.0], np.cumsum(count * values)]))
    return np.diff(pos), np.diff(cum_cor), np.diff(cum_conf)


def _bins(
    values: FloatArray, count: FloatArray, cor: FloatArray, n_bins: int, binning: Binning
) -> tuple[FloatArray, FloatArray, FloatArray]:
    fn = _width_bins if binning == "equal_width" else _mass_bins
    return fn(values, count, cor, n_bins)


def _ece_k(
    values: FloatArray, count: FloatArray, cor: FloatArray, n_bins: int, binning: Binning
) -> float:
    cnt, acc_sum, conf_sum = _bins(values, count, cor, n_bins, binning)
    return float(np.sum(np.abs(acc_sum - conf_sum)) / cnt.sum())


def _mce_k(
    values: FloatArray, count: FloatArray, cor: FloatArray, n_bins: int, binning: Binning
) -> float:
    cnt, acc_sum, conf_sum = _bins(values, count, cor, n_bins, binning)
    filled = cnt > 0
    return float(np.max(np.abs(acc_sum[filled] - conf_sum[filled]) / cnt[filled]))


def _auc_k(count: FloatArray, cor: FloatArray) -> float | None:
    """P(confidence of a right answer > that of a wrong one), ties one half; groups ascending."""
    neg = count - cor
    n_pos, n_neg = cor.sum(), neg.sum()
    if n_pos <= 0 or n_neg <= 0:
        return None
    below = np.cumsum(neg) - neg
    return float(np.sum(cor * (below + neg / 2)) / (n_pos * n_neg))


def _aurc_k(count: FloatArray, cor: FloatArray) -> float:
    """Mean risk over coverages k/n, most confident first, errors spread evenly within ties."""
    keep = count > 0
    cnt, err = count[keep][::-1], (count - cor)[keep][::-1]
    n = int(round(cnt.sum()))
    k = np.arange(1, n + 1, dtype=np.float64)
    cum_err = np.interp(
        k, np.concatenate([[0.0], np.cumsum(cnt)]), np.concatenate([[0.0], np.cumsum(err)])
    )
    return float(np.mean(cum_err / k))


def _oracle_aurc_k(n: int, n_correct: float) -> float:
    k = np.arange(1, n + 1, dtype=np.float64)
    return float(np.mean(np.clip(k - n_correct, 0.0, None) / k))  # right answers first


def _prr_k(count: FloatArray, cor: FloatArray) -> float | None:
    n, n_cor = count.sum(), cor.sum()
    if n_cor <= 0 or n_cor >= n:
        return None
    random = 1.0 - n_cor / n
    return (random - _aurc_k(count, cor)) / (random - _oracle_aurc_k(int(round(n)), n_cor))


# --------------------------------------------------------------------------- binning (public)


@dataclass(frozen=True)
class BinStats:
    """Per-bin counts and means. ``accuracy``/``confidence`` are NaN for empty bins."""

    lower: FloatArray
    upper: FloatArray
    count: NDArray[np.int64]
    accuracy: FloatArray
    confidence: FloatArray

    @property
    def gap(self) -> FloatArray:
        return np.abs(self.accuracy - self.confidence)


def _check_bins(n_bins: int, n: int, binning: str) -> int:
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise CalibrationError(f"n_bins must be a positive integer, got {n_bins!r}", param="n_bins")
    if binning not in ("equal_width", "equal_mass"):
        raise CalibrationError(
            f"binning must be 'equal_width' or 'equal_mass', got {binning!r}", param="binning"
        )
    if binning == "equal_mass" and n < n_bins:
        raise CalibrationError(
            f"equal-mass binning needs at least one point per bin: {n} points, {n_bins} bins",
            param="n_bins",
        )
    return int(n_bins)


def bin_stats(
    confidence: ArrayLike,
    correct: ArrayLike,
    n_bins: int = DEFAULT_BINS,
    binning: Binning = "equal_width",
) -> BinStats:
    """Group predictions into ``n_bins`` bins (see module docstring) and summarise each bin.

    Raises:
        CalibrationError: ``n_bins < 1``, unknown ``binning``, or equal-mass bins with fewer
            points than bins (some bin would be empty).
    """
    conf, corr = check_inputs(confidence, correct)
    n_bins = _check_bins(n_bins, conf.size, binning)
    g = Grouped.of(conf, corr)
    count, cor = g.sums()
    cnt, acc_sum, conf_sum = _bins(g.values, count, cor, n_bins, binning)
    if binning == "equal_width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        lower, upper = edges[:-1], edges[1:]
    else:
        pos = _mass_positions(conf.size, n_bins)
        cum_n = np.cumsum(count)
        lower = g.values[np.searchsorted(cum_n, pos[:-1], side="right")]
        upper = g.values[np.searchsorted(cum_n, pos[1:] - 1, side="right")]
    with np.errstate(invalid="ignore", divide="ignore"):
        return BinStats(lower, upper, np.rint(cnt).astype(np.int64), acc_sum / cnt, conf_sum / cnt)


def ece(
    confidence: ArrayLike,
    correct: ArrayLike,
    n_bins: int = DEFAULT_BINS,
    binning: Binning = "equal_width",
) -> float:
    """Expected calibration error (0 = perfectly calibrated; see module docstring)."""
    conf, corr = check_inputs(confidence, correct)
    n_bins = _check_bins(n_bins, conf.size, binning)
    g = Grouped.of(conf, corr)
    return _ece_k(g.values, *g.sums(), n_bins, binning)


def mce(
    confidence: ArrayLike,
    correct: ArrayLike,
    n_bins: int = DEFAULT_BINS,
    binning: Binning = "equal_width",
) -> float:
    """Maximum calibration error: the largest |accuracy - confidence| over non-empty bins."""
    conf, corr = check_inputs(confidence, correct)
    n_bins = _check_bins(n_bins, conf.size, binning)
    g = Grouped.of(conf, corr)
    return _mce_k(g.values, *g.sums(), n_bins, binning)


# --------------------------------------------------------------------------- proper scores


def accuracy(correct: ArrayLike) -> float:
    """Share of correct predictions."""
    corr = np.asarray(correct, dtype=np.float64)
    if corr.ndim != 1 or corr.size == 0:
        raise CalibrationError("correct must be a non-empty 1-D array", param="correct")
    return float(corr.mean())


def brier_score(confidence: ArrayLike, correct: ArrayLike) -> float:
    """Binary Brier score of confidence against correctness: ``mean((c - y)^2)``."""
    conf, corr = check_inputs(confidence, correct)
    return float(np.mean(brier_terms(conf, corr)))


def brier_terms(conf: FloatArray, corr: BoolArray) -> FloatArray:
    """Per-row ``(c - y)^2``."""
    return (conf - corr) ** 2


def brier_multiclass(probs: ArrayLike, gold: ArrayLike) -> float:
    """Multi-class Brier score ``mean(sum_k (p_k - onehot_k)^2)`` (0 best, 2 worst)."""
    p, g = check_probs(probs, gold)
    return float(np.mean(brier_mc_terms(p, g)))


def brier_mc_terms(p: FloatArray, g: NDArray[np.int64]) -> FloatArray:
    """Per-row ``sum_k (p_k - onehot_k)^2``."""
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), g] = 1.0
    return np.sum((p - onehot) ** 2, axis=1)


def log_loss(confidence: ArrayLike, correct: ArrayLike) -> float:
    """Binary log loss (nats) of confidence as the probability of being correct."""
    conf, corr = check_inputs(confidence, correct)
    return float(np.mean(log_loss_terms(conf, corr)))


def log_loss_terms(conf: FloatArray, corr: BoolArray) -> FloatArray:
    """Per-row binary log loss, probabilities clipped to ``[EPS, 1 - EPS]``."""
    c = np.clip(conf, EPS, 1 - EPS)
    return -np.where(corr, np.log(c), np.log1p(-c))


def nll_multiclass(probs: ArrayLike, gold: ArrayLike) -> float:
    """Mean negative log-likelihood (nats) of the gold class."""
    p, g = check_probs(probs, gold)
    return float(np.mean(nll_mc_terms(p, g)))


def nll_mc_terms(p: FloatArray, g: NDArray[np.int64]) -> FloatArray:
    """Per-row ``-log p[gold]`` (clipped at ``EPS``)."""
    return -np.log(np.clip(p[np.arange(p.shape[0]), g], EPS, 1.0))


# --------------------------------------------------------------------------- ranking


def roc_auc(confidence: ArrayLike, correct: ArrayLike) -> float:
    """ROC-AUC of confidence as a detector of correct predictions (0.5 = no better than chance).

    Raises:
        CalibrationError: all predictions are correct, or all are wrong.
    """
    conf, corr = check_inputs(confidence, correct)
    _need_both_classes(corr, "ROC-AUC")
    auc = _auc_k(*Grouped.of(conf, corr).sums())
    assert auc is not None
    return auc


def risk_coverage(
    confidence: ArrayLike, correct: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The risk-coverage curve at each distinct confidence, most confident first.

    Returns:
        ``(coverage, risk, threshold)``: accepting every prediction with confidence >=
        ``threshold[j]`` covers ``coverage[j]`` of the data with error rate ``risk[j]``.
    """
    conf, corr = check_inputs(confidence, correct)
    g = Grouped.of(conf, corr)
    count, cor = g.sums()
    n_acc = np.cumsum(count[::-1])
    err_acc = np.cumsum((count - cor)[::-1])
    return n_acc / conf.size, err_acc / n_acc, g.values[::-1].copy()


def aurc(confidence: ArrayLike, correct: ArrayLike) -> float:
    """Area under the risk-coverage curve (lower is better; equals the error rate when random)."""
    conf, corr = check_inputs(confidence, correct)
    return _aurc_k(*Grouped.of(conf, corr).sums())


def oracle_aurc(correct: ArrayLike) -> float:
    """The AURC of a perfect ranking (every right answer before every wrong one)."""
    corr = np.asarray(correct, dtype=np.float64)
    return _oracle_aurc_k(corr.size, float(corr.sum()))


def prediction_rejection_ratio(confidence: ArrayLike, correct: ArrayLike) -> float:
    """PRR: share of the oracle's AURC improvement over random rejection that confidence achieves.

    Raises:
        CalibrationError: all predictions correct or all wrong (no room for improvement).
    """
    conf, corr = check_inputs(confidence, correct)
    _need_both_classes(corr, "prediction-rejection ratio")
    prr = _prr_k(*Grouped.of(conf, corr).sums())
    assert prr is not None
    return prr
