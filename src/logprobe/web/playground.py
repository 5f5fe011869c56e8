"""The playground: a prompt sent to the engine, its tokens streamed back live over SSE.

Events (``text/event-stream``): ``token`` (one per generated token: text, prob, logprob,
alternatives), then ``done`` (finish reason, the review decision over all tokens, and the
response id when it was saved to a run) or ``error`` (a one-line message).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..errors import EngineError, InvalidRequestError, LogprobeError
from ..types import Choice, Completion, TokenLogprob, tokens_text
from .views import json_safe, token_page

MAX_PLAYGROUND_TOKENS = 1024
EngineFactory = Callable[[], Any]


def lazy_engine(model: str | None = None) -> EngineFactory:
    """A factory that loads the embedded engine (``model`` = GGUF path, default SmolLM2)."""

    def make() -> Any:
        from ..engines.llamacpp import LlamaEngine

        return LlamaEngine(model_path=model) if model else LlamaEngine()

    return make


class EngineHolder:
    """The playground's engine: given, or built once on first use by a factory."""

    def __init__(self, engine: Any = None, factory: EngineFactory | None = None):
        self._engine = engine
        self._factory = factory
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._engine is not None or self._factory is not None

    @property
    def model_name(self) -> str | None:
        return None if self._engine is None else str(getattr(self._engine, "model_name", ""))

    def get(self) -> Any:
        with self._lock:
            if self._engine is None:
                if self._factory is None:
                    raise InvalidRequestError("this viewer was started without an engine: the "
                                              "playground is off", param="engine")
                try:
                    self._engine = self._factory()
                except LogprobeError:
                    raise
                except Exception as e:  # a broken model file must not take the viewer down
                    raise EngineError(f"cannot load the playground model: {e}") from None
            return self._engine


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(json_safe(data), allow_nan=False)}\n\n"


def _start(engine: Any, prompt: str, params: Any, chat: bool) -> Iterator[Any]:
    if chat:
        return iter(engine.stream(None, params, messages=[{"role": "user", "content": prompt}]))
    return iter(engine.stream(prompt, params))


async def stream_events(request: Request, holder: EngineHolder, prompt: str, params: Any, *,
                        chat: bool, save: Callable[[Completion], int] | None
                        ) -> AsyncIterator[str]:
    """SSE lines for one generation; the engine iterator is closed (cancelling the
    generation) when the client goes away."""
    tokens: list[TokenLogprob] = []
    text: list[str] = []
    finish: str | None = None
    it: Iterator[Any] | None = None
    try:
        engine = await run_in_threadpool(holder.get)
        it = await run_in_threadpool(_start, engine, prompt, params, chat)
        while not await request.is_disconnected():
            ev = await run_in_threadpool(next, it, None)
            if ev is None or ev.index != 0:
                if ev is None:
                    break
                continue
            text.append(ev.text)
            if ev.token is not None:
                tokens.append(ev.token)
                view = token_page([ev.token], len(tokens) - 1)[0]
                yield _sse("token", {**view, "text": ev.text})
            if ev.finish_reason is not None:
                finish = ev.finish_reason
        done: dict[str, Any] = {"finish_reason": finish, "n_tokens": len(tokens),
                                "text": "".join(text) or tokens_text(tokens)}
        done["decision"] = _decision(tokens)
        if save is not None and tokens:
            choice = Choice(text=done["text"], tokens=tuple(tokens), finish_reason=finish)  # type: ignore[arg-type]
            completion = Completion(choices=(choice,), model=holder.model_name or "")
            done["response_id"] = await run_in_threadpool(save, completion)
        yield _sse("done", done)
    except LogprobeError as e:
        yield _sse("error", {"message": e.message, "param": e.param})
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            await run_in_threadpool(close)


def _decision(tokens: list[TokenLogprob]) -> dict[str, Any] | None:
    try:
        from ..analysis import gate
    except ImportError:
        return None
    try:
        return gate(tokens).to_dict() if tokens else None
    except LogprobeError:
        return None
