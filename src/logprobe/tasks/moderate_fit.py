"""Fitting a moderation policy to labelled data: one-vs-rest calibration and review thresholds.

For each flaggable label ``L`` of the policy, from raw probabilities ``P(L)`` and gold labels:

1. a calibrator (default Platt) maps ``P(L)`` to ``q = P(gold is L)``;
2. ``flag_at`` = the lowest threshold on ``q`` at which the flagged items are ``L`` with at
   least ``precision`` (:func:`logprobe.calibration.pick_threshold`, target ``precision=``);
3. ``allow_below`` = the highest threshold under which the allowed items are not ``L`` with at
   least ``allow_precision`` (the same picker on ``1 - q``).

Items between the two thresholds go to review. When no threshold reaches a target, the label
flags nothing automatically (``flag_at = 1``) or allows nothing (``allow_below = 0``), and the
fit says so in ``notes``. The result is saved as one JSON file that ``logprobe moderate
--calibration`` reads back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CalibrationError, InvalidRequestError
from .moderate import Policy, Thresholds, check_label_names

FIT_FORMAT = "logprobe.moderation/1"


@dataclass(frozen=True)
class ModerationFit:
    """Calibrators and thresholds per flaggable label, with how they were obtained."""

    calibrators: Mapping[str, Any]
    thresholds: Mapping[str, Thresholds]
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self, policy_name: str) -> dict[str, Any]:
        return {
            "format": FIT_FORMAT,
            "policy": policy_name,
            "calibrators": {k: c.to_dict() for k, c in self.calibrators.items()},
            "thresholds": {
                k: {"flag_at": t.flag_at, "allow_below": t.allow_below}
                for k, t in self.thresholds.items()
            },
            "info": dict(self.info),
        }


def fit_moderation(
    policy: Policy,
    raw_probs: Sequence[Mapping[str, float]],
    gold: Sequence[str],
    *,
    precision: float = 0.95,
    allow_precision: float = 0.95,
    method: str = "platt",
) -> ModerationFit:
    """Fit calibrators and thresholds for every flaggable label (see the module docstring)."""
    from ..calibration import fit_calibrator, pick_threshold

    if len(raw_probs) != len(gold) or not gold:
        raise InvalidRequestError(
            "fit needs as many gold labels as predictions (at least one)", param="gold"
        )
    check_label_names(sorted(set(gold)), policy.labels, "gold labels")
    cals: dict[str, Any] = {}
    ths: dict[str, Thresholds] = {}
    notes: list[str] = []
    for label in policy.flaggable:
        p = np.array([float(r[label]) for r in raw_probs])
        y = np.array([g == label for g in gold])
        cal = fit_calibrator(method, p, y)
        q = cal.apply_confidence(p)
        try:
            flag_at = pick_threshold(q, y, f"precision={precision}", n_boot=0).threshold
        except CalibrationError as e:
            flag_at = 1.0
            notes.append(f"{label}: flag_at = 1 ({e.message})")
        try:
            s = pick_threshold(1.0 - q, ~y, f"precision={allow_precision}", n_boot=0).threshold
            allow_below = float(np.nextafter(1.0 - s, math.inf))
        except CalibrationError as e:
            allow_below = 0.0
            notes.append(f"{label}: allow_below = 0 ({e.message})")
        cals[label] = cal
        ths[label] = Thresholds(min(1.0, flag_at), max(0.0, min(allow_below, flag_at)))
    info = {
        "n": len(gold),
        "precision": precision,
        "allow_precision": allow_precision,
        "method": method,
        "notes": notes,
    }
    return ModerationFit(cals, ths, info)


def save_fit(fit: ModerationFit, policy: Policy, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        json.dumps(fit.to_dict(policy.name), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return p


def load_fit(path: str | Path, policy: Policy) -> ModerationFit:
    """Read a fit saved by :func:`save_fit`; its labels must be labels of ``policy``."""
    from ..calibration import calibrator_from_dict

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRequestError(
            f"Invalid 'calibration': no such file {str(p)!r}.", param="calibration"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidRequestError(
            f"Invalid 'calibration': cannot read {p.name} ({e}).", param="calibration"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FIT_FORMAT:
        raise InvalidRequestError(
            f"Invalid 'calibration': {p.name} is not a moderation fit (format {FIT_FORMAT!r}).",
            param="calibration",
        )
    raw_cals, raw_th = data.get("calibrators") or {}, data.get("thresholds") or {}
    check_label_names(raw_cals, policy.flaggable, "calibration")
    check_label_names(raw_th, policy.flaggable, "calibration thresholds")
    try:
        cals = {k: calibrator_from_dict(v) for k, v in raw_cals.items()}
        ths = {
            k: Thresholds(float(v["flag_at"]), float(v["allow_below"])) for k, v in raw_th.items()
        }
    except CalibrationError as e:
        raise InvalidRequestError(
            f"Invalid 'calibration': {e.message}", param="calibration"
        ) from None
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidRequestError(
            f"Invalid 'calibration': bad thresholds ({e!r}).", param="calibration"
        ) from None
    return ModerationFit(cals, ths, data.get("info") or {})


__all__ = ["FIT_FORMAT", "ModerationFit", "fit_moderation", "load_fit", "save_fit"]
