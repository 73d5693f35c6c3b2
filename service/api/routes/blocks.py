"""``/blocks``: the attention blocks a search space may use."""

from __future__ import annotations

from fastapi import APIRouter

from nas.jsonable import jsonable
from service.schemas import BlockPublic, BlocksPublic, HParamPublic

__all__ = ["router"]

router = APIRouter(prefix="/blocks", tags=["blocks"])


@router.get("", response_model=BlocksPublic, summary="List attention blocks")
def list_blocks() -> BlocksPublic:
    """Every registered block with its paper, hyperparameters, defaults and search domains."""
    from nas.blocks import get_spec
    from nas.blocks import list_blocks as names

    data = []
    for name in names():
        spec = get_spec(name)
        data.append(
            BlockPublic(
                name=spec.name,
                paper=str(getattr(spec, "paper", "") or ""),
                summary=str(getattr(spec, "summary", "") or ""),
                supports_conv=bool(getattr(spec, "supports_conv", False)),
                hparams=[
                    HParamPublic(
                        name=h.name,
                        type=getattr(h.type, "__name__", str(h.type)),
                        default=jsonable(h.default),
                        domain=jsonable(list(h.domain)),
                        doc=h.doc or "",
                    )
                    for h in spec.hparams
                ],
            )
        )
    return BlocksPublic(data=data, count=len(data))
