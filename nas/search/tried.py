"""Which configurations a search has tried: a trie of finished trials' parameters.

A define-by-run objective asks parameters in an order fixed by the values already given, so a
candidate (values for a superset of the parameters it will ask) that agrees with a tried trial
on every parameter that trial asked follows the same path and yields the same configuration:
it *repeats* that trial. :class:`TriedIndex` answers that question without a scan of every
trial: each tried trial is a path of ``(name, value)`` steps in sorted name order, and a
query follows only the steps the candidate agrees with, so its cost is the number of stored
prefixes the candidate agrees with (a few per stage of a search space), not the number of
trials. Pure Python, no Optuna: tests compare it with the plain scan, :func:`repeats_any`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["TriedIndex", "repeats_any"]


def repeats_any(candidate: Mapping[str, Any], tried: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``candidate`` agrees with a non-empty trial of ``tried`` on all its parameters.

    The plain scan (linear in the trials), for the few trials still running and for tests.
    """
    return any(
        params and all(name in candidate and candidate[name] == v for name, v in params.items())
        for params in tried
    )


class _Node:
    """One stored prefix: its continuations by next name, then by value."""

    __slots__ = ("children", "end")

    def __init__(self) -> None:
        self.children: dict[str, dict[Any, _Node]] = {}
        self.end = False


class TriedIndex:
    """The parameters of tried trials, for repeat checks that do not grow with their number.

    ``add`` stores a finished trial's parameters (they no longer change); ``repeats`` tells
    whether a candidate repeats any stored trial, with the rule of :func:`repeats_any`.
    Parameter values must be hashable (Optuna's are: None, bool, int, float, str).
    """

    def __init__(self) -> None:
        self._root = _Node()
        self._size = 0

    def __len__(self) -> int:
        """Trials stored (an empty one counts but never matches)."""
        return self._size

    def add(self, params: Mapping[str, Any]) -> None:
        """Store one trial's parameters."""
        self._size += 1
        if not params:
            return
        node = self._root
        for name in sorted(params):
            by_value = node.children.setdefault(name, {})
            child = by_value.get(params[name])
            if child is None:
                child = by_value[params[name]] = _Node()
            node = child
        node.end = True

    def repeats(self, candidate: Mapping[str, Any]) -> bool:
        """Whether ``candidate`` agrees with a stored trial on every parameter it asked."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.end:
                return True
            for name, by_value in node.children.items():
                if name in candidate:
                    child = by_value.get(candidate[name])
                    if child is not None:
                        stack.append(child)
        return False

    def completions(
        self, candidate: Mapping[str, Any], limit: int = 1000
    ) -> tuple[int, set[frozenset[str]]] | None:
        """The stored trials that agree with ``candidate`` where both have a parameter.

        Returns how many there are and the sets of the names they have beyond the
        candidate's, or None when more than ``limit`` steps would have to be visited.
        """
        count, extra = 0, set()
        stack: list[tuple[_Node, tuple[str, ...]]] = [(self._root, ())]
        steps = 0
        while stack:
            node, beyond = stack.pop()
            if node.end:
                count += 1
                extra.add(frozenset(beyond))
            for name, by_value in node.children.items():
                if name in candidate:
                    child = by_value.get(candidate[name])
                    found = [] if child is None else [(child, beyond)]
                else:
                    found = [(c, (*beyond, name)) for c in by_value.values()]
                steps += len(found)
                if steps > limit:
                    return None
                stack += found
        return count, extra
