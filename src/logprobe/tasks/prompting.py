"""Building the shared prompt that options are scored after: raw template or chat messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, LogprobeError

if TYPE_CHECKING:
    from ..engines.base import Engine

DEFAULT_CLASSIFY_TEMPLATE = "Text: {text}\nCategories: {labels}\nThe category of the text is:"
"""Default prompt of :func:`~logprobe.tasks.classify`; ``{text}`` and ``{labels}`` are filled in."""

TextOrMessages = str | Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class BuiltPrompt:
    """The prompt scored once, and the prefix each option gets as a continuation.

    ``text`` is the prompt as text; ``engine_prompt`` is what to hand the engine: the text
    itself for a raw prompt, token ids for a rendered chat prompt (its special tokens such as
    ``<|im_start|>`` must be parsed as special, which a raw text prompt never is).
    """

    text: str
    option_prefix: str
    chat: bool
    ids: tuple[int, ...] | None = None
    messages: tuple[Mapping[str, Any], ...] = ()

    @property
    def renderable(self) -> bool:
        """False for a chat prompt the engine cannot render (remote servers apply their own
        template): it can then only be sent as messages, not scored as text."""
        return not self.chat or bool(self.text)

    @property
    def engine_prompt(self) -> str | list[int]:
        return self.text if self.ids is None else list(self.ids)


def chat_prompt_ids(engine: Engine, rendered: str) -> tuple[int, ...] | None:
    """Token ids of a rendered chat prompt with special tokens parsed (None: no tokenizer)."""
    try:
        return tuple(engine.tokenize(rendered, add_bos=True, special=True))
    except (NotImplementedError, LogprobeError):
        return None


def check_messages(messages: Sequence[Mapping[str, Any]], *, param: str = "messages") -> None:
    if not messages:
        raise InvalidRequestError(
            f"Invalid '{param}': at least one message is required.", param=param
        )
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise InvalidRequestError(
                f"Invalid '{param}': message {i} needs a 'role' string.", param=param
            )
        if not isinstance(m.get("content"), str):
            raise InvalidRequestError(
                f"Invalid '{param}': message {i} needs a 'content' string.", param=param
            )


def fill_template(template: str, *, param: str = "template", **values: str) -> str:
    """``template.format(**values)`` with a one-line error for unknown fields or bad braces."""
    if "{text}" not in template and "{query}" not in template:
        raise InvalidRequestError(
            f"Invalid '{param}': the template must contain {{text}}.", param=param
        )
    try:
        return template.format(**values)
    except (KeyError, IndexError) as e:
        raise InvalidRequestError(
            f"Invalid '{param}': unknown field {{{e.args[0]}}} (known: "
            f"{', '.join(sorted(values))}).",
            param=param,
        ) from None
    except ValueError as e:
        raise InvalidRequestError(f"Invalid '{param}': {e}.", param=param) from None


def build_prompt(
    engine: Engine,
    text_or_messages: TextOrMessages,
    *,
    template: str | None = None,
    chat: bool = False,
    option_prefix: str | None = None,
    **fields: str,
) -> BuiltPrompt:
    """The prompt for ``text_or_messages``.

    * a string is put into ``template`` (``{text}`` plus ``fields``); with ``chat=True`` the
      result becomes one user message rendered with the model's chat template;
    * a list of messages is rendered with the chat template as it is (``template`` unused).

    Options are scored after the prompt with ``option_prefix`` in front of them: a space after
    a raw prompt (``"Answer:" + " yes"``), nothing at the start of an assistant turn.
    """
    if isinstance(text_or_messages, str):
        if not text_or_messages.strip():
            raise InvalidRequestError("Invalid 'text': the text is empty.", param="text")
        body = (
            text_or_messages
            if template is None
            else fill_template(template, text=text_or_messages, **fields)
        )
        if not chat:
            return BuiltPrompt(body, " " if option_prefix is None else option_prefix, False)
        messages: list[Mapping[str, Any]] = [{"role": "user", "content": body}]
    else:
        messages = list(text_or_messages)
        check_messages(messages)
    rendered = _render(engine, messages)
    prefix = "" if option_prefix is None else option_prefix
    ids = chat_prompt_ids(engine, rendered) if rendered else None
    return BuiltPrompt(rendered, prefix, True, ids, tuple(messages))


def require_renderable(built: BuiltPrompt, task: str) -> None:
    """Scoring needs the prompt as text/tokens; a chat prompt only a server can render has none."""
    if not built.renderable:
        raise InvalidRequestError(
            f"{task} of a chat prompt needs the model's chat template, which this engine does "
            "not expose (remote servers apply their own); send a raw text prompt instead.",
            param="messages",
        )


def _render(engine: Engine, messages: Sequence[Mapping[str, Any]]) -> str:
    try:
        return engine.render_chat(messages)
    except (NotImplementedError, InvalidRequestError):
        return ""  # remote chat endpoints apply their own template; the messages go as they are


__all__ = [
    "DEFAULT_CLASSIFY_TEMPLATE",
    "BuiltPrompt",
    "TextOrMessages",
    "build_prompt",
    "chat_prompt_ids",
    "check_messages",
    "fill_template",
    "require_renderable",
]
