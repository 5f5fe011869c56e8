"""One small exception tree. Catch :class:`LogprobeError` to catch everything logprobe raises.

    LogprobeError
     ├── InvalidRequestError (ValueError)      bad input; ``param`` names the offending field
     │    ├── ContextOverflowError             prompt + max tokens exceed the context window
     │    └── UnsatisfiableError               a constraint/grammar no token sequence can meet
     ├── ModelNotFoundError (FileNotFoundError) unknown model name or GGUF path
     ├── EngineError (RuntimeError)            the model backend failed (llama.cpp decode error)
     ├── NormalizeError (ValueError)           a provider payload cannot be read; ``path`` = where
     │    └── NoLogprobsError                  the payload has no logprobs (and how to ask for them)
     ├── ProviderError (RuntimeError)          a remote server failed or answered an error
     ├── StoreError (RuntimeError)             the run store cannot be opened or written
     └── CalibrationError (ValueError)         data cannot support the asked calibration

Every error's message is one line that names the problem, fit to show a user as it is; the CLI
prints it with exit code 2 and the server maps it to an OpenAI-shaped JSON error.
"""

from __future__ import annotations


class LogprobeError(Exception):
    """Base of every error logprobe raises on purpose."""

    status_code: int = 400
    error_type: str = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequestError(LogprobeError, ValueError):
    """Input that cannot be served: out of range, wrong type, empty, malformed."""


class ContextOverflowError(InvalidRequestError):
    """The prompt (plus requested tokens) does not fit the model's context window."""

    def __init__(self, message: str, *, param: str | None = "messages", code: str | None = None):
        super().__init__(message, param=param, code=code or "context_length_exceeded")


class UnsatisfiableError(InvalidRequestError):
    """A constraint (choices, regex, grammar) that no token sequence of the model can satisfy."""


class ModelNotFoundError(LogprobeError, FileNotFoundError):
    status_code = 404

    def __init__(self, message: str, *, param: str | None = "model", code: str | None = None):
        super().__init__(message, param=param, code=code or "model_not_found")


class EngineError(LogprobeError, RuntimeError):
    status_code = 500
    error_type = "server_error"


class NormalizeError(LogprobeError, ValueError):
    """A provider payload that cannot be read. ``path`` is the JSON path of the offending field."""

    def __init__(self, message: str, *, path: str | None = None, code: str | None = None):
        super().__init__(message if path is None else f"{path}: {message}", param=path, code=code)
        self.path = path


class NoLogprobsError(NormalizeError):
    """The payload carries no logprobs (provider without them, or they were not requested)."""


class ProviderError(LogprobeError, RuntimeError):
    status_code = 502
    error_type = "server_error"


class StoreError(LogprobeError, RuntimeError):
    status_code = 500
    error_type = "server_error"


class CalibrationError(LogprobeError, ValueError):
    """Data that cannot support the requested calibration or metric."""


__all__ = [
    "CalibrationError",
    "ContextOverflowError",
    "EngineError",
    "InvalidRequestError",
    "LogprobeError",
    "ModelNotFoundError",
    "NoLogprobsError",
    "NormalizeError",
    "ProviderError",
    "StoreError",
    "UnsatisfiableError",
]
