"""Spectral surgery view: what the selection says about the surgery to compute (its
sample, dataset and split), read the same way by the view and its background jobs."""

from __future__ import annotations

from typing import Any

from app.services.surgery_types import (
    SurgeryOptions,
    computed_in_request,
    resolve_precision,
    resolve_rank,
)
from app.views.common import Selection, number

__all__ = [
    "COMPONENT_MODES",
    "dataset_of",
    "rank_of",
    "sample_of",
    "split_of",
    "surgery_options",
    "sync",
]

COMPONENT_MODES = ("auto", "exact", "top")


def sample_of(selection: Selection | None) -> int:
    """The selected sample index (the URL's `sample=`), 0 when none is given."""
    try:
        return max(0, int((selection or {}).get("sample") or 0))
    except (TypeError, ValueError):
        return 0


def dataset_of(selection: Selection | None) -> str | None:
    """The dataset chosen in the sidebar (None: the example network's own data)."""
    return (selection or {}).get("dataset") or None


def split_of(services: Any, selection: Selection, split: Any, session: str | None) -> str:
    """The split module chosen in the view, else the service's default for the layer."""
    if split:
        return split
    return services.surgery.default_split(selection["model"], selection.get("layer"), session)


def rank_of(mode: Any, k: Any, r: int) -> int | None:
    """The components the controls ask for at a split of r (see ``resolve_rank``)."""
    return resolve_rank(mode if mode in COMPONENT_MODES else "auto", number(k, int), r)


def sync(r: int) -> bool:
    """Whether the surgery is computed in the request (else by the Compute job)."""
    return computed_in_request(r)


def surgery_options(
    services: Any,
    selection: Selection,
    split: Any,
    mode: Any,
    k: Any,
    session: str | None,
    precision: Any = None,
) -> tuple[SurgeryOptions, int]:
    """The surgery the controls ask for (sample, split, components, the precision of a
    top-k surgery's products) and r at that split."""
    options = SurgeryOptions(sample_of(selection), split_of(services, selection, split, session))
    r = services.surgery.rank(selection["model"], options, session, dataset_of(selection))
    rank = rank_of(mode, k, r)
    precision = resolve_precision(rank, precision)
    return SurgeryOptions(options.sample, options.split, rank, precision), r
