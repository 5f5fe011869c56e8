"""Which provider shape a payload is, from its keys alone.

A payload is one response object or a list of streamed chunks/events; every item of a list must
be of the same shape (a list mixing providers is an error naming both items). vLLM is OpenAI's
chat/completions shape plus markers (``prompt_logprobs``, ``stop_reason`` in choices,
``token_id:N`` tokens, ``prompt_token_ids``); any marker in any chunk makes the stream vLLM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import NormalizeError
from ._common import at, fail

PROVIDERS: tuple[str, ...] = (
    "anthropic",
    "gemini",
    "llamacpp",
    "logprobe",
    "ollama",
    "openai_chat",
    "openai_completions",
    "openai_responses",
    "tgi",
    "together",
    "vllm",
)
"""Shape names accepted as ``provider=`` and set as :attr:`Completion.provider`."""

ALIASES: dict[str, str] = {
    "chat": "openai_chat",
    "completions": "openai_completions",
    "responses": "openai_responses",
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "llama-cpp": "llamacpp",
    "huggingface": "tgi",
    "hf": "tgi",
    "google": "gemini",
    "vertex": "gemini",
    "claude": "anthropic",
    "togetherai": "together",
}

_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)
_OPENAI_BASES = ("openai_chat", "openai_completions")
_ANY_OPENAI = "openai_*"
"""A chunk with empty ``choices`` (the usage tail of a stream): fits either OpenAI base."""


def detect_provider(payload: Any) -> str:
    """The shape name of ``payload`` (a parsed JSON object, or a list of chunks/events)."""
    base, vllm = _detect(payload)
    return "vllm" if vllm else base


def openai_base(payload: Any) -> str:
    """``openai_chat`` or ``openai_completions`` for an OpenAI-style payload (for ``vllm``)."""
    base, _ = _detect(payload)
    if base not in _OPENAI_BASES:
        raise fail("", f"expected an OpenAI chat or completions payload, found {base}")
    return base


def resolve_name(name: str) -> str | None:
    """A canonical shape name for ``name`` (``None`` for the ``openai`` family: auto-detect)."""
    key = name.strip().lower()
    if key == "openai":
        return None
    key = ALIASES.get(key, key)
    if key not in PROVIDERS:
        raise NormalizeError(
            f"unknown provider {name!r}; expected one of {', '.join(PROVIDERS)} "
            "(or 'openai' for any OpenAI shape)",
            path="provider",
        )
    return key


def _detect(payload: Any) -> tuple[str, bool]:
    if isinstance(payload, Mapping):
        found = _detect_item(payload, "")
        if found[0] == _ANY_OPENAI:
            raise fail("choices", "no choices in the payload (empty result)")
        return found
    if isinstance(payload, Sequence) and not isinstance(payload, str | bytes):
        return _detect_list(payload)
    raise fail("", f"expected a JSON object or a list of chunks, got {type(payload).__name__}")


def _detect_list(items: Sequence[Any]) -> tuple[str, bool]:
    if not items:
        raise fail("", "an empty list: no response or stream chunks")
    first: tuple[str, int] | None = None
    vllm = False
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise fail(at("", i), f"expected a JSON object, got {type(item).__name__}")
        base, marker = _detect_item(item, at("", i))
        vllm |= marker
        if base == _ANY_OPENAI:
            continue
        if first is None:
            first = (base, i)
        elif base != first[0]:
            raise fail(
                at("", i),
                f"mixed providers in one stream: this item is {base}, item [{first[1]}] is "
                f"{first[0]}",
            )
    if first is None:
        raise fail("[*].choices", "no chunk in the stream has any choices (empty result)")
    if vllm and first[0] not in _OPENAI_BASES:
        vllm = False
    return first[0], vllm


def _printable(value: Any) -> str:
    """Text from the payload, made safe for a one-line message (control characters escaped)."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(value))


