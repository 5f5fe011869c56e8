"""Serving logic: request model -> GenerationParams -> engine -> OpenAI-shaped JSON or SSE.

Routes (:mod:`.app`) stay thin and call :class:`Serving`, which holds what every endpoint
shares (the engine, admission control, context checks, recording, stream set-up); each endpoint's
logic is its own module: :mod:`.chat`, :mod:`.completions`, :mod:`.responses`, :mod:`.tokens`.
Bodies and stream frames are built by :mod:`.render`. Engine calls run in worker threads (the
engine batches concurrent calls itself), never under a global lock; each generation holds an
admission slot while it runs, so a full server answers 429 instead of queueing without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response

from ..engines.base import GenerationParams
from ..errors import ContextOverflowError, LogprobeError, ModelNotFoundError
from ..types import Completion
from .chat import create_chat_completion
from .completions import create_completion
from .protocol import ChatCompletionRequest, CompletionRequest
from .recording import Prompt, Recorder
from .render import PromptCount, PromptEcho, dumps, guard_stream, json_response, new_id
from .streaming import (
    Admission,
    EngineStream,
    PeekableStream,
    ServerStats,
    Source,
    SSEResponse,
)

if TYPE_CHECKING:
    from ..engines.base import LocalEngine

T = TypeVar("T")


def rename(exc: LogprobeError, params: Mapping[str, str] | None) -> None:
    """Name the field as this endpoint calls it (the engine says ``prompt``/``max_tokens``)."""
    if params and exc.param is not None and exc.param in params:
        exc.param = params[exc.param]


class Serving:
    """Everything the routes need, around one engine."""

    def __init__(
        self,
        engine: LocalEngine,
        *,
        max_logprobs: int,
        max_queue: int,
        recorder: Recorder | None = None,
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
                f"The model '{name}' does not exist; this server serves '{self.model_name}'."
            )

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
                param=param,
            )
        return self.n_ctx - n

    def prompt_len(self, messages: list[dict[str, str]]) -> int:
        rendered = self.engine.render_chat(messages)
        return len(self.engine.tokenize(rendered, add_bos=True, special=True))

    def chat_events(self, messages: list[dict[str, str]], params: GenerationParams) -> Source:
        """A stream source for a chat generation (chat completions and responses): the engine's
        events, then the prompt's :class:`PromptCount` for usage."""
        engine = self.engine

        async def source(stream: EngineStream) -> AsyncIterator[Any]:
            events = await engine.astream(None, params, messages=messages)  # bad input raises
            stream.track(events)
            async for ev in events:
                yield ev
            yield PromptCount(events.prompt_tokens)

        return source

    def recording(
        self,
        endpoint: str,
        prompt: Prompt,
        comp: Completion,
        params: GenerationParams,
        started: float,
    ) -> BackgroundTask | None:
        """A task that records the request after the response went out (None: no store)."""
        if self.recorder is None:
            return None
        return BackgroundTask(self.recorder.record, endpoint, prompt, comp, params, started)

    async def record_now(
        self,
        endpoint: str,
        prompt: Prompt,
        comp: Completion,
        params: GenerationParams,
        started: float,
    ) -> None:
        if self.recorder is not None:
            rec = self.recorder
            await anyio.to_thread.run_sync(
                lambda: rec.record(endpoint, prompt, comp, params, started)
            )

    async def open_stream(
        self, sources: Sequence[Source], params: Mapping[str, str]
    ) -> PeekableStream:
        """Start a response's engine streams; their first item is awaited so that set-up errors
        (bad input, context overflow) become ordinary HTTP errors instead of a broken stream."""
        stream = PeekableStream(EngineStream(sources, self.stats))
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
    def sse(
        stream: PeekableStream, frames: AsyncIterator[str], release: Callable[[], None]
    ) -> SSEResponse:
        def close() -> None:
            stream.close()
            release()

        return SSEResponse(guard_stream(frames), close)

    def base(self, object_: str, rid: str, created: int) -> dict[str, Any]:
        return {
            "id": rid,
            "object": object_,
            "created": created,
            "model": self.model_name,
            "system_fingerprint": None,
        }

    # ------------------------------------------------------------------ /v1/models, /health

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "logprobe",
                    "max_logprobs": self.max_logprobs,
                }
            ],
        }

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": self.model_name,
            **self.stats.snapshot(),
            "max_queue": self.admission.max_in_flight,
        }

    # ------------------------------------------------------------------ endpoints

    async def chat(self, req: ChatCompletionRequest) -> Response:
        """``POST /v1/chat/completions`` (:mod:`.chat`)."""
        return await create_chat_completion(self, req)

    async def completions(self, req: CompletionRequest) -> Response:
        """``POST /v1/completions`` (:mod:`.completions`)."""
        return await create_completion(self, req)

    def prompt_text(self, prompt: str | list[int]) -> str:
        if isinstance(prompt, str):
            return prompt
        raw = b"".join(self.engine.token_bytes(t) for t in prompt)
        return raw.decode("utf-8", errors="replace")


__all__ = [
    "PromptCount",
    "PromptEcho",
    "Serving",
    "dumps",
    "guard_stream",
    "json_response",
    "new_id",
]
