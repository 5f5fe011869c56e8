"""Serving logic: request model -> GenerationParams -> engine -> OpenAI-shaped JSON or SSE.

Routes (:mod:`.app`) stay thin and call :class:`Serving`. Engine calls run in worker threads
(the engine batches concurrent calls itself), never under a global lock; each generation holds an
admission slot while it runs, so a full server answers 429 instead of queueing without bound.
The Responses API lives in :mod:`.responses`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response

from ..engines.base import GenerationParams, StreamEvent
from ..errors import ContextOverflowError, LogprobeError, ModelNotFoundError
from ..types import Completion, TokenLogprob, Usage
from . import convert
from .errors import error_body
from .protocol import ChatCompletionRequest, CompletionRequest
from .recording import Prompt, Recorder, StreamCollector
from .render import TextOffsets, chat_logprobs, legacy_logprobs, vllm_prompt_logprobs
from .streaming import (
    Admission,
    PeekableStream,
    ServerStats,
    SSEResponse,
    ThreadedStream,
    close_iterator,
    sse_frame,
)

if TYPE_CHECKING:
    from ..engines.base import LocalEngine

logger = logging.getLogger("logprobe.server")
T = TypeVar("T")


def dumps(obj: Any) -> str:
    """Compact JSON; ``allow_nan=False`` makes any stray NaN/inf a loud bug, never bad JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_response(obj: Any, background: BackgroundTask | None = None) -> Response:
    return Response(dumps(obj), media_type="application/json", background=background)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class PromptEcho:
    """An item of an ``echo`` stream: the prompt's own tokens with their logprobs."""

    tokens: tuple[TokenLogprob, ...]


@dataclass(frozen=True)
class PromptCount:
    """An item of a stream asked for usage: how many tokens the prompt has."""

    n: int


def rename(exc: LogprobeError, params: Mapping[str, str] | None) -> None:
    """Name the field as this endpoint calls it (the engine says ``prompt``/``max_tokens``)."""
    if params and exc.param is not None and exc.param in params:
        exc.param = params[exc.param]


