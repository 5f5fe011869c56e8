"""What a remote server supports, found with a few one-token requests (``RemoteEngine.probe``).

Servers that call themselves OpenAI-compatible differ exactly where logprobs are concerned:
some return none unless alternatives are requested, cap or ignore ``top_logprobs``, silently
return one choice for ``n=2``, drop logprobs when streaming, or echo prompt logprobs shifted by
one position. Probing tells the caller up front instead of failing (or misleading) later. The
probe only reads the engine (its requests go out with what the engine knows so far); the engine
records the result in its :class:`~._quirks.ServerQuirks`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import LogprobeError
from ..normalize import normalize_with_notes
from ..types import Completion
from ._remote_score import check_echo
from .base import GenerationParams

if TYPE_CHECKING:
    from .remote import RemoteEngine

_TOP_TRIES = (20, 10, 5, 1)
_HELLO = [{"role": "user", "content": "Hi"}]


@dataclass(frozen=True, slots=True)
class ServerCapabilities:
    """What the server at ``base_url`` does with logprob requests (``problems`` says why a
    feature is missing, one line each)."""

    base_url: str
    model: str
    chat: bool = False
    completions: bool = False
    logprobs: bool = False
    top_logprobs_max: int = 0
    """Most alternatives per token the server returned when asked for up to 20."""
    top_logprobs_required: bool = False
    """Logprobs come back only when at least one alternative is requested."""
    echo: bool = False
    """``echo`` prompt logprobs exist and agree with generation (needed by ``score``)."""
    n_choices: bool = False
    """``n > 1`` returns that many choices."""
    stream_logprobs: bool = False
    tokenize: bool = False
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = list(self.problems)
        return d


def _post(eng: RemoteEngine, route: str, body: dict[str, Any]) -> Completion:
    return normalize_with_notes(
        eng.http.post_json(route, body, retries=0), require_logprobs=False
    ).completion


def _params(**kw: Any) -> GenerationParams:
    return GenerationParams.make(max_tokens=kw.pop("max_tokens", 1), temperature=0, **kw)


def probe_server(eng: RemoteEngine) -> ServerCapabilities:
    problems: list[str] = []
    found: dict[str, Any] = {}
    route = _probe_logprobs(eng, found, problems)
    if route is not None:
        found["top_logprobs_max"] = _probe_top(eng, route, problems)
        found["n_choices"] = _probe_n(eng, route, problems)
        found["stream_logprobs"] = _probe_stream(eng, route, problems)
    ok, why = check_echo(eng)
    found["echo"] = ok
    if not ok:
        problems.append(f"echo: {why}")
    try:
        eng.tokenize("Hello")
        found["tokenize"] = True
    except LogprobeError as e:
        problems.append(f"tokenize: {e.message}")
    return ServerCapabilities(eng.base_url, eng.model_name, problems=tuple(problems), **found)


def _body(eng: RemoteEngine, route: str, p: GenerationParams) -> dict[str, Any]:
    if route == "/chat/completions":
        return eng.chat_body(_HELLO, p)
    return eng.completion_body("Hello", p)


def _probe_logprobs(eng: RemoteEngine, found: dict[str, Any], problems: list[str]) -> str | None:
    """Try chat and completions; the first route that returns logprobs, or ``None``."""
    best = None
    for route, key in (("/chat/completions", "chat"), ("/completions", "completions")):
        for top in (0, 1):
            try:
                comp = _post(eng, route, _body(eng, route, _params(top_logprobs=top)))
            except LogprobeError as e:
                problems.append(f"{route}: {e.message}")
                break
            found[key] = True
            if comp.tokens:
                found["logprobs"] = True
                if top == 1 and best is None:
                    found["top_logprobs_required"] = True
                best = best or route
                break
        else:
            problems.append(f"{route}: answered without logprobs")
    return best


def _probe_top(eng: RemoteEngine, route: str, problems: list[str]) -> int:
    for k in _TOP_TRIES:
        try:
            comp = _post(eng, route, _body(eng, route, _params(top_logprobs=k)))
        except LogprobeError as e:
            problems.append(f"top_logprobs={k}: {e.message}")
            continue
        return max((len(t.top_logprobs) for t in comp.tokens), default=0)
    return 0


def _probe_n(eng: RemoteEngine, route: str, problems: list[str]) -> bool:
    try:
        comp = _post(eng, route, _body(eng, route, _params(n=2)))
    except LogprobeError as e:
        problems.append(f"n=2: {e.message}")
        return False
    if len(comp.choices) != 2:
        problems.append(f"n=2: the server returned {len(comp.choices)} choice(s)")
        return False
    return True


def _probe_stream(eng: RemoteEngine, route: str, problems: list[str]) -> bool:
    p = _params(max_tokens=2, top_logprobs=0)
    try:
        if route == "/chat/completions":
            events = list(eng.stream(params=p, messages=_HELLO))
        else:
            events = list(eng.stream("Hello", p))
    except LogprobeError as e:
        problems.append(f"streaming: {e.message}")
        return False
    if not any(ev.token is not None for ev in events):
        problems.append("streaming: no token logprobs in the stream")
        return False
    return True
