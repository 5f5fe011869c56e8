"""Request models -> engine inputs: chat messages, prompts and validated :class:`GenerationParams`.

Cross-field rules OpenAI enforces live here (``top_logprobs`` needs ``logprobs: true``; options
that cannot be honoured are refused, not silently ignored); range checks are
:meth:`GenerationParams.make`'s, so the server and the library reject the same input alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..engines.base import GenerationParams
from ..errors import InvalidRequestError
from ..types import LogprobMode
from .protocol import (
    LOGPROBS_INCLUDE,
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    ResponsesRequest,
)

OPENAI_DEFAULT_TEMPERATURE = 1.0


def _bad(param: str, message: str, code: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def check_range(param: str, value: int | None, lo: int, hi: int) -> None:
    """OpenAI-style range errors, with its codes ``integer_below_min_value`` / ``..._above_...``."""
    if value is None:
        return
    if value < lo:
        raise _bad(
            param,
            f"Invalid '{param}': integer below minimum value. Expected a value >= "
            f"{lo}, but got {value} instead.",
            "integer_below_min_value",
        )
    if value > hi:
        raise _bad(
            param,
            f"Invalid '{param}': integer above maximum value. Expected a value <= "
            f"{hi}, but got {value} instead.",
            "integer_above_max_value",
        )


def logprob_mode(name: str | None) -> LogprobMode:
    """``raw`` (default) or ``processed``; vLLM's ``raw_logprobs``/``processed_logprobs`` too."""
    if name in (None, "raw", "raw_logprobs"):
        return "raw"
    return "processed"


def logit_bias(raw: dict[str, float] | None, n_vocab: int) -> dict[int, float] | None:
    """OpenAI's ``{"token id as string": bias}`` -> ``{id: bias}`` (ids checked against vocab)."""
    if not raw:
        return None
    out: dict[int, float] = {}
    for key, bias in raw.items():
        try:
            token_id = int(key)
        except ValueError:
            raise _bad(
                "logit_bias", f"Invalid 'logit_bias': keys must be token ids, got {key!r}."
            ) from None
        if not 0 <= token_id < n_vocab:
            raise _bad(
                "logit_bias",
                f"Invalid 'logit_bias': token id {token_id} is outside the "
                f"vocabulary (0..{n_vocab - 1}).",
            )
        out[token_id] = bias
    return out


