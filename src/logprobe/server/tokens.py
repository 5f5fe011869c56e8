"""vLLM's ``/tokenize`` and ``/detokenize`` extensions over a :class:`~.serving.Serving`.

The ids are the ones generation sees: a ``prompt`` is tokenized as ``/v1/completions`` does, and
``messages`` are rendered and tokenized as ``/v1/chat/completions`` does, so ``count`` equals the
``usage.prompt_tokens`` those routes report.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequestError
from . import convert
from .protocol import DetokenizeRequest, TokenizeRequest
from .serving import Serving


async def tokenize(serving: Serving, req: TokenizeRequest) -> dict[str, Any]:
    """``{count, max_model_len, tokens}`` (+ ``token_strs`` on request) for a prompt or chat."""
    serving.check_model(req.model)
    if (req.prompt is None) == (req.messages is None):
        raise InvalidRequestError(
            "Send either 'prompt' or 'messages' (exactly one).",
            param="prompt" if req.prompt is None else "messages",
        )
    engine = serving.engine
    if req.messages is not None:
        messages = convert.chat_messages(req.messages)

        def ids_of() -> list[int]:
            text = engine.render_chat(messages, add_generation_prompt=req.add_generation_prompt)
            return list(engine.tokenize(text, add_bos=True, special=True))
    else:
        prompt = req.prompt if req.prompt is not None else ""  # one of the two, checked above

        def ids_of() -> list[int]:
            return list(engine.tokenize(prompt, add_bos=req.add_special_tokens))

    ids = await serving.run(ids_of)
    out: dict[str, Any] = {"count": len(ids), "max_model_len": serving.n_ctx, "tokens": ids}
    if req.return_token_strs:
        out["token_strs"] = [engine.token_bytes(i).decode("utf-8", errors="replace") for i in ids]
    return out


def detokenize(serving: Serving, req: DetokenizeRequest) -> dict[str, Any]:
    """``{prompt}``: the text the token ids spell."""
    serving.check_model(req.model)
    bad = [t for t in req.tokens if not 0 <= t < serving.n_vocab]
    if bad:
        raise InvalidRequestError(
            f"token id {bad[0]} is outside the vocabulary (0..{serving.n_vocab - 1})",
            param="tokens",
        )
    return {"prompt": serving.prompt_text(list(req.tokens))}


__all__ = ["detokenize", "tokenize"]
