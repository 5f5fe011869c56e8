"""logprobe: token log-probabilities made easy, trustworthy, fast and useful.

Public API is re-exported here; see ``docs/API.md``::

    from logprobe import LlamaEngine, normalize

    with LlamaEngine() as eng:                       # imported on first use (loads llama.cpp)
        c = eng.complete("The capital of France is", max_tokens=5, top_logprobs=5)
        c.text, c.mean_logprob, c.tokens[0].top_logprobs

    normalize(saved_openai_response).mean_logprob    # any provider's JSON -> Completion

``logprobe.normalize`` is the function :func:`logprobe.normalize.normalize`. The subpackage of the
same name stays importable (``from logprobe.normalize import normalize_with_notes``): importing it
here first binds the submodule, then the ``from`` import below rebinds the package attribute to
the function, and later imports of the subpackage find it in ``sys.modules`` without rebinding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engines.base import Engine, GenerationParams
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
from .normalize import normalize
from .types import (
    LOGPROB_FLOOR,
    Alternative,
    Choice,
    Completion,
    ScoredText,
    TokenLogprob,
    Usage,
)

if TYPE_CHECKING:
    from .engines.llamacpp import LlamaEngine
    from .engines.remote import RemoteEngine

__version__ = "0.1.0"

_LAZY = {
    "LlamaEngine": "logprobe.engines.llamacpp",
    "RemoteEngine": "logprobe.engines.remote",
}


def __getattr__(name: str) -> Any:
    """Engines are imported on first use: ``import logprobe`` does not load llama.cpp."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'logprobe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Alternative",
    "CalibrationError",
    "Choice",
    "Completion",
    "ContextOverflowError",
    "Engine",
    "EngineError",
    "GenerationParams",
    "InvalidRequestError",
    "LOGPROB_FLOOR",
    "LlamaEngine",
    "LogprobeError",
    "ModelNotFoundError",
    "NoLogprobsError",
    "NormalizeError",
    "ProviderError",
    "RemoteEngine",
    "ScoredText",
    "StoreError",
    "TokenLogprob",
    "UnsatisfiableError",
    "Usage",
    "__version__",
    "normalize",
]
