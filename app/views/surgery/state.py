"""Spectral surgery view: what the selection says about the surgery to compute (its
sample, dataset and split), read the same way by the view and its background jobs."""

from __future__ import annotations

from typing import Any

from app.views.common import Selection

__all__ = ["dataset_of", "sample_of", "split_of"]


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
