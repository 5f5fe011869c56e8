"""The playground: a prompt sent to the engine, its tokens streamed back live over SSE.

It runs on the server's own machinery (:mod:`logprobe.server.streaming`): the generation takes
a slot of the same admission control as ``/v1`` (429 when full), streams its events to the event
loop (``astream``; a worker thread for an engine without it), and its SSE response closes the
engine stream (cancelling the generation) and frees the slot however it ends: finished, stopped
by the page, or the client gone.

Events (``text/event-stream``): ``token`` (one per generated token: text, prob, logprob,
alternatives), then ``done`` (finish reason, the review decision over all tokens, and the
response id when it was saved to a run) or ``error`` (a one-line message).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from ..errors import EngineError, InvalidRequestError, LogprobeError
from ..server.streaming import (
    Admission,
    EngineStream,
    PeekableStream,
    ServerStats,
    Source,
    SSEResponse,
    open_events,
    sse_frame,
)
from ..types import Choice, Completion, TokenLogprob, tokens_text

if TYPE_CHECKING:
    from ..engines.base import Engine
from .._json import json_safe
from .views import token_page

MAX_PLAYGROUND_TOKENS = 1024
MAX_PROMPT_CHARS = 100_000
EngineFactory = Callable[[], "Engine"]


class PlaygroundRequest(BaseModel):
    """``POST api/playground/generate``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    max_tokens: int = 64
    temperature: float = 0.0
    top_logprobs: int = 5
    chat: bool = False
    run: str | None = None


def lazy_engine(model: str | None = None) -> EngineFactory:
    """A factory that loads the embedded engine (``model`` = GGUF path, default SmolLM2)."""

    def make() -> Engine:
        from ..engines.llamacpp import LlamaEngine

        return LlamaEngine(model_path=model) if model else LlamaEngine()

    return make


class EngineHolder:
    """The playground's engine: given, or built once on first use by a factory."""

    def __init__(self, engine: Engine | None = None, factory: EngineFactory | None = None):
        self._engine = engine
        self._factory = factory
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._engine is not None or self._factory is not None

    @property
    def model_name(self) -> str | None:
        return None if self._engine is None else self._engine.model_name

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                if self._factory is None:
                    raise InvalidRequestError(
                        "this viewer was started without an engine: the playground is off",
                        param="engine",
                    )
                try:
                    self._engine = self._factory()
                except LogprobeError:
                    raise
                except Exception as e:  # a broken model file must not take the viewer down
                    raise EngineError(f"cannot load the playground model: {e}") from None
            return self._engine


def _event(event: str, data: Any) -> str:
    return sse_frame(json.dumps(json_safe(data), allow_nan=False), event=event)


def _source(holder: EngineHolder, prompt: str, params: Any, chat: bool) -> Source:
    async def source(stream: EngineStream) -> AsyncIterator[Any]:
        engine = await anyio.to_thread.run_sync(holder.get)  # loading never blocks the loop
        if chat:
            messages = [{"role": "user", "content": prompt}]
            events = await open_events(engine, None, params, messages=messages)
        else:
            events = await open_events(engine, prompt, params)
        stream.track(events)
        async for ev in events:
            yield ev

    return source


async def playground_response(
    holder: EngineHolder,
    admission: Admission,
    stats: ServerStats,
    prompt: str,
    params: Any,
    *,
    chat: bool,
    save: Callable[[Completion], int] | None,
) -> SSEResponse:
    """Admit, start the generation (its first event awaited, so a failure to start is an HTTP
    error) and stream it as SSE; 429 when the server is full."""
    slot = admission.acquire()
    try:
        stream = PeekableStream(EngineStream([_source(holder, prompt, params, chat)], stats))
        try:
            await stream.prime()
        except BaseException:
            stream.close()
            raise
    except BaseException:
        slot.release()
        raise

    def close() -> None:
        stream.close()
        slot.release()

    response = SSEResponse(_frames(stream, holder, save), close)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _frames(
    stream: PeekableStream, holder: EngineHolder, save: Callable[[Completion], int] | None
) -> AsyncIterator[str]:
    tokens: list[TokenLogprob] = []
    text: list[str] = []
    finish: str | None = None
    try:
        async for _, ev in stream:
            if ev.index != 0:
                continue
            text.append(ev.text)
            if ev.token is not None:
                tokens.append(ev.token)
                view = token_page([ev.token], len(tokens) - 1)[0]
                yield _event("token", {**view, "text": ev.text})
            if ev.finish_reason is not None:
                finish = ev.finish_reason
        done: dict[str, Any] = {
            "finish_reason": finish,
            "n_tokens": len(tokens),
            "text": "".join(text) or tokens_text(tokens),
        }
        done["decision"] = _decision(tokens)
        if save is not None and tokens:
            choice = Choice(text=done["text"], tokens=tuple(tokens), finish_reason=finish)  # type: ignore[arg-type]
            completion = Completion(choices=(choice,), model=holder.model_name or "")
            done["response_id"] = await anyio.to_thread.run_sync(save, completion)
        yield _event("done", done)
    except LogprobeError as e:
        yield _event("error", {"message": e.message, "param": e.param})


def _decision(tokens: list[TokenLogprob]) -> dict[str, Any] | None:
    from ..analysis import gate

    try:
        return gate(tokens).to_dict() if tokens else None
    except LogprobeError:
        return None


__all__ = [
    "MAX_PLAYGROUND_TOKENS",
    "EngineFactory",
    "EngineHolder",
    "PlaygroundRequest",
    "lazy_engine",
    "playground_response",
]
