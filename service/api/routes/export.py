"""``/searches/{id}/trials/{number}/export``: a trained trial as ONNX, TorchScript or state dict.

Mounted under the searches router (see :mod:`service.api.routes`), so it shares its prefix and
API-key auth. The export reads the search from the Optuna storage and the trial's weights from
the workspace (re-training the trial when they are missing, which takes a trial's time).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from nas.errors import NasError, NotFoundError
from service import crud
from service.api.deps import SessionDep, SettingsDep
from service.schemas import ErrorResponse

__all__ = ["router"]

router = APIRouter(tags=["searches"])

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "state_dict": ".pt"}


@router.get(
    "/{search_id}/trials/{number}/export",
    response_class=FileResponse,
    summary="Export a trained trial",
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The model file. For ONNX, the headers X-ONNX-Opset and "
            "X-Max-Abs-Diff (ONNX Runtime against PyTorch, per batch size checked).",
        },
        404: {"model": ErrorResponse, "description": "No such search or trial."},
        409: {"model": ErrorResponse, "description": "The trial did not complete."},
        422: {"model": ErrorResponse, "description": "Invalid format, or it cannot be made."},
    },
)
def export_trial(
    search_id: Annotated[str, Path(min_length=1, max_length=64)],
    number: Annotated[int, Path(ge=0, description="The trial number.")],
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[
        Literal["onnx", "torchscript", "state_dict"],
        Query(
            description="onnx (opset 17, dynamic batch; the [onnx] extra), torchscript "
            "(torch.jit.load) or state_dict (torch.load: state_dict, arch, space, num_classes)."
        ),
    ] = "onnx",
) -> FileResponse:
    """Download a complete trial's trained model, as `nas export` writes it."""
    from nas.search.export import TrialNotComplete, export_trial, export_trial_onnx

    if crud.get_search(session, search_id=search_id) is None:
        raise HTTPException(
            status_code=404,
            detail=f"no search with id {search_id!r}; list searches with GET /searches",
        )
    if format == "onnx":
        from nas.onnx_export import require_onnx

        try:
            require_onnx("format 'onnx'")
        except NasError as exc:
            raise HTTPException(status_code=422, detail=f"format: {exc}") from exc
    folder = FilePath(tempfile.mkdtemp(prefix="nas-export-"))
    output = folder / f"{search_id}-trial{number}{SUFFIX[format]}"
    headers: dict[str, str] = {}
    storage = settings.optuna_storage
    try:
        if format == "onnx":
            done = export_trial_onnx(search_id, number, output=output, storage=storage)
            headers["X-ONNX-Opset"] = str(done.opset)
            headers["X-Max-Abs-Diff"] = ", ".join(
                f"batch {b}: {d:.3g}" for b, d in done.max_abs_diff.items()
            )
        else:
            export_trial(search_id, number, format=format, output=output, storage=storage)
    except NasError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        code = (
            404
            if isinstance(exc, NotFoundError)
            else 409
            if isinstance(exc, TrialNotComplete)
            else 422
        )
        raise HTTPException(status_code=code, detail=str(exc)) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        output,
        media_type="application/octet-stream",
        filename=output.name,
        headers=headers,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