class Serving:
    """Everything the routes need, around one engine."""

    def __init__(
        self, engine: LocalEngine, *, max_logprobs: int, max_queue: int, recorder: Recorder | None = None,
    ) -> None:
        self.engine = engine
        self.max_logprobs = max_logprobs
        self.stats = ServerStats()
        self.admission = Admission(max_queue, self.stats)
        self.limiter = anyio.CapacityLimiter(max_queue)
        self.recorder = recorder
        self.model_name: str = engine.model_name
        path = getattr(engine, "model_path", None)
        names = {self.model_name}
        if path:
            names |= {str(path), Path(path).name, Path(path).stem}
        self.model_names = frozenset(names)

    # ------------------------------------------------------------------ shared steps

    @property
    def n_vocab(self) -> int:
        return int(self.engine.n_vocab)

    @property
    def n_ctx(self) -> int:
        return int(getattr(self.engine, "n_ctx_seq", self.engine.n_ctx))

    def check_model(self, name: str | None) -> None:
        if name is not None and name not in self.model_names:
            raise ModelNotFoundError(
                f"The model '{name}' does not exist; this server serves '{self.model_name}'.")

    async def run(self, fn: Callable[[], T], params: Mapping[str, str] | None = None) -> T:
        """Run a blocking engine call in a worker thread. ``params`` renames the engine's
        ``param`` of a context error into the field this endpoint calls it."""
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self.limiter)
        except ContextOverflowError as exc:
            rename(exc, params)
            raise

    async def chat_room(self, messages: list[dict[str, str]], param: str = "messages") -> int:
        """Tokens left in the context after the rendered chat prompt (OpenAI's default
        ``max_tokens``: as many as fit); at least 1, so a full context is a clear 400."""
        n = await self.run(lambda: self.prompt_len(messages))
        if n >= self.n_ctx:
            raise ContextOverflowError(
                f"This model's maximum context length is {self.n_ctx} tokens; the messages "
                f"have {n} tokens, leaving no room for a reply: shorten the messages.",
                param=param)
        return self.n_ctx - n

    def prompt_len(self, messages: list[dict[str, str]]) -> int:
        rendered = self.engine.render_chat(messages)
        return len(self.engine.tokenize(rendered, add_bos=True, special=True))

    def recording(self, endpoint: str, prompt: Prompt, comp: Completion,
                  params: GenerationParams, started: float) -> BackgroundTask | None:
        """A task that records the request after the response went out (None: no store)."""
        if self.recorder is None:
            return None
        return BackgroundTask(self.recorder.record, endpoint, prompt, comp, params, started)

    async def record_now(self, endpoint: str, prompt: Prompt, comp: Completion,
                         params: GenerationParams, started: float) -> None:
        if self.recorder is not None:
            rec = self.recorder
            await anyio.to_thread.run_sync(
                lambda: rec.record(endpoint, prompt, comp, params, started))

    async def open_stream(
        self, factories: Sequence[Callable[[], Iterator[Any]]], params: Mapping[str, str]
    ) -> PeekableStream:
        """Start engine streams in threads; their first item is awaited so that set-up errors
        (bad input, context overflow) become ordinary HTTP errors instead of a broken stream."""
        stream = PeekableStream(ThreadedStream(factories, self.stats))
        try:
            await stream.prime()
        except ContextOverflowError as exc:
            stream.close()
            rename(exc, params)
            raise
        except BaseException:
            stream.close()
            raise
        return stream

    @staticmethod
    def sse(stream: PeekableStream, frames: AsyncIterator[str], release: Callable[[], None]
            ) -> SSEResponse:
        def close() -> None:
            stream.close()
            release()

        return SSEResponse(guard_stream(frames), close)

    def base(self, object_: str, rid: str, created: int) -> dict[str, Any]:
        return {"id": rid, "object": object_, "created": created, "model": self.model_name,
                "system_fingerprint": None}

    # ------------------------------------------------------------------ /v1/models, /health

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model",
                                             "created": 0, "owned_by": "logprobe",
                                             "max_logprobs": self.max_logprobs}]}

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.model_name, **self.stats.snapshot(),
                "max_queue": self.admission.max_in_flight}

    # ------------------------------------------------------------------ chat completions

    async def chat(self, req: ChatCompletionRequest) -> Response:
        started = time.perf_counter()
        self.check_model(req.model)
        messages = convert.chat_messages(req.messages)
        explicit = req.max_completion_tokens is not None or req.max_tokens is not None
        room = self.n_ctx if explicit else await self.chat_room(messages)
        params = convert.chat_params(req, max_logprobs=self.max_logprobs, n_vocab=self.n_vocab,
                                     default_max_tokens=room)
        names = {"prompt": "messages", "max_tokens": "max_completion_tokens"
                 if req.max_completion_tokens is not None else "max_tokens"}
        slot = self.admission.acquire()
        rid, created = new_id("chatcmpl-"), int(time.time())
        try:
            if req.stream:
                return await self._chat_stream(req, messages, params, rid, created, names,
                                               slot.release, started)
            comp: Completion = await self.run(lambda: self.engine.chat(messages, params), names)
        except BaseException:
            slot.release()
            raise
        slot.release()
        body = self.chat_body(comp, params, rid, created)
        return json_response(body, self.recording("chat.completions", messages, comp, params,
                                                  started))

    def chat_body(self, comp: Completion, params: GenerationParams, rid: str, created: int
                  ) -> dict[str, Any]:
        body = self.base("chat.completion", rid, created)
        body["choices"] = [
            {"index": c.index,
             "message": {"role": "assistant", "content": c.text, "refusal": None},
             "logprobs": chat_logprobs(c.tokens) if params.logprobs else None,
             "finish_reason": c.finish_reason or "stop"}
            for c in comp.choices
        ]
        body["usage"] = comp.usage.to_dict()
        if params.prompt_logprobs is not None:
            prompt = comp.choices[0].prompt_tokens or ()
            body["prompt_logprobs"] = vllm_prompt_logprobs(prompt, params.prompt_logprobs)
        return body

    async def _chat_stream(
        self, req: ChatCompletionRequest, messages: list[dict[str, str]],
        params: GenerationParams, rid: str, created: int, names: Mapping[str, str],
        release: Callable[[], None], started: float,
    ) -> SSEResponse:
        engine = self.engine

        def factory() -> Iterator[Any]:
            events = engine.stream(None, params, messages=messages)  # bad input raises here
            try:
                yield from events
            finally:
                close_iterator(events)
            yield PromptCount(self.prompt_len(messages))

        stream = await self.open_stream([factory], names)
        frames = self._chat_frames(stream, req, messages, params, rid, created, started)
        return self.sse(stream, frames, release)

    async def _chat_frames(
        self, stream: PeekableStream, req: ChatCompletionRequest, messages: list[dict[str, str]],
        params: GenerationParams, rid: str, created: int, started: float,
    ) -> AsyncIterator[str]:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        head = self.base("chat.completion.chunk", rid, created)

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
            body = {**head, "choices": choices}
            if include_usage:
                body["usage"] = usage
            return sse_frame(dumps(body))

        for i in range(params.n):
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""},
                          "logprobs": None, "finish_reason": None}])
        prompt_tokens = 0
        collected = StreamCollector(params.n)
        async for _, ev in stream:
            if isinstance(ev, PromptCount):
                prompt_tokens = ev.n
                continue
            assert isinstance(ev, StreamEvent)
            collected.add(ev.index, ev)
            delta = {"content": ev.text} if (ev.text or ev.token is not None) else {}
            logprobs = None
            if params.logprobs and ev.token is not None:
                logprobs = chat_logprobs([ev.token])
            yield chunk([{"index": ev.index, "delta": delta, "logprobs": logprobs,
                          "finish_reason": ev.finish_reason}])
        if include_usage:
            yield chunk([], Usage(prompt_tokens, collected.n_tokens).to_dict())
        yield sse_frame("[DONE]")
        comp = collected.completion(self.model_name, prompt_tokens, params.logprob_mode, rid=rid)
        await self.record_now("chat.completions", messages, comp, params, started)

    # ------------------------------------------------------------------ legacy completions

    async def completions(self, req: CompletionRequest) -> Response:
        started = time.perf_counter()
        self.check_model(req.model)
        prompts = convert.completion_prompts(req.prompt, self.n_vocab)
        params = convert.completion_params(req, max_logprobs=self.max_logprobs,
                                           n_vocab=self.n_vocab, default_max_tokens=16)
        slot = self.admission.acquire()
        rid, created = new_id("cmpl-"), int(time.time())
        try:
            if req.stream:
                return await self._completion_stream(req, prompts, params, rid, created,
                                                     slot.release, started)
            comps = await self._complete_batch(prompts, params)
        except BaseException:
            slot.release()
            raise
        slot.release()
        body = self.completion_body(req, prompts, comps, params, rid, created)
        task = None
        if self.recorder is not None:
            task = BackgroundTask(self._record_batch, prompts, comps, params, started)
        return json_response(body, task)

    def _record_batch(self, prompts: Sequence[str | list[int]], comps: Sequence[Completion],
                      params: GenerationParams, started: float) -> None:
        assert self.recorder is not None
        for prompt, comp in zip(prompts, comps, strict=True):
            self.recorder.record("completions", self.prompt_text(prompt), comp, params, started)

    async def _complete_batch(self, prompts: Sequence[str | list[int]], params: GenerationParams
                              ) -> list[Completion]:
        """All prompts of a batch at once: the engine decodes them together."""
        results: list[Completion | None] = [None] * len(prompts)
        names = {"messages": "prompt"}

        failures: list[Exception] = []

        async def one(i: int, prompt: str | list[int]) -> None:
            try:
                results[i] = await self.run(lambda: self.engine.complete(prompt, params), names)
            except Exception as exc:  # raised below as itself, not as an exception group
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for i, p in enumerate(prompts):
                tg.start_soon(one, i, p)
        if failures:
            raise failures[0]
        return [r for r in results if r is not None]

    def prompt_text(self, prompt: str | list[int]) -> str:
        if isinstance(prompt, str):
            return prompt
        raw = b"".join(self.engine.token_bytes(t) for t in prompt)
        return raw.decode("utf-8", errors="replace")

    def completion_body(
        self, req: CompletionRequest, prompts: Sequence[str | list[int]],
        comps: Sequence[Completion], params: GenerationParams, rid: str, created: int,
    ) -> dict[str, Any]:
        choices = []
        n_prompt, n_completion = 0, 0
        for p_idx, (prompt, comp) in enumerate(zip(prompts, comps, strict=True)):
            ptext = self.prompt_text(prompt)
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
                    "logprobs": logprobs, "finish_reason": c.finish_reason or "length"}
                if req.prompt_logprobs is not None:
                    choice["prompt_logprobs"] = vllm_prompt_logprobs(prompt_tokens,
                                                                     req.prompt_logprobs)
                choices.append(choice)
        body = self.base("text_completion", rid, created)
        body["choices"] = sorted(choices, key=lambda c: c["index"])
        body["usage"] = Usage(n_prompt, n_completion).to_dict()
        return body

    async def _completion_stream(
        self, req: CompletionRequest, prompts: Sequence[str | list[int]],
        params: GenerationParams, rid: str, created: int, release: Callable[[], None],
        started: float,
    ) -> SSEResponse:
        engine = self.engine
        echo_logprobs = req.echo and req.logprobs is not None
        gen_params = replace(params, prompt_logprobs=None)

        def make(prompt: str | list[int]) -> Callable[[], Iterator[Any]]:
            def factory() -> Iterator[Any]:
                echo = None
                if echo_logprobs:
                    scored = engine.complete(prompt, replace(params, max_tokens=0, n=1))
                    echo = PromptEcho(tuple(scored.choices[0].prompt_tokens or ()))
                # started before anything is yielded, so bad input is an HTTP error
                events = engine.stream(prompt, gen_params) if params.max_tokens > 0 else iter(())
                try:
                    if echo is not None:
                        yield echo
                    yield from events
                finally:
                    close_iterator(events)
                ids = prompt if isinstance(prompt, list) else engine.tokenize(prompt, add_bos=True)
                yield PromptCount(len(ids))
            return factory

        stream = await self.open_stream([make(p) for p in prompts], {"messages": "prompt"})
        frames = self._completion_frames(stream, req, prompts, params, rid, created, started)
        return self.sse(stream, frames, release)

    async def _completion_frames(
        self, stream: PeekableStream, req: CompletionRequest, prompts: Sequence[str | list[int]],
        params: GenerationParams, rid: str, created: int, started: float,
    ) -> AsyncIterator[str]:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        head = self.base("text_completion", rid, created)
        n, total = params.n, len(prompts) * params.n
        ptexts = [self.prompt_text(p) for p in prompts]
        offsets = [TextOffsets(0 if req.echo else len(ptexts[i // n])) for i in range(total)]
        collected = StreamCollector(total)
        echoed: set[int] = set()
        prompt_counts = [0] * len(prompts)

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
            body = {**head, "choices": choices}
            if include_usage:
                body["usage"] = usage
            return sse_frame(dumps(body))

        def choice(index: int, text: str, logprobs: Any, finish: str | None) -> str:
            return chunk([{"index": index, "text": text, "logprobs": logprobs,
                           "finish_reason": finish}])

        async for p_idx, ev in stream:
            if isinstance(ev, PromptCount):
                prompt_counts[p_idx] = ev.n
                continue
            if isinstance(ev, PromptEcho):
                for idx in range(p_idx * n, p_idx * n + n):
                    echoed.add(idx)
                    yield choice(idx, ptexts[p_idx],
                                 legacy_logprobs(ev.tokens, offsets[idx], top=req.logprobs), None)
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
        if include_usage:
            yield chunk([], Usage(sum(prompt_counts), collected.n_tokens).to_dict())
        yield sse_frame("[DONE]")
        for p_idx, prompt in enumerate(prompts):
            comp = collected.completion(self.model_name, prompt_counts[p_idx],
                                        params.logprob_mode,
                                        indices=range(p_idx * n, p_idx * n + n), rid=rid)
            await self.record_now("completions", self.prompt_text(prompt), comp, params, started)


async def guard_stream(frames: AsyncIterator[str]) -> AsyncIterator[str]:
    """Turn an error raised mid-stream into a final OpenAI-shaped error event."""
    try:
        async for frame in frames:
            yield frame
    except LogprobeError as exc:
        yield sse_frame(dumps(error_body(exc.message, exc.error_type, exc.param, exc.code)))
    except Exception as exc:  # a bug: say so in the stream instead of cutting it silently
        logger.exception("stream failed")
        yield sse_frame(dumps(error_body(f"The server had an error while streaming "
                                         f"({type(exc).__name__}).", "server_error")))


__all__ = ["PromptCount", "PromptEcho", "Serving", "dumps", "guard_stream", "json_response",
           "new_id"]
