"""Scoring and tokenizing through a remote server.

Scoring uses ``/completions`` with ``echo: true`` and ``max_tokens: 1``: the echoed prompt
tokens carry teacher-forced logprobs. The concatenated ``prompt + text`` is split back at the
prompt's byte length; a token straddling that boundary means the server tokenized the two
together differently from separately, and scoring says so rather than guessing. Before the first
score the engine checks once (:func:`check_echo`) that the server's echo logprobs agree with its
own generation (llama-cpp-python's are shifted by one position), so wrong numbers are never
returned. These functions only read the engine; what they find goes back to it as results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, LogprobeError, ProviderError
from ..normalize import normalize_with_notes
from ..normalize._common import Ctx, as_list, as_obj, at
from ..normalize.openai_completions import read_parallel
from ..types import ScoredText, TokenLogprob
from .base import Prompt

if TYPE_CHECKING:
    from .remote import RemoteEngine

CHECK_PROMPT = "The capital of France is"
ECHO_TOLERANCE = 0.05
"""Nats by which an echoed logprob may differ from the generated one (batch numerics differ)."""


def score_texts(
    eng: RemoteEngine, prompt: Prompt | None, texts: Sequence[str], top: int
) -> list[ScoredText]:
    """Teacher-forced tokens of each text after ``prompt`` (arguments and echo checked first
    by the engine)."""
    ptext = prompt if isinstance(prompt, str) else ""
    fulls = [ptext + t for t in texts]
    choices = echo_tokens(eng, fulls, top)
    return [
        _split(ptext if prompt is not None else None, t, toks, top)
        for t, toks in zip(texts, choices, strict=True)
    ]


def check_args(max_logprobs: int, prompt: Prompt | None, texts: Sequence[str], top: int) -> None:
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= max_logprobs:
        raise InvalidRequestError(
            f"top_logprobs must be an integer between 0 and {max_logprobs}", param="top_logprobs"
        )
    if prompt is not None and not isinstance(prompt, str):
        raise InvalidRequestError(
            "remote scoring takes a text prompt, not token ids", param="prompt"
        )
    for t in texts:
        if not isinstance(t, str) or not t:
            raise InvalidRequestError("the text to score must be a non-empty string", param="text")


def echo_tokens(
    eng: RemoteEngine, fulls: Sequence[str], top: int, retries: int | None = None
) -> list[list[TokenLogprob]]:
    """Echoed tokens of each text (prompt tokens, then at most one generated token)."""

    def body(prompt: str | list[str]) -> dict[str, Any]:
        return {
            "model": eng.model_name,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0,
            "echo": True,
            "logprobs": max(top, 1),
        }

    if len(fulls) > 1:
        try:
            return _choices_tokens(
                eng.http.post_json("/completions", body(list(fulls)), retries=0), len(fulls)
            )
        except LogprobeError:
            pass  # no batch support (llama-cpp-python answers 500): one request each
    return [
        _choices_tokens(eng.http.post_json("/completions", body(f), retries=retries), 1)[0]
        for f in fulls
    ]


def _choices_tokens(payload: Any, expected: int) -> list[list[TokenLogprob]]:
    ctx = Ctx(provider="openai_completions")
    resp = as_obj(payload, "")
    raw = as_list(resp.get("choices"), "choices")
    if len(raw) != expected:
        raise ProviderError(f"echo returned {len(raw)} choices for {expected} prompts")
    out: list[list[TokenLogprob]] = [[] for _ in range(expected)]
    for i, c in enumerate(raw):
        co = as_obj(c, at("choices", i))
        index = co.get("index", i)
        if not isinstance(index, int) or not 0 <= index < expected:
            raise ProviderError(f"echo returned a choice with index {index!r}")
        lp = co.get("logprobs")
        if lp is None:
            raise InvalidRequestError(
                "the server returned no logprobs for an echo request", param="echo"
            )
        out[index] = read_parallel(lp, at(at("choices", i), "logprobs"), ctx)[0]
    return out


def _split(prompt: str | None, text: str, toks: list[TokenLogprob], top: int) -> ScoredText:
    """The tokens of ``text`` from the echoed tokens of ``prompt + text``."""
    while toks and toks[0].token == "" and not toks[0].bytes:  # BOS: context only
        toks = toks[1:]
    if any(t.bytes is None for t in toks):
        raise ProviderError(
            "the server's echoed tokens lack exact bytes; the text cannot be "
            "split from the prompt reliably"
        )
    p_len = len((prompt or "").encode("utf-8"))
    end = p_len + len(text.encode("utf-8"))
    pos = 0
    prompt_count, picked = 0, []
    for t in toks:
        start, pos = pos, pos + len(t.bytes or b"")
        if pos <= p_len:
            prompt_count += 1
        elif start < p_len:
            raise InvalidRequestError(
                f"the server tokenized the prompt and text together with token {t.token!r} "
                "spanning both; end the prompt with a space or start the text with one",
                param="text",
            )
        elif start < end:
            picked.append(
                t
                if len(t.top_logprobs) <= top
                else TokenLogprob(
                    t.token, t.bytes, t.logprob, t.id, t.rank, t.top_logprobs[:top], t.entropy
                )
            )
    if b"".join(t.bytes or b"" for t in picked) != text.encode("utf-8"):
        raise ProviderError("the echoed tokens do not rebuild the scored text")
    return ScoredText(
        text=text, tokens=tuple(picked), prompt=prompt, prompt_token_count=prompt_count
    )


def check_echo(eng: RemoteEngine) -> tuple[bool, str]:
    """Generate one greedy token after a fixed prompt, then echo prompt + that token: the
    echoed logprob of the token must equal the generated one."""
    body = {
        "model": eng.model_name,
        "prompt": CHECK_PROMPT,
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": 1,
    }
    try:
        gen = normalize_with_notes(eng.http.post_json("/completions", body, retries=0))
        tok = gen.completion.tokens[0]
        echoed = echo_tokens(eng, [CHECK_PROMPT + tok.token], 1, retries=0)[0]
    except LogprobeError as e:
        return False, f"the echo check failed: {e.message}"
    p_len = len(CHECK_PROMPT.encode("utf-8"))
    pos = 0
    for t in echoed:
        start, pos = pos, pos + len(t.bytes or b"")
        if start == p_len:
            if t.logprob is None or tok.logprob is None:
                return False, "echo gave no logprob for a prompt token"
            if abs(t.logprob - tok.logprob) > max(ECHO_TOLERANCE, 0.01 * abs(tok.logprob)):
                return False, (
                    f"echoed logprob {t.logprob:.4f} of {t.token!r} disagrees with the "
                    f"generated {tok.logprob:.4f} (prompt logprobs misaligned by a position)"
                )
            return True, ""
    return False, "the echoed tokens did not line up with the generated token"


_TOKENIZE_ROUTES: tuple[tuple[str, str], ...] = (
    ("/tokenize", "vllm"),  # vLLM and logprobe: {model, prompt, add_special_tokens}
    ("/tokenize", "llamacpp"),  # llama.cpp server: {content, add_special, parse_special}
    ("/extras/tokenize", "lcpp-py"),  # llama-cpp-python: {input, model}
)


def _tokenize_body(
    kind: str, eng: RemoteEngine, text: str, add_bos: bool, special: bool
) -> dict[str, Any]:
    if kind == "vllm":
        return {"model": eng.model_name, "prompt": text, "add_special_tokens": add_bos}
    if kind == "llamacpp":
        return {"content": text, "add_special": add_bos, "parse_special": special}
    return {"input": text, "model": eng.model_name}


def tokenize(
    eng: RemoteEngine, text: str, *, add_bos: bool, special: bool, known_route: str | None = None
) -> tuple[list[int], str]:
    """Token ids of ``text`` and the kind of tokenize route that answered (only
    ``known_route`` is tried once one is known)."""
    if not isinstance(text, str):
        raise InvalidRequestError("text must be a string", param="text")
    routes = [r for r in _TOKENIZE_ROUTES if known_route in (None, r[1])]
    for route, kind in routes:
        try:
            answer = eng.http.post_json(
                eng.root_url + route, _tokenize_body(kind, eng, text, add_bos, special), retries=0
            )
        except LogprobeError:
            continue
        ids = _token_ids(answer)
        if ids is not None:
            return ids, kind
    raise InvalidRequestError(
        f"tokenize is not supported remotely: {eng.root_url} has no tokenize endpoint "
        "(tried /tokenize and /extras/tokenize)",
        param="tokenize",
    )


def _token_ids(answer: Any) -> list[int] | None:
    toks = answer.get("tokens") if isinstance(answer, Mapping) else None
    if not isinstance(toks, list):
        return None
    out = []
    for t in toks:
        tid = t.get("id") if isinstance(t, Mapping) else t
        if isinstance(tid, bool) or not isinstance(tid, int):
            return None
        out.append(tid)
    return out
