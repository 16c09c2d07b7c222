"""Errors raised by svdcore.

Every error carries a sentence a user can act on: what was wrong, with which object, and
what to do instead. The dashboard and the CLI show ``str(error)`` verbatim.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "ExecutionError",
    "LayerError",
    "LoadError",
    "SvdscopeError",
]


class SvdscopeError(Exception):
    """Base class of every error svdscope raises on purpose."""


class LoadError(SvdscopeError):
    """A model or dataset file could not be read (missing, unsupported, corrupt, unsafe)."""


class LayerError(SvdscopeError):
    """A layer name or matrix view does not exist, or the tensor cannot be viewed as asked."""


class DataError(SvdscopeError):
    """An array argument is unusable: wrong rank or shape, empty, NaN/Inf, wrong dtype."""


class ExecutionError(SvdscopeError):
    """A forward pass was asked of a network that cannot run (weights only) or that failed."""
