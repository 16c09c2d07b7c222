"""The layer table: one row per weight tensor with its matrix shape and, where it is
computed, the spectrum summary of its default matrix view.

The page's Layers table (app/services/layers.py) and `svdscope layers` print these rows in
their own formats; which layers get a summary, and how it is obtained (computed, cached,
or only looked up), is the caller's `summary` function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .exceptions import SvdscopeError
from .network import LayerInfo, Network
from .spectrum import SpectrumSummary

__all__ = ["LayerRow", "layer_rows"]


@dataclass(frozen=True)
class LayerRow:
    """One tensor of the table. ``summary`` is None when the tensor has no matrix view,
    when the budget left it out (``skipped``), or when `summary` declined (a summary not
    computed yet); ``error`` is the sentence of an `SvdscopeError` the summary raised (NaN
    or Inf weights ...): that layer is named, the others are still listed."""

    info: LayerInfo
    summary: SpectrumSummary | None = None
    error: str | None = None
    skipped: bool = False


def layer_rows(
    net: Network,
    *,
    summary: Callable[[LayerInfo, bool], SpectrumSummary | None],
    max_elements: int | None = None,
    max_layers: int | None = None,
) -> list[LayerRow]:
    """Rows for every tensor of `net`, in order. ``summary(info, compute)`` gives a
    viewable layer's summary: ``compute`` is False for a matrix of more than
    ``max_elements`` entries (it may still answer from a cache, or None). Once
    ``max_layers`` layers were to be computed, no later layer is asked at all
    (``skipped``): a model of thousands of layers costs no per-layer work past them."""
    rows: list[LayerRow] = []
    computed = 0
    for info in net.layers:
        if info.matrix_shape is None:
            rows.append(LayerRow(info))
            continue
        m, n = info.matrix_shape
        compute = max_elements is None or m * n <= max_elements
        computed += compute
        if max_layers is not None and computed > max_layers:
            rows.append(LayerRow(info, skipped=True))
            continue
        try:
            rows.append(LayerRow(info, summary(info, compute)))
        except SvdscopeError as err:
            rows.append(LayerRow(info, error=str(err)))
    return rows
