"""One JSON serialiser: values made plain JSON data for Optuna attributes, MLflow, the service's
database and API responses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: mappings get string keys, tuples and sets become lists,
    NaN and infinities become None, datetimes ISO text, numpy values Python ones, pydantic
    models their dump; anything else its ``str``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        try:
            return jsonable(value.tolist())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return jsonable(value.model_dump())
    return str(value)
