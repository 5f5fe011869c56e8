"""logprobe: token log-probabilities made easy, trustworthy, fast and useful.

Public API is re-exported here; see ``docs/API.md``.
"""

from __future__ import annotations

from .errors import (
    CalibrationError,
    ContextOverflowError,
    EngineError,
    InvalidRequestError,
    LogprobeError,
    ModelNotFoundError,
    NoLogprobsError,
    NormalizeError,
    ProviderError,
    StoreError,
    UnsatisfiableError,
)
from . import normalize  # the subpackage is callable: logprobe.normalize(payload)
from .types import (
    LOGPROB_FLOOR,
    Alternative,
    Choice,
    Completion,
    ScoredText,
    TokenLogprob,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "Alternative",
    "CalibrationError",
    "Choice",
    "Completion",
    "ContextOverflowError",
    "EngineError",
    "InvalidRequestError",
    "LOGPROB_FLOOR",
    "LogprobeError",
    "ModelNotFoundError",
    "NoLogprobsError",
    "NormalizeError",
    "ProviderError",
    "ScoredText",
    "StoreError",
    "TokenLogprob",
    "UnsatisfiableError",
    "Usage",
    "__version__",
    "normalize",
]
