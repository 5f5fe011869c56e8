"""Task signatures: what a calibrator was fitted on, so it is only ever applied to the same task.

A calibrator is specific to the model *and* the task: the ordered label set, the prompt (template,
chat wrapping, label prefix, first-token bias), the scoring method (exact or first-token) and the
normalisation. :class:`TaskSignature` holds all of them; every prediction row written by
``logprobe classify`` records it, ``logprobe calibrate`` saves a calibrator under it, and
``classify`` applies a calibrator only to a call with the same signature.

The prompt itself is kept (so that contextual calibration can rebuild it) and summarised by
``prompt_hash``; ``id`` is a short hash of everything and names the calibrator file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CalibrationError

SIGNATURE_FIELDS = ("model", "labels", "prompt_hash", "method", "normalize")
PROMPT_KEYS = ("input", "template", "chat", "label_prefix", "first_token_bias")
SCORING_METHODS = ("exact", "first_token")


def _digest(value: Any, n: int) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


def prompt_spec(
    *,
    template: str | None,
    chat: bool = False,
    label_prefix: str | None = None,
    first_token_bias: float | None = None,
    input_kind: str = "text",
) -> dict[str, Any]:
    """The parts of a classify call that shape the prompt, as a JSON-ready dict."""
    return {
        "input": input_kind,
        "template": template,
        "chat": bool(chat),
        "label_prefix": label_prefix,
        "first_token_bias": None if first_token_bias is None else float(first_token_bias),
    }


@dataclass(frozen=True)
class TaskSignature:
    """Model, ordered labels, prompt, scoring method and normalisation of a classification task."""

    model: str
    labels: tuple[str, ...]
    prompt: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    method: str = "exact"
    normalize: str = "none"
    prompt_hash: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise CalibrationError("task signature needs a model name", param="signature.model")
        labels = tuple(self.labels)
        if len(labels) < 2 or not all(isinstance(x, str) for x in labels):
            raise CalibrationError(
                "task signature needs at least two string labels", param="signature.labels"
            )
        object.__setattr__(self, "labels", labels)
        if self.method not in SCORING_METHODS:
            raise CalibrationError(
                f"task signature method must be exact or first_token, got {self.method!r}",
                param="signature.method",
            )
        if not self.prompt_hash:
            spec = {k: self.prompt.get(k) for k in PROMPT_KEYS}
            object.__setattr__(self, "prompt_hash", _digest(spec, 12))

    @property
    def id(self) -> str:
        """A 16-hex-digit hash of every field: the calibrator's file name."""
        return _digest({k: getattr(self, k) for k in SIGNATURE_FIELDS}, 16)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "labels": list(self.labels),
            "prompt_hash": self.prompt_hash,
            "method": self.method,
            "normalize": self.normalize,
            "prompt": dict(self.prompt),
        }

    @classmethod
    def from_dict(cls, d: Any) -> TaskSignature:
        """Read :meth:`to_dict`'s output back (validated)."""
        if not isinstance(d, Mapping):
            raise CalibrationError("task signature must be an object", param="signature")
        labels = d.get("labels")
        if not isinstance(labels, Sequence) or isinstance(labels, str):
            raise CalibrationError("task signature labels must be a list", param="signature")
        prompt = d.get("prompt") or {}
        if not isinstance(prompt, Mapping):
            raise CalibrationError("task signature prompt must be an object", param="signature")
        sig = cls(
            model=str(d.get("model") or ""),
            labels=tuple(labels),
            prompt=dict(prompt),
            method=str(d.get("method")),
            normalize=str(d.get("normalize")),
            prompt_hash=str(d.get("prompt_hash") or ""),
        )
        if d.get("id") not in (None, sig.id):
            raise CalibrationError(
                f"task signature id {d.get('id')!r} does not match its fields", param="signature"
            )
        return sig

    def describe(self) -> str:
        """One line: ``model [a, b, c] prompt 1a2b.. exact/none (id ...)``."""
        return (
            f"{self.model} [{', '.join(self.labels)}] prompt {self.prompt_hash} "
            f"{self.method}/{self.normalize} (id {self.id})"
        )

    def differences(self, other: TaskSignature) -> list[str]:
        """The fields on which two signatures differ (empty when they are the same task)."""
        return [k for k in SIGNATURE_FIELDS if getattr(self, k) != getattr(other, k)]


def mismatch_error(
    fitted: TaskSignature, wanted: TaskSignature, *, where: str = ""
) -> CalibrationError:
    """The error for applying a calibrator fitted on ``fitted`` to the task ``wanted``."""
    at = f" ({where})" if where else ""
    return CalibrationError(
        f"calibrator{at} was fitted for another task (differs in "
        f"{', '.join(fitted.differences(wanted))}): fitted for {fitted.describe()}; "
        f"this task is {wanted.describe()}",
        param="calibrator",
    )


def check_same_task(
    fitted: TaskSignature | None, wanted: TaskSignature | None, *, where: str = ""
) -> None:
    """Raise :func:`mismatch_error` when both signatures are known and differ."""
    if fitted is not None and wanted is not None and fitted != wanted:
        raise mismatch_error(fitted, wanted, where=where)


__all__ = [
    "PROMPT_KEYS",
    "SIGNATURE_FIELDS",
    "TaskSignature",
    "check_same_task",
    "mismatch_error",
    "prompt_spec",
]
