"""``POST /v1/chat/completions``: a chat completion, or its chunks over SSE, with logprobs in
OpenAI's ``logprobs.content`` shape (and vLLM's ``prompt_logprobs`` when asked)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from ..engines.base import GenerationParams, StreamEvent
from ..types import Completion, Usage
from . import convert
from .protocol import ChatCompletionRequest
from .recording import StreamCollector
from .render import (
    CHAT_JSON,
    FrameWriter,
    PromptCount,
    chat_logprobs,
    json_response,
    new_id,
    vllm_prompt_logprobs,
)
from .streaming import PeekableStream, SSEResponse

if TYPE_CHECKING:
    from .serving import Serving

Messages = list[dict[str, str]]


async def create_chat_completion(serving: Serving, req: ChatCompletionRequest) -> Response:
    started = time.perf_counter()
    serving.check_model(req.model)
    messages = convert.chat_messages(req.messages)
    explicit = req.max_completion_tokens is not None or req.max_tokens is not None
    room = serving.n_ctx if explicit else await serving.chat_room(messages)
    params = convert.chat_params(
        req, max_logprobs=serving.max_logprobs, n_vocab=serving.n_vocab, default_max_tokens=room
    )
    names = {
        "prompt": "messages",
        "max_tokens": "max_completion_tokens"
        if req.max_completion_tokens is not None
        else "max_tokens",
    }
    slot = serving.admission.acquire()
    rid, created = new_id("chatcmpl-"), int(time.time())
    try:
        if req.stream:
            return await _stream(
                serving, req, messages, params, rid, created, names, slot.release, started
            )
        comp: Completion = await serving.run(lambda: serving.engine.chat(messages, params), names)
    except BaseException:
        slot.release()
        raise
    slot.release()
    body = chat_body(serving, comp, params, rid, created)
    return json_response(
        body, serving.recording("chat.completions", messages, comp, params, started)
    )


def chat_body(
    serving: Serving, comp: Completion, params: GenerationParams, rid: str, created: int
) -> dict[str, Any]:
    body = serving.base("chat.completion", rid, created)
    body["choices"] = [
        {
            "index": c.index,
            "message": {"role": "assistant", "content": c.text, "refusal": None},
            "logprobs": chat_logprobs(c.tokens) if params.logprobs else None,
            "finish_reason": c.finish_reason or "stop",
        }
        for c in comp.choices
    ]
    body["usage"] = comp.usage.to_dict()
    if params.prompt_logprobs is not None:
        prompt = comp.choices[0].prompt_tokens or ()
        body["prompt_logprobs"] = vllm_prompt_logprobs(prompt, params.prompt_logprobs)
    return body


async def _stream(
    serving: Serving,
    req: ChatCompletionRequest,
    messages: Messages,
    params: GenerationParams,
    rid: str,
    created: int,
    names: Mapping[str, str],
    release: Callable[[], None],
    started: float,
) -> SSEResponse:
    stream = await serving.open_stream([serving.chat_events(messages, params)], names)
    frames = _frames(serving, stream, req, messages, params, rid, created, started)
    return serving.sse(stream, frames, release)


async def _frames(
    serving: Serving,
    stream: PeekableStream,
    req: ChatCompletionRequest,
    messages: Messages,
    params: GenerationParams,
    rid: str,
    created: int,
    started: float,
) -> AsyncIterator[str]:
    out = FrameWriter(
        serving.base("chat.completion.chunk", rid, created),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
    )
    for i in range(params.n):
        yield out.chunk(
            [
                {
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )
    prompt_tokens = 0
    collected = StreamCollector(params.n)
    async for _, ev in stream:
        if isinstance(ev, PromptCount):
            prompt_tokens = ev.n
            continue
        assert isinstance(ev, StreamEvent)
        collected.add(ev.index, ev)
        content = ev.text if (ev.text or ev.token is not None) else None
        logprobs = None
        if params.logprobs and ev.token is not None:
            logprobs = CHAT_JSON.logprobs(ev.token)
        yield out.chat_delta(ev.index, content, logprobs, ev.finish_reason)
    if out.include_usage:
        yield out.chunk([], Usage(prompt_tokens, collected.n_tokens).to_dict())
    yield out.done()
    comp = collected.completion(serving.model_name, prompt_tokens, params.logprob_mode, rid=rid)
    await serving.record_now("chat.completions", messages, comp, params, started)


__all__ = ["chat_body", "create_chat_completion"]
