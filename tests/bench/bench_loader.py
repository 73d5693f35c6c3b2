"""Load a script of bench/ as a module, the way ``python bench/<name>.py`` runs it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


@contextmanager
def bench_module(script: str) -> Iterator[ModuleType]:
    """``bench/<script>.py`` as the module ``<script>_bench``; its siblings importable."""
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"{script}_bench", BENCH / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # worker processes unpickle its functions, and dataclasses look it up, by module name
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        sys.path.remove(str(BENCH))
