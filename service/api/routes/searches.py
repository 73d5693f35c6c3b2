"""``/searches``: submit, list, inspect and cancel searches; read trials and Pareto fronts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from nas.search.config import direction
from nas.search.store import new_search_id
from service import crud
from service.api.deps import SessionDep, SettingsDep
from service.models import FINISHED, Search, Trial, utcnow
from service.schemas import (
    ErrorResponse,
    ParetoPoint,
    ParetoPublic,
    SearchCreate,
    SearchesPublic,
    SearchLinks,
    SearchProgress,
    SearchPublic,
    SearchTimings,
    Status,
    TrialPublic,
    TrialsPublic,
)
from service.validation import RequestError, build_config

__all__ = ["router", "search_public"]

router = APIRouter(prefix="/searches", tags=["searches"])

SearchId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The search id returned by POST /searches.",
        examples=["s3f9c2a1b07"],
    ),
]
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "No search with that id."}}
_INVALID = {422: {"model": ErrorResponse, "description": "Invalid parameters or body."}}


def _elapsed(search: Search) -> float | None:
    if search.started_at is None:
        return None
    end = search.finished_at or (utcnow() if search.status == "running" else search.updated_at)
    return max((end - search.started_at).total_seconds(), 0.0)


def search_public(search: Search) -> SearchPublic:
    """The API view of a search row."""
    base = f"/searches/{search.id}"
    budget = max(int(search.budget), 1)
    return SearchPublic(
        id=search.id,
        name=search.name,
        status=search.status,  # type: ignore[arg-type]
        space=search.space_name,
        budget=search.budget,
        objectives=list(search.objectives),
        config=search.config,
        progress=SearchProgress(
            done=search.done,
            failed=search.failed,
            budget=search.budget,
            front_size=search.front_size,
            fraction=min(search.done / budget, 1.0),
            eta_s=search.eta_s,
            phase=search.phase or "trials",
            confirm_done=search.confirm_done or 0,
            confirm_total=search.confirm_total or 0,
        ),
        timings=SearchTimings(
            created_at=search.created_at,
            started_at=search.started_at,
            finished_at=search.finished_at,
            updated_at=search.updated_at,
            elapsed_s=_elapsed(search),
            run_seconds=search.run_seconds or 0.0,
        ),
        mlflow_run_id=search.mlflow_run_id,
        study_name=search.study_name,
        error=search.error,
        cancel_requested=search.cancel_requested,
        attempts=search.attempts,
        worker_id=search.worker_id,
        links=SearchLinks(
            self=base,
            trials=f"{base}/trials",
            pareto=f"{base}/pareto",
            pareto_png=f"{base}/pareto.png",
            cancel=f"{base}/cancel",
        ),
    )


def _trial_public(trial: Trial) -> TrialPublic:
    return TrialPublic(
        trial_id=trial.id,
        number=trial.number,
        state=trial.state,
        params=trial.params or {},
        arch=trial.arch,
        arch_id=trial.arch_id,
        values=trial.values or {},
        metrics=trial.metrics or {},
        num_params=trial.num_params,
        flops=trial.flops,
        feasible=trial.feasible,
        on_front=trial.on_front,
        interrupted=trial.interrupted,
        mlflow_run_id=trial.mlflow_run_id,
        error=trial.error,
        started_at=trial.started_at,
        finished_at=trial.finished_at,
        **crud.confirmation_of(trial),
    )


def _get_or_404(session: Any, search_id: str) -> Search:
    search = crud.get_search(session, search_id=search_id)
    if search is None:
        raise HTTPException(
            status_code=404,
            detail=f"no search with id {search_id!r}; list searches with GET /searches",
        )
    return search


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchPublic,
    summary="Submit a search",
    responses={
        **_INVALID,
        413: {"model": ErrorResponse, "description": "The body is larger than allowed."},
        429: {"model": ErrorResponse, "description": "The queue is full; retry later."},
    },
)
def create_search(
    body: SearchCreate, session: SessionDep, settings: SettingsDep, response: Response
) -> SearchPublic:
    """Queue a search (same options as `nas search`); a worker runs it.

    Answers 202 with the search's id and links; poll `GET /searches/{id}` for its status.
    At most NAS_MAX_RUNNING searches run at once; later ones wait with status `queued`.
    When NAS_MAX_QUEUED searches already wait, the request is refused with 429.
    """
    try:
        space_name, config = build_config(body, settings)
    except RequestError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    try:
        search = crud.create_search(
            session,
            search_id=new_search_id(),
            config=config,
            space_name=space_name,
            name=body.name,
            budget=body.budget,
            objectives=list(body.objectives),
            max_queued=settings.max_queued,
        )
    except crud.QueueFull as full:
        raise HTTPException(
            status_code=429,
            detail=f"{full.queued} searches are already queued (NAS_MAX_QUEUED="
            f"{settings.max_queued}); retry when some have started",
            headers={"Retry-After": "30"},
        ) from None
    response.headers["Location"] = f"/searches/{search.id}"
    return search_public(search)


@router.get(
    "",
    response_model=SearchesPublic,
    summary="List searches",
    responses=_INVALID,
)
def list_searches(
    session: SessionDep,
    status_filter: Annotated[
        Status | None, Query(alias="status", description="Only searches with this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Searches to skip.")] = 0,
) -> SearchesPublic:
    """Searches, newest first, one page at a time, optionally filtered by status."""
    rows, count = crud.list_searches(session, status=status_filter, limit=limit, offset=offset)
    return SearchesPublic(
        data=[search_public(r) for r in rows], count=count, limit=limit, offset=offset
    )


@router.get(
    "/{search_id}",
    response_model=SearchPublic,
    summary="Get a search",
    responses={**_NOT_FOUND, **_INVALID},
)
def get_search(search_id: SearchId, session: SessionDep) -> SearchPublic:
    """A search's status (queued, running, completed, failed, cancelled), progress, timings
    and MLflow run id."""
    return search_public(_get_or_404(session, search_id))


@router.get(
    "/{search_id}/trials",
    response_model=TrialsPublic,
    summary="List a search's trials",
    responses={**_NOT_FOUND, **_INVALID},
)
def list_trials(
    search_id: SearchId,
    session: SessionDep,
    state: Annotated[
        str | None,
        Query(
            pattern="^(COMPLETE|FAIL|RUNNING|PRUNED|WAITING)$",
            description="Only trials in this state.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Trials to skip.")] = 0,
) -> TrialsPublic:
    """The search's trials by number: sampled parameters, architecture, objective values,
    every measured metric, feasibility and MLflow run id."""
    _get_or_404(session, search_id)
    rows, count = crud.list_trials(
        session, search_id=search_id, state=state, limit=limit, offset=offset
    )
    return TrialsPublic(
        data=[_trial_public(r) for r in rows], count=count, limit=limit, offset=offset
    )


def _pareto(session: Any, search_id: str) -> tuple[Search, list[Trial]]:
    search = _get_or_404(session, search_id)
    return search, crud.pareto_trials(session, search_id=search_id)


@router.get(
    "/{search_id}/pareto",
    response_model=ParetoPublic,
    summary="Get a search's Pareto front",
    responses={**_NOT_FOUND, **_INVALID},
)
async def get_pareto(search_id: SearchId, settings: SettingsDep, request: Request) -> Response:
    """The non-dominated complete trials so far (feasible ones only when a latency budget is
    set): trial id, architecture id and JSON, objective values, parameters, FLOPs,
    feasibility, MLflow run id, and the accuracy over the training seeds (`confirmed`,
    `accuracy_mean`, `accuracy_sd`, `n_seeds`, `test_accuracy`). After the budget the search
    re-trains its best trials with more seeds and the front is chosen on the seed means. A
    running search's front may be up to NAS_CACHE_SECONDS old."""
    cache = request.app.state.pareto_cache
    body = cache.get(search_id)
    if body is None:
        body, finished = await run_in_threadpool(
            _render_pareto, request.app.state.sessionmaker, search_id
        )
        cache.put(search_id, body, None if finished else settings.cache_seconds)
    return Response(content=body, media_type="application/json")


