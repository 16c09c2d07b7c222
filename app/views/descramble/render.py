"""Descramble view: a computed DescrambleData -> the figures and numbers of the page.

No computing here beyond choosing labels: the arrays come from the services, the
figures from app.figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dash import html

from app.figures import placeholder_figure
from app.figures.descramble_panels import OBJECTIVE, DescrambleFigures, descramble_figures
from app.formatting import fmt_g
from app.services import DescrambleData
from app.views.common import stat_maker
from app.views.descramble.controls import OPTIMIZER_LABELS

__all__ = ["HIDDEN", "SHOWN", "Rendered", "empty", "render", "stats_panel"]

SHOWN: dict[str, str] = {"display": "block"}
HIDDEN: dict[str, str] = {"display": "none"}

_BOUND = {
    "smoothness": "von Neumann: Σ μᵢ sᵢ, the exact minimum",
    "mds": "Σ σᵢ (leading square block), the exact maximum",
    "max_diagonal_norm": "no closed form for this criterion",
}


@dataclass(frozen=True)
class Rendered:
    """The view's figures (placeholders for a next layer or history that does not apply),
    the styles that show or hide those two panels, and the numbers."""

    figures: DescrambleFigures
    next_style: dict[str, str]
    history_style: dict[str, str]
    stats: list[Any]

    def outputs(self) -> tuple[Any, ...]:
        """In the order of the update callback's outputs: the figures, the styles, stats."""
        return (*self.figures, self.next_style, self.history_style, self.stats)


def empty(message: str = "") -> Rendered:
    """Placeholders everywhere (nothing to show yet, or an error shown elsewhere)."""
    blank = placeholder_figure(message)
    figures = DescrambleFigures(
        blank, *[placeholder_figure() for _ in DescrambleFigures._fields[1:]]
    )
    return Rendered(figures, HIDDEN, HIDDEN, [])


_stat = stat_maker("descramble")


def stats_panel(data: DescrambleData) -> list[html.Div]:
    """The numbers: objective, bound, gap, principal angle, N, c, det P, phi, method."""
    symbol, detail = OBJECTIVE.get(data.criterion, ("", data.criterion))
    gap = "—" if data.gap is None else f"{data.gap:.2e}"
    stats = [
        _stat(
            "Objective", fmt_g(data.objective, 6, missing="—"), f"{symbol}: {detail}", "objective"
        ),
        _stat("Bound", fmt_g(data.bound, 6, missing="—"), _BOUND.get(data.criterion, ""), "bound"),
        _stat("Gap", gap, "(objective − bound) / |bound|", "gap"),
    ]
    n = data.P.shape[0]
    span = (
        f"r = n = {n}: both spans are all of ℝⁿ"
        if data.rank >= n
        else f"u₁…u_r of P W vs. the r = {data.rank} smoothest basis vectors"
    )
    stats.append(_stat("Max principal angle", f"{data.max_angle_deg:.3g}°", span, "angle"))
    if data.source == "weights":
        signals, how = "—", "this criterion is judged on the weights alone"
    elif math.isinf(data.n_signals):
        signals, how = "∞", "exact limit S = W Wᵀ"
    else:
        signals, how = f"{int(data.n_signals):,}", f"signals from the {data.source} source"
    stats.append(_stat("N signals", signals, how, "signals"))
    if data.position == "second":
        stats.append(
            _stat(
                "c (second layer)",
                fmt_g(data.c, 4, missing="—"),
                f"‖σ(W X)‖₂ / ‖W_(k+1)ᵀ‖₂ ({data.next_layer})",
                "c",
            )
        )
    stats.append(_stat("det P", "+1" if data.det_sign > 0 else "−1", "orientation of P", "det"))
    stats.append(
        _stat(
            "‖φ(P) − I‖",
            fmt_g(data.phi_distance, 3, missing="—"),
            "Frobenius norm / √r; ≈ 0 in the noise limit",
            "phi",
        )
    )
    if data.method == "iterative":
        ending = "converged" if data.converged else "step limit reached"
        if data.cancelled:
            ending = "cancelled"
        optimizer = OPTIMIZER_LABELS.get(data.options.optimizer, data.options.optimizer)
        method, how = "iterative", f"{optimizer}, {data.steps:,} steps, {ending}"
    else:
        method, how = "exact", "closed form"
    stats.append(_stat("Method", method, f"{how}; criterion {data.criterion}", "method"))
    return stats


def render(data: DescrambleData, ffts: tuple[Any, Any], layer_name: str) -> Rendered:
    """Every figure and number of the view for one descrambled layer."""
    f = descramble_figures(data, ffts, layer_name)
    figures = f._replace(
        next=f.next or placeholder_figure(), history=f.history or placeholder_figure()
    )
    return Rendered(
        figures,
        HIDDEN if f.next is None else SHOWN,
        HIDDEN if f.history is None else SHOWN,
        stats_panel(data),
    )