def _detect_item(d: Mapping[str, Any], path: str) -> tuple[str, bool]:
    found = (
        _anthropic(d)
        or _responses(d)
        or _gemini(d)
        or _logprobe(d)
        or _openai_family(d)
        or _llamacpp(d)
        or _tgi(d)
        or _ollama(d)
    )
    if found is not None:
        return found
    if "error" in d:
        err = d["error"]
        msg = err.get("message") if isinstance(err, Mapping) else err
        raise fail(at(path, "error"), f"the payload is an error response: {_printable(msg)}")
    keys = ", ".join(_printable(k) for k in sorted(map(str, d))[:8]) or "none"
    raise fail(
        path,
        f"unrecognized payload shape (keys: {keys}); pass provider= explicitly, "
        f"one of {', '.join(PROVIDERS)}",
    )


def _anthropic(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    kind = d.get("type")
    if kind == "message" and "content" in d and d.get("role") == "assistant":
        return "anthropic", False
    if kind in _ANTHROPIC_EVENTS:
        return "anthropic", False
    return None


def _responses(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    kind = d.get("type")
    if d.get("object") == "response" or (isinstance(kind, str) and kind.startswith("response.")):
        return "openai_responses", False
    return None


def _gemini(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    if "candidates" in d or "usageMetadata" in d or "promptFeedback" in d:
        return "gemini", False
    return None


def _logprobe(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    if "logprob_mode" in d and "choices" in d:
        return "logprobe", False
    return None


def _llamacpp(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    if "completion_probabilities" in d or "tokens_predicted" in d or "generation_settings" in d:
        return "llamacpp", False
    if isinstance(d.get("stop"), bool) and "content" in d:
        return "llamacpp", False
    return None


def _tgi(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    if "generated_text" in d:
        return "tgi", False
    tok = d.get("token")
    if isinstance(tok, Mapping) and "logprob" in tok and "text" in tok:
        return "tgi", False
    return None


def _ollama(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    if "created_at" in d and "done" in d and ("response" in d or "message" in d):
        return "ollama", False
    return None


def _openai_family(d: Mapping[str, Any]) -> tuple[str, bool] | None:
    choices = d.get("choices")
    if not isinstance(choices, list):
        return None
    first = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    if _is_together(d, choices):
        return "together", False
    obj = d.get("object")
    vllm = _vllm_marker(d, choices)
    if (
        obj in ("chat.completion", "chat.completion.chunk")
        or "message" in first
        or "delta" in first
    ):
        return "openai_chat", vllm
    if obj == "text_completion" or "text" in first:
        return "openai_completions", vllm
    return _ANY_OPENAI, vllm


def _is_together(d: Mapping[str, Any], choices: list[Any]) -> bool:
    if isinstance(d.get("prompt"), list):
        return True
    for c in choices:
        if not isinstance(c, Mapping):
            continue
        lp = c.get("logprobs")
        if isinstance(lp, Mapping) and "token_ids" in lp:
            return True
        if "message" in c and isinstance(lp, Mapping) and "token_logprobs" in lp:
            return True
        delta = c.get("delta")
        if isinstance(delta, Mapping) and "token_id" in delta:
            return True
        if isinstance(lp, int | float) and not isinstance(lp, bool):
            return True
    return False


def _vllm_marker(d: Mapping[str, Any], choices: list[Any]) -> bool:
    if any(k in d for k in ("prompt_logprobs", "prompt_token_ids", "kv_transfer_params")):
        return True
    for c in choices:
        if not isinstance(c, Mapping):
            continue
        if "stop_reason" in c or "prompt_logprobs" in c:
            return True
        lp = c.get("logprobs")
        if isinstance(lp, Mapping) and _has_token_ids(lp):
            return True
    return False


def _has_token_ids(lp: Mapping[str, Any]) -> bool:
    entries = lp.get("content")
    if isinstance(entries, list):
        return any(
            isinstance(e, Mapping) and str(e.get("token", "")).startswith("token_id:")
            for e in entries
        )
    tokens = lp.get("tokens")
    return isinstance(tokens, list) and any(
        isinstance(t, str) and t.startswith("token_id:") for t in tokens
    )
