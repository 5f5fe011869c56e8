"""Provider payloads built field by field from the documented shapes.

Every builder cites its source; "wire doc" is /work/shared/docs/logprobs-wire-formats.md (the
project's reference of each API's logprob fields). Values are made up but typed as documented.
"""

from __future__ import annotations

from typing import Any


def utf8(s: str) -> list[int]:
    return list(s.encode("utf-8"))


# ── OpenAI Chat Completions ─────────────────────────────────────────────────────────────────
# Source: wire doc "OpenAI Chat Completions": per choice logprobs.content entries
# {token, logprob, bytes, top_logprobs[{token, logprob, bytes}]}, refusal: null.


def chat_entry(
    token: str,
    logprob: float,
    tops: list[tuple[str, float]] = (),  # type: ignore
    raw: list[int] | None = None,
) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob,
        "bytes": utf8(token) if raw is None else raw,
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": utf8(t)} for t, lp in tops],
    }


def chat_response(
    entries: list[dict[str, Any]] | None,
    content: str,
    *,
    n: int = 1,
    finish: str = "stop",
    usage: tuple[int, int] = (9, 2),
) -> dict[str, Any]:
    # Source: OpenAI OpenAPI spec CreateChatCompletionResponse (id, object, created, model,
    # choices[{index, message{role, content, refusal}, logprobs, finish_reason}], usage).
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None if entries is None else {"content": entries, "refusal": None},
                "finish_reason": finish,
            }
            for i in range(n)
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def chat_chunk(
    index: int,
    content: str | None,
    entries: list[dict[str, Any]] | None,
    finish: str | None = None,
    rid: str = "chatcmpl-123",
) -> dict[str, Any]:
    # Source: wire doc "Streaming": each chat.completion.chunk choice carries
    # logprobs {content: [...], refusal: null} for exactly the tokens of its delta.
    delta: dict[str, Any] = {} if content is None else {"content": content}
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": index,
                "delta": delta,
                "logprobs": None if entries is None else {"content": entries, "refusal": None},
                "finish_reason": finish,
            }
        ],
    }


# ── OpenAI legacy Completions ───────────────────────────────────────────────────────────────
# Source: wire doc "OpenAI legacy Completions": logprobs {tokens, token_logprobs, top_logprobs
# [{token: logprob}], text_offset}; echo puts the prompt first, its first entries null.


def completion_response(
    text: str,
    tokens: list[str],
    token_logprobs: list[float | None],
    top: list[dict[str, float] | None],
    offsets: list[int],
    usage: tuple[int, int],
) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1700000000,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [
            {
                "text": text,
                "index": 0,
                "logprobs": {
                    "tokens": tokens,
                    "token_logprobs": token_logprobs,
                    "top_logprobs": top,
                    "text_offset": offsets,
                },
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


# ── OpenAI Responses API ────────────────────────────────────────────────────────────────────
# Source: wire doc "OpenAI Responses API": output_text parts carry logprobs [{token, logprob,
# bytes, top_logprobs}]; stream: response.output_text.delta events carry {token, logprob,
# top_logprobs} without bytes; response.output_text.done carries them too.


def responses_object(parts: list[tuple[str, list[dict[str, Any]] | None]]) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": "gpt-4.1-mini",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": text,
                        "annotations": [],
                        **({} if lps is None else {"logprobs": lps}),
                    }
                    for text, lps in parts
                ],
            },
        ],
        "usage": {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9},
        "incomplete_details": None,
        "error": None,
    }


def responses_delta(seq: int, delta: str, lps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "sequence_number": seq,
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "delta": delta,
        "logprobs": lps,
    }


# ── llama.cpp server native /completion ─────────────────────────────────────────────────────
# Source: wire doc "llama.cpp server": n_probs -> completion_probabilities [{id, token, bytes,
# logprob, top_logprobs[{id, token, bytes, logprob}]}]; post_sampling_probs -> prob/top_probs.


def lcpp_prob(
    tid: int, token: str, logprob: float, tops: list[tuple[int, str, float]]
) -> dict[str, Any]:
    return {
        "id": tid,
        "token": token,
        "bytes": utf8(token),
        "logprob": logprob,
        "top_logprobs": [
            {"id": i, "token": t, "bytes": utf8(t), "logprob": lp} for i, t, lp in tops
        ],
    }


