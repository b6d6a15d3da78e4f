"""Errors that mean "the user asked for something that cannot be done".

The CLI turns every :class:`KerasdlUsageError` into a one-line message and exit code 2;
anything else is an internal error (exit code 1).
"""

from __future__ import annotations

import difflib
from typing import Iterable


class KerasdlUsageError(ValueError):
    """Bad input from the user: a wrong name, an impossible shape, a corrupt file."""


SHORT_LIST = 12  # an unknown name with no close match lists the valid names when there are this few


class UnknownNameError(KerasdlUsageError):
    """A name (model, dataset, optimizer, ...) that kerasdl does not know."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], extra: str = ""):
        self.kind, self.name = kind, name
        self.choices = sorted(set(choices))
        self.suggestions = closest(name, self.choices)
        message = f"unknown {kind} {name!r}"
        if self.suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        elif 0 < len(self.choices) <= SHORT_LIST:  # nothing close, but few choices: name them all
            message += "; choose one of " + ", ".join(self.choices)
        if extra:
            message += (" " if self.suggestions else "; ") + extra
        super().__init__(message)


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The ``n`` closest valid names to ``name`` (case-insensitive), best first."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    # Prefix matches help with truncated names ("resnet" -> "resnet18", "resnet20", ...).
    if len(hits) < n:
        for c in sorted(lowered):
            if c.startswith(name.lower()) and c not in hits:
                hits.append(c)
            if len(hits) >= n:
                break
    return [lowered[h] for h in hits]


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type), for one-line errors."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
