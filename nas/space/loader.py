"""Finding and reading search-space files.

Shipped spaces live in the repository's ``search_spaces/`` folder. They are found next to the
package in a checkout (editable install) and, after ``pip install .``, in the installed data
folder ``<prefix>/share/nas/search_spaces``; ``$NAS_SPACES_PATH`` (``os.pathsep``-separated
folders) adds folders searched first.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nas.space.errors import SpaceError
from nas.space.resolve import resolve_space
from nas.space.space import SearchSpace

__all__ = ["list_spaces", "load_space", "parse_space", "space_path", "spaces_dirs"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SUFFIXES = (".yaml", ".yml", ".json")


def spaces_dirs() -> list[Path]:
    """Folders searched for named spaces, in order (only those that exist)."""
    candidates = [Path(p) for p in os.environ.get("NAS_SPACES_PATH", "").split(os.pathsep) if p]
    candidates.append(Path(__file__).resolve().parents[2] / "search_spaces")
    data_roots = [sys.prefix, sysconfig.get_path("data")]
    for scheme in ("posix_user", "nt_user", "osx_framework_user"):
        try:
            data_roots.append(sysconfig.get_path("data", scheme))
        except KeyError:
            continue
    candidates += [Path(root) / "share" / "nas" / "search_spaces" for root in data_roots]
    found: list[Path] = []
    for path in candidates:
        if path.is_dir() and path.resolve() not in [f.resolve() for f in found]:
            found.append(path)
    return found


def _named_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for folder in spaces_dirs():
        for path in sorted(folder.iterdir()):
            if path.suffix in _SUFFIXES and path.is_file() and _NAME.match(path.stem):
                files.setdefault(path.stem, path)
    return files


def list_spaces() -> list[str]:
    """Names of the shipped (and ``$NAS_SPACES_PATH``) spaces, sorted."""
    return sorted(_named_files())


def space_path(name: str) -> Path:
    """The file of the named space; :class:`SpaceError` if there is none."""
    files = _named_files()
    if not _NAME.match(name) or name not in files:
        available = ", ".join(sorted(files)) or "none found"
        raise SpaceError(name, "name", f"not a space in search_spaces/ (available: {available})")
    return files[name]


def load_space(name_or_path: str | os.PathLike[str], *, allow_path: bool = True) -> SearchSpace:
    """A shipped space by name (``mobile``), or a YAML/JSON file by path.

    A string with a path separator or a ``.yaml``/``.yml``/``.json`` suffix is a path; with
    ``allow_path=False`` (a service taking names from users) only names are accepted.
    """
    text = os.fspath(name_or_path)
    is_path = (
        isinstance(name_or_path, os.PathLike)
        or any(sep in text for sep in ("/", "\\", os.sep))
        or text.endswith(_SUFFIXES)
    )
    if not is_path or not allow_path:
        path = space_path(text)
    else:
        path = Path(text)
        if not path.is_file():
            raise SpaceError(
                text,
                "name",
                "no such file, and not a space in search_spaces/ "
                f"(available: {', '.join(list_spaces()) or 'none found'})",
            )
    return _load_file(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int) -> SearchSpace:
    del mtime_ns  # part of the cache key: an edited file is read again
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(path, "<file>", f"cannot read the file: {exc}") from None
    return parse_space(text, source=path, default_name=Path(path).stem)


def parse_space(
    document: str | dict[str, Any], source: str = "<inline>", *, default_name: str = "inline"
) -> SearchSpace:
    """Check a space given as YAML/JSON text or an already-parsed mapping."""
    if isinstance(document, str):
        try:
            data = yaml.safe_load(document)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<document>"
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpaceError(source, where, f"not valid YAML: {problem}") from None
    else:
        data = document
    return resolve_space(data, source, default_name=default_name)
