"""The remote engine: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, llama-cpp-python,
Ollama, TGI, ``logprobe serve``) behind the same interface as the embedded engine.

    eng = RemoteEngine("http://127.0.0.1:8000/v1", "model-name", api_key=None)
    eng.chat(messages, params) / eng.complete(prompt, params) -> Completion
    eng.stream(prompt | messages=..., params) -> Iterator[StreamEvent]   (SSE, parsed as it comes)
    eng.score(text, prompt=...) / eng.score_continuations(prompt, texts)  (needs ``echo``)
    eng.probe() -> ServerCapabilities                                     (small real requests)

Every answer goes through :mod:`logprobe.normalize`, so remote tokens are the same neutral type.
Servers differ; where this engine learns a quirk it adapts and remembers it in ``quirks`` (a
:class:`~._quirks.ServerQuirks` it owns; e.g. llama-cpp-python returns no logprobs unless
``top_logprobs >= 1``: the engine then asks for one and drops it), and where it cannot give what
was asked it raises a clear error instead of returning less.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from typing_extensions import Unpack

from ..errors import InvalidRequestError, NoLogprobsError
from ..normalize import normalize_with_notes
from ..types import Completion, ScoredText, TokenLogprob
from . import _remote_score
from ._http import HttpClient, RetryPolicy, split_base_url
from ._probe import ServerCapabilities, probe_server
from ._quirks import ServerQuirks
from ._remote_stream import stream_events
from .base import (
    DEFAULT_MAX_LOGPROBS,
    GenerationOptions,
    GenerationParams,
    Message,
    Prompt,
    StreamEvent,
    resolve_params,
)

__all__ = ["RemoteEngine", "ServerCapabilities"]


class RemoteEngine:
    """An engine backed by an OpenAI-compatible HTTP server.

    Args:
        base_url: the API base, e.g. ``http://127.0.0.1:8000/v1`` (``/v1`` is added to a bare
            ``http://host:port``).
        model: the model name sent with every request.
        api_key: bearer token; defaults to the ``OPENAI_API_KEY`` environment variable.
        timeout: seconds to wait for a connection or for the next bytes of an answer.
        max_retries: retries on 429, 5xx, timeouts and dropped connections (exponential backoff
            from ``backoff`` seconds, honouring ``Retry-After``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_logprobs: int = DEFAULT_MAX_LOGPROBS,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise InvalidRequestError("model must be a non-empty string", param="model")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidRequestError("max_retries must be an integer >= 0", param="max_retries")
        if not timeout or timeout <= 0:
            raise InvalidRequestError(
                "timeout must be a positive number of seconds", param="timeout"
            )
        self.base_url, self.root_url = split_base_url(base_url)
        self.model_name = model
        self.max_logprobs = max_logprobs
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.http = HttpClient(
            self.base_url,
            api_key=key,
            timeout=float(timeout),
            policy=RetryPolicy(max_retries=max_retries, backoff=backoff),
        )
        self.quirks = ServerQuirks()
        """What this engine has learned about its server (changed only by this class)."""

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteEngine({self.base_url!r}, model={self.model_name!r})"

    # --- requests -----------------------------------------------------------------------------

    def sampling_body(self, p: GenerationParams) -> dict[str, Any]:
        """The request fields for ``p`` shared by chat and completions (extensions only when
        they differ from their defaults, since strict servers reject unknown fields)."""
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "n": p.n,
        }
        if p.top_p != 1.0:
            body["top_p"] = p.top_p
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        if p.presence_penalty:
            body["presence_penalty"] = p.presence_penalty
        if p.frequency_penalty:
            body["frequency_penalty"] = p.frequency_penalty
        if p.logit_bias:
            body["logit_bias"] = {str(k): v for k, v in p.logit_bias.items()}
        if p.top_k:
            body["top_k"] = p.top_k
        if p.min_p:
            body["min_p"] = p.min_p
        if p.logprob_mode == "processed":
            body["logprobs_mode"] = "processed_logprobs"
        return body

    def chat_body(self, messages: Sequence[Message], p: GenerationParams) -> dict[str, Any]:
        if not messages:
            raise InvalidRequestError("messages must be a non-empty list", param="messages")
        body = self.sampling_body(p)
        body["messages"] = [dict(m) for m in messages]
        if p.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = max(p.top_logprobs, self.quirks.min_top_logprobs)
        if p.prompt_logprobs is not None:
            body["prompt_logprobs"] = p.prompt_logprobs
        return body

    def completion_body(
        self, prompt: Prompt | Sequence[str], p: GenerationParams
    ) -> dict[str, Any]:
        body = self.sampling_body(p)
        body["prompt"] = prompt if isinstance(prompt, str) else list(prompt)
        if p.logprobs or p.prompt_logprobs is not None:
            body["logprobs"] = max(
                p.top_logprobs, p.prompt_logprobs or 0, self.quirks.min_top_logprobs
            )
        if p.prompt_logprobs is not None:
            body["echo"] = True
        return body

    def _params(
        self, params: GenerationParams | None, options: GenerationOptions
    ) -> GenerationParams:
        return resolve_params(params, max_logprobs=self.max_logprobs, **options)

    def _finish(self, payload: Any, p: GenerationParams) -> Completion:
        comp = normalize_with_notes(payload, require_logprobs=p.logprobs).completion
        if len(comp.choices) != p.n:
            raise InvalidRequestError(
                f"{self.base_url} returned {len(comp.choices)} choice(s) for n={p.n}: the server "
                "does not support n > 1; make n separate requests instead",
                param="n",
            )
        return trim_completion(comp, p)

    def complete(
        self,
        prompt: Prompt,
        params: GenerationParams | None = None,
        *,
        constraint: Any = None,
        **options: Unpack[GenerationOptions],
    ) -> Completion:
        """``POST /completions``; ``prompt_logprobs`` is served through ``echo``. Options go
        in ``params`` or as keywords (``top_logprobs=5, max_tokens=8``)."""
        _no_constraint(constraint)
        p = self._params(params, options)
        if not isinstance(prompt, str) and not all(isinstance(t, int) for t in prompt):
            raise InvalidRequestError(
                "prompt must be a string or a list of token ids", param="prompt"
            )
        return self._request("/completions", lambda: self.completion_body(prompt, p), p)

    def chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        constraint: Any = None,
        **options: Unpack[GenerationOptions],
    ) -> Completion:
        """``POST /chat/completions`` (options in ``params`` or as keywords)."""
        _no_constraint(constraint)
        p = self._params(params, options)
        return self._request("/chat/completions", lambda: self.chat_body(messages, p), p)

    def _request(self, route: str, make_body: Any, p: GenerationParams) -> Completion:
        try:
            return self._finish(self.http.post_json(route, make_body()), p)
        except NoLogprobsError:
            if not p.logprobs or self.quirks.min_top_logprobs or p.top_logprobs:
                raise
        # The server gave no logprobs for top_logprobs=0 (llama-cpp-python): ask for one
        # alternative from now on and drop it from results.
        self.quirks.require_alternatives()
        return self._finish(self.http.post_json(route, make_body()), p)

    def stream(
        self,
        prompt: Prompt | None = None,
        params: GenerationParams | None = None,
        *,
        messages: Sequence[Message] | None = None,
        constraint: Any = None,
        **options: Unpack[GenerationOptions],
    ) -> Iterator[StreamEvent]:
        """Token events parsed from the server's SSE stream; closing the iterator closes the
        connection (the server then cancels the generation)."""
        _no_constraint(constraint)
        p = self._params(params, options)
        if (prompt is None) == (messages is None):
            raise InvalidRequestError("give exactly one of prompt or messages", param="prompt")
        if messages is not None:
            route, body = "/chat/completions", self.chat_body(messages, p)
        else:
            assert prompt is not None
            route, body = "/completions", self.completion_body(prompt, p)
        body["stream"] = True
        return stream_events(self, route, body, p, on_restart=self.quirks.require_alternatives)

    # --- scoring ------------------------------------------------------------------------------

    def score(
        self,
        text: str,
        *,
        prompt: Prompt | None = None,
        top_logprobs: int = 0,
        messages: Sequence[Message] | None = None,
    ) -> ScoredText:
        """Teacher-forced logprobs of ``text`` via ``echo`` (the first token has no logprob
        without a prompt)."""
        if messages is not None:
            raise InvalidRequestError(
                "scoring a reply to chat messages needs the chat template, which a remote "
                "server does not expose; pass the rendered text as prompt",
                param="messages",
            )
        return self._score(prompt, [text], top_logprobs)[0]

    def score_continuations(
        self, prompt: Prompt, continuations: Sequence[str], *, top_logprobs: int = 0
    ) -> list[ScoredText]:
        """Score each continuation after ``prompt`` (one batched request when the server
        accepts a list of prompts)."""
        if not continuations:
            raise InvalidRequestError("no continuations to score", param="continuations")
        return self._score(prompt, list(continuations), top_logprobs)

    def _score(
        self, prompt: Prompt | None, texts: list[str], top_logprobs: int
    ) -> list[ScoredText]:
        _remote_score.check_args(self.max_logprobs, prompt, texts, top_logprobs)
        self._ensure_echo()
        return _remote_score.score_texts(self, prompt, texts, top_logprobs)

    def _ensure_echo(self) -> None:
        """Raise unless the server's ``echo`` logprobs are verified to be right (checked once)."""
        if self.quirks.echo_ok is None:
            self.quirks.record_echo(*_remote_score.check_echo(self))
        if not self.quirks.echo_ok:
            raise InvalidRequestError(
                f"scoring needs prompt logprobs through echo, which {self.base_url} does not "
                f"give reliably: {self.quirks.echo_problem}",
                param="echo",
            )

    # --- tokens -------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """Token ids from the server's tokenize endpoint (vLLM/logprobe ``/tokenize``,
        llama.cpp ``/tokenize``, llama-cpp-python ``/extras/tokenize``)."""
        ids, route = _remote_score.tokenize(
            self, text, add_bos=add_bos, special=special, known_route=self.quirks.tokenize_route
        )
        self.quirks.record_tokenize_route(route)
        return ids

    def render_chat(
        self, messages: Sequence[Message], *, add_generation_prompt: bool = True
    ) -> str:
        raise InvalidRequestError(
            "render_chat is not supported remotely: the server applies its own chat template",
            param="messages",
        )

    # --- capabilities -------------------------------------------------------------------------

    @property
    def can_score(self) -> bool:
        """Whether ``score`` may be tried: False once the server's ``echo`` was found missing or
        misaligned; True before the first check (the first score runs it and raises
        :class:`InvalidRequestError` with ``param="echo"`` if it fails)."""
        return self.quirks.echo_ok is not False

    @property
    def exact_entropy(self) -> bool:
        """Always False: a server returns only the top alternatives, not the distribution."""
        return False

    def probe(self) -> ServerCapabilities:
        """Find what the server supports with a few one-token requests (also remembered)."""
        caps = probe_server(self)
        self.quirks.record_probe(caps)
        return caps


def _no_constraint(constraint: Any) -> None:
    if constraint is not None:
        raise InvalidRequestError(
            "token constraints need the embedded engine; a remote server cannot take them",
            param="constraint",
        )


def trim_tokens(tokens: Sequence[TokenLogprob], keep: int) -> tuple[TokenLogprob, ...]:
    """Tokens with at most ``keep`` alternatives each (extra ones were only asked for to make a
    server answer at all)."""
    return tuple(
        t if len(t.top_logprobs) <= keep else replace(t, top_logprobs=t.top_logprobs[:keep])
        for t in tokens
    )


def trim_completion(comp: Completion, p: GenerationParams) -> Completion:
    """``comp`` with no more alternatives than ``p`` asked for (servers send extra ones:
    llama-cpp-python returns one for ``top_logprobs: 0``)."""
    choices = tuple(
        replace(
            c,
            tokens=trim_tokens(c.tokens, p.top_logprobs),
            prompt_tokens=None
            if c.prompt_tokens is None
            else trim_tokens(c.prompt_tokens, p.prompt_logprobs or 0),
        )
        for c in comp.choices
    )
    return replace(comp, choices=choices)
