"""Anthropic Messages API: it has no token logprobs at all, so there is nothing to normalize.

Both a ``message`` object and a stream of ``message_start`` / ``content_block_delta`` events
raise :class:`~logprobe.errors.NoLogprobsError` that says so, instead of an empty result.
"""

from __future__ import annotations

from typing import Any

from ..errors import NoLogprobsError
from ..types import Completion
from ._common import Ctx


def parse(payload: Any, ctx: Ctx) -> Completion:
    raise NoLogprobsError(
        "Anthropic's Messages API returns no token logprobs, and no request option enables "
        "them; use a provider that does (OpenAI, vLLM, llama.cpp, Ollama, Gemini, or "
        "`logprobe serve` / the embedded engine)",
    )