def _text_of(content: Any, param: str, text_types: tuple[str, ...]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for j, part in enumerate(content):
        if part.type not in text_types:
            raise _bad(
                f"{param}[{j}].type",
                f"Invalid content part type {part.type!r}: this "
                f"server serves a text model and accepts only {', '.join(text_types)} parts.",
            )
        if part.text is None:
            raise _bad(f"{param}[{j}].text", "Missing required parameter: 'text'.")
        parts.append(part.text)
    return "".join(parts)


def chat_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Messages as ``{role, content}`` text dicts (``developer`` is treated as ``system``)."""
    out = []
    for i, m in enumerate(messages):
        text = _text_of(m.content, f"messages[{i}].content", ("text",))
        role = "system" if m.role == "developer" else m.role
        msg = {"role": role, "content": text}
        if m.name:
            msg["name"] = m.name
        out.append(msg)
    return out


def _common(req: ChatCompletionRequest | CompletionRequest) -> dict[str, Any]:
    return {
        "temperature": OPENAI_DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "min_p": req.min_p,
        "seed": req.seed,
        "stop": req.stop,
        "n": req.n,
        "presence_penalty": req.presence_penalty,
        "frequency_penalty": req.frequency_penalty,
        "logprob_mode": logprob_mode(req.logprobs_mode),
    }


def _refuse_prompt_logprobs_stream(req: ChatCompletionRequest | CompletionRequest) -> None:
    if req.stream and req.prompt_logprobs is not None:
        raise _bad(
            "prompt_logprobs",
            "'prompt_logprobs' is not available with 'stream': true "
            "(as in vLLM); use 'echo' on /v1/completions to stream prompt logprobs.",
        )


def chat_params(
    req: ChatCompletionRequest, *, max_logprobs: int, n_vocab: int, default_max_tokens: int
) -> GenerationParams:
    if req.top_logprobs is not None and not req.logprobs:
        raise _bad(
            "top_logprobs",
            "Invalid 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
        )
    check_range("top_logprobs", req.top_logprobs, 0, max_logprobs)
    check_range("prompt_logprobs", req.prompt_logprobs, 0, max_logprobs)
    if req.tools:
        raise _bad("tools", "Tool calling is not supported by this server.")
    if req.response_format is not None and req.response_format.type != "text":
        raise _bad(
            "response_format.type",
            f"response_format type {req.response_format.type!r} is not supported; only 'text'.",
        )
    _refuse_prompt_logprobs_stream(req)
    max_tokens = (
        req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    )
    return GenerationParams.make(
        max_logprobs=max_logprobs,
        max_tokens=default_max_tokens if max_tokens is None else max_tokens,
        logprobs=req.logprobs,
        top_logprobs=req.top_logprobs or 0,
        prompt_logprobs=req.prompt_logprobs,
        logit_bias=logit_bias(req.logit_bias, n_vocab),
        **_common(req),
    )


def completion_params(
    req: CompletionRequest, *, max_logprobs: int, n_vocab: int, default_max_tokens: int
) -> GenerationParams:
    check_range("logprobs", req.logprobs, 0, max_logprobs)
    check_range("prompt_logprobs", req.prompt_logprobs, 0, max_logprobs)
    if req.suffix:
        raise _bad("suffix", "'suffix' (insertion) is not supported by this server.")
    if req.best_of is not None and req.best_of != req.n:
        raise _bad("best_of", "'best_of' different from 'n' is not supported by this server.")
    _refuse_prompt_logprobs_stream(req)
    prompt_lp: int | None = req.prompt_logprobs
    if req.echo and req.logprobs is not None:
        prompt_lp = max(prompt_lp or 0, req.logprobs)
    return GenerationParams.make(
        max_logprobs=max_logprobs,
        max_tokens=default_max_tokens if req.max_tokens is None else req.max_tokens,
        logprobs=req.logprobs is not None,
        top_logprobs=req.logprobs or 0,
        prompt_logprobs=prompt_lp,
        logit_bias=logit_bias(req.logit_bias, n_vocab),
        **_common(req),
    )


def completion_prompts(prompt: Any, n_vocab: int) -> list[str | list[int]]:
    """``prompt`` as a batch: a text, texts, token ids, or lists of token ids."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise _bad("prompt", "Invalid 'prompt': must not be empty.")
    if isinstance(prompt[0], int):
        prompts: list[str | list[int]] = [list(prompt)]
    else:
        prompts = list(prompt)
    for i, p in enumerate(prompts):
        if isinstance(p, list):
            if not p:
                raise _bad(f"prompt[{i}]", "Invalid 'prompt': a token list must not be empty.")
            bad = [t for t in p if not 0 <= t < n_vocab]
            if bad:
                raise _bad(
                    "prompt",
                    f"Invalid 'prompt': token id {bad[0]} is outside the "
                    f"vocabulary (0..{n_vocab - 1}).",
                )
    return prompts


def responses_messages(req: ResponsesRequest) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    if req.instructions:
        msgs.append({"role": "system", "content": req.instructions})
    if isinstance(req.input, str):
        msgs.append({"role": "user", "content": req.input})
        return msgs
    if not req.input:
        raise _bad("input", "Invalid 'input': must not be empty.")
    for i, item in enumerate(req.input):
        text = _text_of(item.content, f"input[{i}].content", ("input_text", "output_text", "text"))
        msgs.append({"role": "system" if item.role == "developer" else item.role, "content": text})
    return msgs


def responses_params(
    req: ResponsesRequest, *, max_logprobs: int, default_max_tokens: int
) -> GenerationParams:
    unknown = [x for x in (req.include or []) if x != LOGPROBS_INCLUDE]
    if unknown:
        raise _bad(
            "include",
            f"Invalid 'include' value {unknown[0]!r}: this server supports "
            f"only {LOGPROBS_INCLUDE!r}.",
        )
    check_range("top_logprobs", req.top_logprobs, 0, max_logprobs)
    if req.tools:
        raise _bad("tools", "Tool calling is not supported by this server.")
    if req.previous_response_id:
        raise _bad(
            "previous_response_id",
            "Stored responses are not supported by this server; "
            "send the whole conversation in 'input'.",
        )
    fmt = req.text.format if req.text is not None else None
    if fmt is not None and fmt.type != "text":
        raise _bad("text.format.type", f"text format {fmt.type!r} is not supported; only 'text'.")
    want = LOGPROBS_INCLUDE in (req.include or []) or req.top_logprobs is not None
    return GenerationParams.make(
        max_logprobs=max_logprobs,
        max_tokens=default_max_tokens if req.max_output_tokens is None else req.max_output_tokens,
        temperature=OPENAI_DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        logprobs=want,
        top_logprobs=req.top_logprobs or 0,
        logprob_mode=logprob_mode(req.logprobs_mode),
    )


__all__ = [
    "OPENAI_DEFAULT_TEMPERATURE",
    "chat_messages",
    "chat_params",
    "check_range",
    "completion_params",
    "completion_prompts",
    "logit_bias",
    "logprob_mode",
    "responses_messages",
    "responses_params",
]
