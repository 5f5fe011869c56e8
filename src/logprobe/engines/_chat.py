"""The model's own chat template (GGUF metadata), rendered in a sandboxed Jinja2 environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InvalidRequestError

if TYPE_CHECKING:
    from ._llama import LlamaModel

_FALLBACK_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_ROLES = {"system", "user", "assistant", "developer", "tool"}


def _raise(msg: str) -> None:
    raise InvalidRequestError(f"the chat template rejected the messages: {msg}", param="messages")


def _content_text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in (
                "text",
                "input_text",
                "output_text",
            ):
                raise InvalidRequestError(
                    f"messages[{i}].content[{j}]: only text parts are supported by this model",
                    param=f"messages[{i}].content[{j}]",
                )
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    if content is None:
        return ""
    raise InvalidRequestError(
        f"messages[{i}].content must be a string or a list of text parts",
        param=f"messages[{i}].content",
    )


class ChatTemplate:
    def __init__(self, source: str | None, model: LlamaModel) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        self.source = source or _FALLBACK_CHATML
        self._tpl = env.from_string(self.source)
        tb = model.token_bytes
        self._bos = tb[model.bos].decode("utf-8", "replace") if 0 <= model.bos < len(tb) else ""
        eos = np.flatnonzero(model.eog)  # end-of-generation ids, first is the EOS text
        self._eos = tb[int(eos[0])].decode("utf-8", "replace") if eos.size else ""

    def render(self, messages: Sequence[Any], *, add_generation_prompt: bool = True) -> str:
        if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
            raise InvalidRequestError(
                "messages must be a list of {role, content} objects", param="messages"
            )
        if not messages:
            raise InvalidRequestError("messages must not be empty", param="messages")
        clean = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise InvalidRequestError(
                    f"messages[{i}] must be an object", param=f"messages[{i}]"
                )
            role = m.get("role")
            if role not in _ROLES:
                raise InvalidRequestError(
                    f"messages[{i}].role must be one of {sorted(_ROLES)}, got {role!r}",
                    param=f"messages[{i}].role",
                )
            role = "system" if role == "developer" else role
            clean.append({"role": role, "content": _content_text(m.get("content"), i)})
        try:
            return self._tpl.render(
                messages=clean,
                add_generation_prompt=add_generation_prompt,
                bos_token=self._bos,
                eos_token=self._eos,
            )
        except TemplateError as e:
            raise InvalidRequestError(f"the chat template failed: {e}", param="messages") from e