def _render_pareto(sessions: Any, search_id: str) -> tuple[bytes, bool]:
    """The front as JSON bytes, and whether the search has finished (front final)."""
    with sessions() as session:
        search, front = _pareto(session, search_id)
        objectives = list(search.objectives)
        pareto = ParetoPublic(
            search_id=search.id,
            status=search.status,  # type: ignore[arg-type]
            objectives=objectives,
            directions=[direction(o) for o in objectives],
            data=[
                ParetoPoint(
                    trial_id=t.id,
                    number=t.number,
                    arch_id=t.arch_id,
                    arch=t.arch,
                    values=t.values or {},
                    num_params=t.num_params,
                    flops=t.flops,
                    feasible=t.feasible,
                    mlflow_run_id=t.mlflow_run_id,
                    **crud.confirmation_of(t),
                )
                for t in front
            ],
            count=len(front),
        )
        return pareto.model_dump_json().encode(), search.status in FINISHED


@router.get(
    "/{search_id}/pareto.png",
    response_class=Response,
    summary="Plot a search's Pareto front",
    responses={
        200: {"content": {"image/png": {}}, "description": "A PNG scatter plot."},
        **_NOT_FOUND,
        **_INVALID,
    },
)
def get_pareto_png(search_id: SearchId, session: SessionDep) -> Response:
    """A PNG plot of the complete trials on the first two objectives, front highlighted."""
    from service.plot import pareto_png

    search = _get_or_404(session, search_id)
    trials, _ = crud.list_trials(
        session, search_id=search_id, state="COMPLETE", limit=1_000_000, offset=0
    )
    return Response(content=pareto_png(search, trials), media_type="image/png")


@router.post(
    "/{search_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchPublic,
    summary="Cancel a search",
    responses={
        **_NOT_FOUND,
        **_INVALID,
        409: {"model": ErrorResponse, "description": "The search has already finished."},
    },
)
def cancel_search(search_id: SearchId, session: SessionDep) -> SearchPublic:
    """Cancel a search: a queued one at once; a running one stops after its running trials
    (its status turns `cancelled` when the worker has stopped it; `cancel_requested` is true
    meanwhile). A finished search answers 409."""
    search, outcome = crud.cancel_search(session, search_id=search_id)
    if search is None:
        _get_or_404(session, search_id)
        raise AssertionError("unreachable")
    if outcome == "finished":
        raise HTTPException(
            status_code=409,
            detail=f"search {search_id!r} is already {search.status}; only queued or running "
            "searches can be cancelled",
        )
    return search_public(search)
