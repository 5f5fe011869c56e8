"""``POST /v1/completions``: legacy completions for one prompt or a batch, with OpenAI's legacy
``logprobs`` (``tokens``/``token_logprobs``/``top_logprobs``/``text_offset``), ``echo`` of the
prompt's own logprobs, and vLLM's ``prompt_logprobs``; or their chunks over SSE."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response

from ..engines.base import GenerationParams, StreamEvent
from ..types import Completion, Usage
from . import convert
from .protocol import CompletionRequest
from .recording import StreamCollector
from .render import (
    FrameWriter,
    PromptCount,
    PromptEcho,
    TextOffsets,
    json_response,
    legacy_logprobs,
    new_id,
    vllm_prompt_logprobs,
)
from .streaming import EngineStream, PeekableStream, Source, SSEResponse

if TYPE_CHECKING:
    from .serving import Serving

PromptIn = str | list[int]
NAMES = {"messages": "prompt"}


async def create_completion(serving: Serving, req: CompletionRequest) -> Response:
    started = time.perf_counter()
    serving.check_model(req.model)
    prompts = convert.completion_prompts(req.prompt, serving.n_vocab)
    params = convert.completion_params(
        req, max_logprobs=serving.max_logprobs, n_vocab=serving.n_vocab, default_max_tokens=16
    )
    slot = serving.admission.acquire()
    rid, created = new_id("cmpl-"), int(time.time())
    try:
        if req.stream:
            return await _stream(serving, req, prompts, params, rid, created, slot.release, started)
        comps = await _complete_batch(serving, prompts, params)
    except BaseException:
        slot.release()
        raise
    slot.release()
    body = completion_body(serving, req, prompts, comps, params, rid, created)
    task = None
    if serving.recorder is not None:
        task = BackgroundTask(_record_batch, serving, prompts, comps, params, started)
    return json_response(body, task)


def _record_batch(
    serving: Serving,
    prompts: Sequence[PromptIn],
    comps: Sequence[Completion],
    params: GenerationParams,
    started: float,
) -> None:
    assert serving.recorder is not None
    for prompt, comp in zip(prompts, comps, strict=True):
        serving.recorder.record("completions", serving.prompt_text(prompt), comp, params, started)


async def _complete_batch(
    serving: Serving, prompts: Sequence[PromptIn], params: GenerationParams
) -> list[Completion]:
    """All prompts of a batch at once: the engine decodes them together."""
    results: list[Completion | None] = [None] * len(prompts)
    failures: list[Exception] = []

    async def one(i: int, prompt: PromptIn) -> None:
        try:
            results[i] = await serving.run(lambda: serving.engine.complete(prompt, params), NAMES)
        except Exception as exc:  # raised below as itself, not as an exception group
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for i, p in enumerate(prompts):
            tg.start_soon(one, i, p)
    if failures:
        raise failures[0]
    return [r for r in results if r is not None]


def completion_body(
    serving: Serving,
    req: CompletionRequest,
    prompts: Sequence[PromptIn],
    comps: Sequence[Completion],
    params: GenerationParams,
    rid: str,
    created: int,
) -> dict[str, Any]:
    choices = []
    n_prompt, n_completion = 0, 0
    for p_idx, (prompt, comp) in enumerate(zip(prompts, comps, strict=True)):
        ptext = serving.prompt_text(prompt)
        n_prompt += comp.usage.prompt_tokens
        n_completion += comp.usage.completion_tokens
        for c in comp.choices:
            prompt_tokens = c.prompt_tokens or ()
            logprobs = None
            if req.logprobs is not None:
                offsets = TextOffsets(0 if req.echo else len(ptext))
                toks = (tuple(prompt_tokens) if req.echo else ()) + tuple(c.tokens)
                logprobs = legacy_logprobs(toks, offsets, top=req.logprobs)
            choice: dict[str, Any] = {
                "index": p_idx * params.n + c.index,
                "text": (ptext + c.text) if req.echo else c.text,
                "logprobs": logprobs,
                "finish_reason": c.finish_reason or "length",
            }
            if req.prompt_logprobs is not None:
                choice["prompt_logprobs"] = vllm_prompt_logprobs(prompt_tokens, req.prompt_logprobs)
            choices.append(choice)
    body = serving.base("text_completion", rid, created)
    body["choices"] = sorted(choices, key=lambda c: c["index"])
    body["usage"] = Usage(n_prompt, n_completion).to_dict()
    return body


async def _stream(
    serving: Serving,
    req: CompletionRequest,
    prompts: Sequence[PromptIn],
    params: GenerationParams,
    rid: str,
    created: int,
    release: Callable[[], None],
    started: float,
) -> SSEResponse:
    engine = serving.engine
    echo_logprobs = req.echo and req.logprobs is not None
    gen_params = replace(params, prompt_logprobs=None)

    def make(prompt: PromptIn) -> Source:
        async def source(stream: EngineStream) -> AsyncIterator[Any]:
            echo = None
            if echo_logprobs:
                echo_params = replace(params, max_tokens=0, n=1)
                scored = await serving.run(lambda: engine.complete(prompt, echo_params))
                echo = PromptEcho(tuple(scored.choices[0].prompt_tokens or ()))
            if params.max_tokens == 0:  # pure echo: nothing to generate
                if echo is not None:
                    yield echo
                if isinstance(prompt, list):
                    yield PromptCount(len(prompt))
                else:
                    text = prompt
                    ids = await serving.run(lambda: engine.tokenize(text, add_bos=True))
                    yield PromptCount(len(ids))
                return
            # started before anything is yielded, so bad input is an HTTP error
            events = await engine.astream(prompt, gen_params)
            stream.track(events)
            if echo is not None:
                yield echo
            async for ev in events:
                yield ev
            yield PromptCount(events.prompt_tokens)

        return source

    stream = await serving.open_stream([make(p) for p in prompts], NAMES)
    frames = _frames(serving, stream, req, prompts, params, rid, created, started)
    return serving.sse(stream, frames, release)


async def _frames(
    serving: Serving,
    stream: PeekableStream,
    req: CompletionRequest,
    prompts: Sequence[PromptIn],
    params: GenerationParams,
    rid: str,
    created: int,
    started: float,
) -> AsyncIterator[str]:
    out = FrameWriter(
        serving.base("text_completion", rid, created),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
    )
    n, total = params.n, len(prompts) * params.n
    ptexts = [serving.prompt_text(p) for p in prompts]
    offsets = [TextOffsets(0 if req.echo else len(ptexts[i // n])) for i in range(total)]
    collected = StreamCollector(total)
    echoed: set[int] = set()
    prompt_counts = [0] * len(prompts)

    def choice(index: int, text: str, logprobs: Any, finish: str | None) -> str:
        return out.chunk(
            [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}]
        )

    async for p_idx, ev in stream:
        if isinstance(ev, PromptCount):
            prompt_counts[p_idx] = ev.n
            continue
        if isinstance(ev, PromptEcho):
            for idx in range(p_idx * n, p_idx * n + n):
                echoed.add(idx)
                yield choice(
                    idx,
                    ptexts[p_idx],
                    legacy_logprobs(ev.tokens, offsets[idx], top=req.logprobs),
                    None,
                )
            continue
        assert isinstance(ev, StreamEvent)
        idx = p_idx * n + ev.index
        if req.echo and idx not in echoed:
            echoed.add(idx)
            yield choice(idx, ptexts[p_idx], None, None)
        collected.add(idx, ev)
        lp = None
        if req.logprobs is not None and ev.token is not None:
            lp = legacy_logprobs([ev.token], offsets[idx], top=req.logprobs)
        yield choice(idx, ev.text, lp, ev.finish_reason)
    for idx in range(total):  # max_tokens: 0 (pure echo) ends without engine events
        if req.echo and idx not in echoed:
            yield choice(idx, ptexts[idx // n], None, None)
        if collected.finish[idx] is None:
            yield choice(idx, "", None, "length")
    if out.include_usage:
        yield out.chunk([], Usage(sum(prompt_counts), collected.n_tokens).to_dict())
    yield out.done()
    for p_idx, prompt in enumerate(prompts):
        comp = collected.completion(
            serving.model_name,
            prompt_counts[p_idx],
            params.logprob_mode,
            indices=range(p_idx * n, p_idx * n + n),
            rid=rid,
        )
        await serving.record_now("completions", serving.prompt_text(prompt), comp, params, started)


__all__ = ["completion_body", "create_completion"]
