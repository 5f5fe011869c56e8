"""Wire models of the OpenAI-compatible server (pydantic).

OpenAI request models accept fields they do not know and log a warning naming them (as vLLM's
``OpenAIBaseModel`` does), so clients that send newer or provider-specific fields keep working.
Types are checked strictly: ``"temperature": "hot"`` or ``"n": true`` is a 400 naming the field,
never a silent coercion. Ranges and cross-field rules are checked once, by
:meth:`logprobe.engines.GenerationParams.make` and :mod:`.serving`, so every entry point rejects
the same bad input with the same message.

Fields marked *extension* are not OpenAI's; they follow vLLM where vLLM has them.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

logger = logging.getLogger("logprobe.server")

LOGPROBS_INCLUDE = "message.output_text.logprobs"
"""The ``include`` value of the Responses API that asks for output-text logprobs."""

LogprobsModeName = Literal["raw", "processed", "raw_logprobs", "processed_logprobs"]


class OpenAIBaseModel(BaseModel):
    """Base of request models: strict types, unknown fields accepted and logged as ignored."""

    model_config = ConfigDict(extra="allow", strict=True)

    @model_validator(mode="after")
    def _warn_unknown_fields(self) -> OpenAIBaseModel:
        extra = self.model_extra
        if extra:
            logger.warning(
                "%s: ignoring unknown fields %s", type(self).__name__, ", ".join(sorted(extra))
            )
        return self


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class ContentPart(OpenAIBaseModel):
    """One part of a message's content; only text parts can be served by a text model."""

    type: str
    text: str | None = None


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class ResponseFormat(OpenAIBaseModel):
    type: str = "text"


class _SamplingFields(OpenAIBaseModel):
    """Fields shared by Chat Completions and (legacy) Completions."""

    model: str | None = None
    n: int = 1
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = None
    logit_bias: dict[str, float] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # extensions (vLLM)
    top_k: int | None = None
    min_p: float | None = None
    prompt_logprobs: int | None = None
    logprobs_mode: LogprobsModeName | None = None


class ChatCompletionRequest(_SamplingFields):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = None
    max_completion_tokens: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None


class CompletionRequest(_SamplingFields):
    """``POST /v1/completions`` (legacy): ``prompt`` may be a batch of texts or of token ids."""

    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = None
    echo: bool = False
    max_tokens: int | None = 16
    best_of: int | None = None
    suffix: str | None = None


class InputText(OpenAIBaseModel):
    type: str
    text: str | None = None


class ResponseInputMessage(OpenAIBaseModel):
    """A message item of the Responses API ``input`` list."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[InputText]
    type: Literal["message"] = "message"


class ResponseTextFormat(OpenAIBaseModel):
    format: ResponseFormat | None = None


class ResponsesRequest(OpenAIBaseModel):
    """``POST /v1/responses``: text in, text out, with output-text logprobs on request."""

    model: str | None = None
    input: str | list[ResponseInputMessage]
    instructions: str | None = None
    include: list[str] | None = None
    top_logprobs: int | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stream: bool = False
    store: bool | None = None
    metadata: dict[str, str] | None = None
    text: ResponseTextFormat | None = None
    tools: list[dict[str, Any]] | None = None
    previous_response_id: str | None = None
    user: str | None = None
    # extensions
    seed: int | None = None
    logprobs_mode: LogprobsModeName | None = None


class TokenizeRequest(OpenAIBaseModel):
    """``POST /tokenize`` (extension, as vLLM's): token ids of a prompt or of chat messages."""

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool = True
    add_generation_prompt: bool = True
    return_token_strs: bool = False


class DetokenizeRequest(OpenAIBaseModel):
    """``POST /detokenize`` (extension, as vLLM's): the text of token ids."""

    model: str | None = None
    tokens: list[int]


__all__ = [
    "LOGPROBS_INCLUDE",
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "ContentPart",
    "DetokenizeRequest",
    "OpenAIBaseModel",
    "ResponseInputMessage",
    "ResponsesRequest",
    "StreamOptions",
    "TokenizeRequest",
]