def lcpp_post_sampling(
    tid: int, token: str, prob: float, tops: list[tuple[int, str, float]]
) -> dict[str, Any]:
    return {
        "id": tid,
        "token": token,
        "bytes": utf8(token),
        "prob": prob,
        "top_probs": [{"id": i, "token": t, "bytes": utf8(t), "prob": p} for i, t, p in tops],
    }


def lcpp_response(
    content: str, probs: list[dict[str, Any]], stop_type: str = "limit"
) -> dict[str, Any]:
    return {
        "index": 0,
        "content": content,
        "id_slot": 0,
        "stop": True,
        "model": "smollm2",
        "tokens_predicted": len(probs),
        "tokens_evaluated": 6,
        "stop_type": stop_type,
        "completion_probabilities": probs,
    }


# ── Hugging Face TGI /generate ──────────────────────────────────────────────────────────────
# Source: wire doc "Other providers": details {finish_reason, generated_tokens, prefill[{id,
# text, logprob|null}], tokens[{id, text, logprob, special}], top_tokens[[{id, text, logprob,
# special}]]}.


def tgi_token(tid: int, text: str, logprob: float | None, special: bool = False) -> dict[str, Any]:
    return {"id": tid, "text": text, "logprob": logprob, "special": special}


def tgi_response(
    text: str,
    tokens: list[dict[str, Any]],
    top: list[list[dict[str, Any]]],
    prefill: list[dict[str, Any]],
    finish: str = "length",
) -> dict[str, Any]:
    return {
        "generated_text": text,
        "details": {
            "finish_reason": finish,
            "generated_tokens": len(tokens),
            "seed": None,
            "prefill": prefill,
            "tokens": tokens,
            "top_tokens": top,
        },
    }


# ── Ollama native ───────────────────────────────────────────────────────────────────────────
# Source: wire doc "Other providers": /api/generate and /api/chat take logprobs/top_logprobs;
# top-level logprobs [{token, logprob, bytes, top_logprobs}]; partial UTF-8 -> U+FFFD, bytes
# [239,191,189]. Surrounding fields per Ollama's API docs (model, created_at, response|message,
# done, done_reason, prompt_eval_count, eval_count).


def ollama_generate(
    response: str, logprobs: list[dict[str, Any]] | None, done: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "llama3.2",
        "created_at": "2025-11-20T10:00:00.123456789Z",
        "response": response,
        "done": done,
    }
    if done:
        out.update(done_reason="stop", prompt_eval_count=8, eval_count=3)
    if logprobs is not None:
        out["logprobs"] = logprobs
    return out


# ── Together AI ─────────────────────────────────────────────────────────────────────────────
# Source: wire doc "Other providers": logprobs integer; choice logprobs {token_ids, tokens,
# token_logprobs, top_logprobs}; echo returns prompt [{text, logprobs}]. Together's docs
# example: chat.completion with top-level "prompt": [] and choices[].logprobs{tokens,
# token_logprobs}.


# ── Google Gemini ───────────────────────────────────────────────────────────────────────────
# Source: wire doc "Other providers": candidate avgLogprobs, logprobsResult {chosenCandidates
# [{token, tokenId, logProbability}], topCandidates [{candidates: [...]}]}; usageMetadata.


def gem_cand(token: str, lp: float | None, tid: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"token": token}
    if lp is not None:
        out["logProbability"] = lp
    if tid is not None:
        out["tokenId"] = tid
    return out


def gemini_response(
    text: str,
    chosen: list[dict[str, Any]],
    top: list[list[dict[str, Any]]] | None,
    finish: str = "STOP",
) -> dict[str, Any]:
    cand: dict[str, Any] = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "finishReason": finish,
        "avgLogprobs": -0.5,
    }
    result: dict[str, Any] = {"chosenCandidates": chosen}
    if top is not None:
        result["topCandidates"] = [{"candidates": c} for c in top]
    cand["logprobsResult"] = result
    return {
        "candidates": [cand],
        "usageMetadata": {
            "promptTokenCount": 4,
            "candidatesTokenCount": len(chosen),
            "totalTokenCount": 4 + len(chosen),
        },
        "modelVersion": "gemini-2.0-flash",
        "responseId": "abc",
    }


# ── Anthropic Messages ──────────────────────────────────────────────────────────────────────
# Source: wire doc "Anthropic Messages API: no logprobs at all"; message shape per Anthropic's
# API reference (id, type "message", role, content [{type: text, text}], stop_reason, usage).

ANTHROPIC_MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4",
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 3},
}
