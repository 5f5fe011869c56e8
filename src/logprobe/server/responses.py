"""``POST /v1/responses``: the Responses API, text in and text out, with output-text logprobs.

Non-streaming, each ``output_text`` part carries ``logprobs: [{token, logprob, bytes,
top_logprobs}]`` when asked for (``include: ["message.output_text.logprobs"]`` or
``top_logprobs``). Streaming emits ``response.created``, ``response.in_progress``,
``response.output_item.added``, ``response.content_part.added``, one
``response.output_text.delta`` per token (its ``logprobs`` entry has no ``bytes``, as OpenAI's),
``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done`` and
``response.completed`` (whose ``response`` holds the full logprobs with bytes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from ..engines.base import GenerationParams, StreamEvent
from ..types import Completion, TokenLogprob
from . import convert
from .protocol import ResponsesRequest
from .recording import StreamCollector
from .render import FrameWriter, PromptCount, chat_entry, json_response, new_id
from .streaming import PeekableStream, SSEResponse

if TYPE_CHECKING:
    from .serving import Serving

NAMES = {"prompt": "input", "max_tokens": "max_output_tokens"}


def _usage(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt_tokens + output_tokens,
    }


def _text_part(text: str, logprobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}


def _message(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


class ResponseBuilder:
    """The ``response`` object of one request, in its successive states."""

    def __init__(self, serving: Serving, req: ResponsesRequest, params: GenerationParams) -> None:
        self.req, self.params = req, params
        self.model = serving.model_name
        self.rid, self.item_id = new_id("resp_"), new_id("msg_")
        self.created = int(time.time())

    def entries(
        self, tokens: tuple[TokenLogprob, ...] | list[TokenLogprob], *, with_bytes: bool = True
    ) -> list[dict[str, Any]]:
        if not self.params.logprobs:
            return []
        return [chat_entry(t, with_bytes=with_bytes) for t in tokens]

    def body(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        incomplete = None
        if status == "completed" and finish_reason == "length":
            status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        req = self.req
        return {
            "id": self.rid,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "usage": usage,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "metadata": req.metadata or {},
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "temperature": self.params.temperature,
            "top_p": self.params.top_p,
            "top_logprobs": req.top_logprobs,
            "tool_choice": "auto",
            "tools": [],
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "store": False,
            "user": req.user,
        }

    def final(
        self,
        text: str,
        tokens: tuple[TokenLogprob, ...] | list[TokenLogprob],
        finish_reason: str | None,
        prompt_tokens: int,
    ) -> dict[str, Any]:
        part = _text_part(text, self.entries(tokens))
        return self.body(
            "completed",
            [_message(self.item_id, "completed", [part])],
            _usage(prompt_tokens, len(tokens)),
            finish_reason,
        )


async def create_response(serving: Serving, req: ResponsesRequest) -> Response:
    started = time.perf_counter()
    serving.check_model(req.model)
    messages = convert.responses_messages(req)
    room = (
        serving.n_ctx
        if req.max_output_tokens is not None
        else await serving.chat_room(messages, "input")
    )
    params = convert.responses_params(
        req, max_logprobs=serving.max_logprobs, default_max_tokens=room
    )
    slot = serving.admission.acquire()
    builder = ResponseBuilder(serving, req, params)
    try:
        if req.stream:
            return await _stream(serving, builder, messages, slot.release, started)
        comp: Completion = await serving.run(lambda: serving.engine.chat(messages, params), NAMES)
    except BaseException:
        slot.release()
        raise
    slot.release()
    choice = comp.choices[0]
    body = builder.final(choice.text, choice.tokens, choice.finish_reason, comp.usage.prompt_tokens)
    return json_response(body, serving.recording("responses", messages, comp, params, started))


async def _stream(
    serving: Serving,
    builder: ResponseBuilder,
    messages: list[dict[str, str]],
    release: Callable[[], None],
    started: float,
) -> SSEResponse:
    stream = await serving.open_stream([serving.chat_events(messages, builder.params)], NAMES)
    return serving.sse(stream, _events(serving, builder, stream, messages, started), release)


async def _events(
    serving: Serving,
    b: ResponseBuilder,
    stream: PeekableStream,
    messages: list[dict[str, str]],
    started: float,
) -> AsyncIterator[str]:
    event = FrameWriter().event
    where = {"item_id": b.item_id, "output_index": 0, "content_index": 0}
    yield event("response.created", response=b.body("in_progress", [], None))
    yield event("response.in_progress", response=b.body("in_progress", [], None))
    yield event(
        "response.output_item.added", output_index=0, item=_message(b.item_id, "in_progress", [])
    )
    yield event("response.content_part.added", **where, part=_text_part("", []))
    collected = StreamCollector(1)
    prompt_tokens = 0
    async for _, ev in stream:
        if isinstance(ev, PromptCount):
            prompt_tokens = ev.n
            continue
        assert isinstance(ev, StreamEvent)
        collected.add(0, ev)
        if ev.token is None and not ev.text:
            continue
        tokens = [ev.token] if ev.token is not None else []
        yield event(
            "response.output_text.delta",
            **where,
            delta=ev.text,
            logprobs=b.entries(tokens, with_bytes=False),
        )
    text, tokens = collected.texts[0], collected.tokens[0]
    yield event(
        "response.output_text.done",
        **where,
        text=text,
        logprobs=b.entries(tokens, with_bytes=False),
    )
    part = _text_part(text, b.entries(tokens))
    yield event("response.content_part.done", **where, part=part)
    yield event(
        "response.output_item.done", output_index=0, item=_message(b.item_id, "completed", [part])
    )
    final = b.final(text, tokens, collected.finish[0], prompt_tokens)
    yield event(f"response.{final['status']}", response=final)  # completed | incomplete
    comp = collected.completion(serving.model_name, prompt_tokens, b.params.logprob_mode, rid=b.rid)
    await serving.record_now("responses", messages, comp, b.params, started)


__all__ = ["ResponseBuilder", "create_response"]
