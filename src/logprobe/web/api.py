"""The viewer's JSON API (``/ui/api/...``): runs, responses, tokens, comparisons, calibration
and the playground (``POST api/playground/generate``, CSRF-checked, admitted like ``/v1``).
Errors come back as ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from .._json import json_safe
from ..errors import InvalidRequestError
from ..server.auth import KeyAuth
from ..server.streaming import Admission, ServerStats
from ..store import Store, align_tokens
from ..store.store import check_run_name
from .login import require_csrf
from .playground import MAX_PLAYGROUND_TOKENS, EngineHolder, PlaygroundRequest, playground_response
from .views import AnalysisCache, calibration_payload, response_payload, tokens_payload

MAX_PAGE = 5000
MAX_ALIGN_TOKENS = 20_000


def add_api_routes(
    router: APIRouter,
    store: Store,
    holder: EngineHolder,
    auth: KeyAuth,
    admission: Admission,
    stats: ServerStats,
) -> None:
    """Register the API endpoints on ``router`` (paths relative to the viewer's root)."""
    cache = AnalysisCache()

    @router.get("/api/runs")
    def list_runs(
        search: str | None = None, tag: str | None = None, model: str | None = None
    ) -> dict[str, Any]:
        runs = store.runs(tag=tag or None, model=model or None, search=search or None)
        return json_safe({"runs": [r.to_dict() for r in runs]})

    # run names may hold "/" or "?": they travel as a query parameter, never in the path
    @router.get("/api/run")
    def get_run(name: str) -> dict[str, Any]:
        run = store.run(name)
        return json_safe({"run": run.to_dict(), "artifacts": store.artifacts(run)})

    @router.get("/api/run/responses")
    def run_responses(
        name: str, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)
    ) -> dict[str, Any]:
        run = store.run(name)
        rows = [r.to_dict() for r in store.responses(run, offset=offset, limit=limit)]
        return json_safe(
            {
                "run": run.name,
                "total": run.n_responses,
                "offset": offset,
                "limit": limit,
                "responses": rows,
            }
        )

    @router.get("/api/run/calibration")
    def run_calibration(
        name: str, source: str = "auto", confidence: str = "mean", n_bins: int = 10
    ) -> dict[str, Any]:
        store.run(name)
        return calibration_payload(store, name, source=source, kind=confidence, n_bins=n_bins)

    @router.get("/api/responses/{response_id}")
    def get_response(response_id: int) -> dict[str, Any]:
        return response_payload(store, cache, response_id)

    @router.get("/api/responses/{response_id}/tokens")
    def get_tokens(
        response_id: int,
        offset: int = Query(0, ge=0),
        limit: int = Query(1000, ge=1, le=MAX_PAGE),
        part: str = "completion",
    ) -> dict[str, Any]:
        if part not in ("completion", "prompt"):
            raise InvalidRequestError("part must be 'completion' or 'prompt'", param="part")
        return json_safe(
            tokens_payload(store, response_id, offset=offset, limit=limit, prompt=part == "prompt")
        )

    @router.get("/api/compare")
    def compare(a: str, b: str, tokens: int = Query(3, ge=0, le=50)) -> dict[str, Any]:
        cmp = store.compare(a, b, token_limit=tokens)
        return json_safe(cmp.to_dict())

    @router.get("/api/compare/tokens")
    def compare_tokens(a: int, b: int) -> dict[str, Any]:
        ta = store.tokens(a, limit=MAX_ALIGN_TOKENS, alternatives=False)
        tb = store.tokens(b, limit=MAX_ALIGN_TOKENS, alternatives=False)
        pairs = [d.to_dict() for d in align_tokens(ta, tb)]
        return json_safe(
            {"a": a, "b": b, "truncated": max(len(ta), len(tb)) >= MAX_ALIGN_TOKENS, "pairs": pairs}
        )

    @router.get("/api/playground")
    def playground_info() -> dict[str, Any]:
        return {
            "available": holder.available,
            "model": holder.model_name,
            "max_tokens": MAX_PLAYGROUND_TOKENS,
        }

    @router.post("/api/playground/generate")
    async def playground_generate(body: PlaygroundRequest, request: Request) -> Response:
        require_csrf(request, auth)
        params = await run_in_threadpool(
            _params, holder, body.max_tokens, body.temperature, body.top_logprobs
        )
        save = None
        if body.run:
            name = check_run_name(body.run)
            prompt = body.prompt

            def save(completion: Any) -> int:
                return store.record(name, prompt, completion, params).response_ids[0]

        return await playground_response(
            holder, admission, stats, body.prompt, params, chat=body.chat, save=save
        )


def _params(holder: EngineHolder, max_tokens: int, temperature: float, top_logprobs: int) -> Any:
    from ..engines import GenerationParams

    if not holder.available:
        raise InvalidRequestError(
            "this viewer was started without an engine: the playground is off", param="engine"
        )
    if not 1 <= max_tokens <= MAX_PLAYGROUND_TOKENS:
        raise InvalidRequestError(
            f"max_tokens must be between 1 and {MAX_PLAYGROUND_TOKENS}", param="max_tokens"
        )
    return GenerationParams.make(
        max_tokens=max_tokens, temperature=temperature, top_logprobs=top_logprobs
    )
