"""Contextual calibration (Zhao et al. 2021, "Calibrate Before Use") for a classification task.

The model is asked the task's own prompt with content-free inputs ("N/A", "", "[MASK]") in
place of the text; the mean label distribution it gives them is its prior over the labels,
which :class:`~logprobe.calibration.ContextualCalibrator` divides out. No labelled rows are
needed, only the engine and the task signature (its prompt is recorded in full).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..calibration.scaling import CONTENT_FREE_INPUTS, ContextualCalibrator, fit_contextual
from ..calibration.signature import TaskSignature
from ..errors import CalibrationError
from .classify import classify, model_name
from .prompting import fill_template


def _prompt_for(signature: TaskSignature, text: str) -> str | None:
    """The task's prompt with ``text`` in it (None: an empty input with no template)."""
    template = signature.prompt.get("template")
    if template is None:
        return text or None
    return fill_template(str(template), text=text, labels=", ".join(signature.labels))


def content_free_probs(
    engine: Any,
    signature: TaskSignature,
    inputs: Sequence[str] = CONTENT_FREE_INPUTS,
) -> tuple[np.ndarray, list[str]]:
    """The label distribution (``(m, k)``, in the signature's label order) for each usable
    content-free input, and the inputs used."""
    if signature.prompt.get("input", "text") != "text":
        raise CalibrationError(
            "contextual calibration needs a task with a text template, not "
            "chat messages given as they are",
            param="method",
        )
    if model_name(engine) != signature.model:
        raise CalibrationError(
            f"contextual calibration needs the task's model "
            f"{signature.model!r}; the engine runs {model_name(engine)!r}",
            param="model",
        )
    rows, used = [], []
    for text in inputs:
        prompt = _prompt_for(signature, text)
        if prompt is None:
            continue
        result = classify(
            engine,
            prompt,
            list(signature.labels),
            template=None,
            normalize=signature.normalize,
            chat=bool(signature.prompt.get("chat")),
            label_prefix=signature.prompt.get("label_prefix"),
            method=signature.method,  # type: ignore[arg-type]
            first_token_bias=signature.prompt.get("first_token_bias"),
        )
        rows.append([result.probs[label] for label in signature.labels])
        used.append(text)
    if not rows:
        raise CalibrationError("no content-free input could be put into the prompt", param="method")
    return np.asarray(rows, dtype=np.float64), used


def fit_contextual_for(
    engine: Any,
    signature: TaskSignature,
    inputs: Sequence[str] = CONTENT_FREE_INPUTS,
) -> ContextualCalibrator:
    """A contextual calibrator for the task ``signature``, measured with ``engine``."""
    probs, used = content_free_probs(engine, signature, inputs)
    return fit_contextual(probs, inputs=used, model=signature.model, signature=signature)


__all__ = ["content_free_probs", "fit_contextual_for"]
