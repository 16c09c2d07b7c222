"""Subspaces view: computed SubspacesData / ProjectionData -> figures, numbers, table rows.

No computing here beyond choosing labels: the arrays come from the services, the figures
from app.figures.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import html

from app.figures import (
    decomposition_figure,
    panel_grid,
    placeholder_figure,
)
from app.figures.subspaces_panels import weight_figures
from app.formatting import fmt_cond
from app.services import ProjectionData, SubspacesData
from app.views.common import axis_title, stat_maker

__all__ = [
    "ENERGY_COLUMNS",
    "input_figures",
    "own_neuron_figure",
    "stats_panel",
    "table_rows",
    "weight_figures",
]

ENERGY_COLUMNS = [
    {"name": "Class", "id": "name"},
    {"name": "Samples", "id": "count"},
    {"name": "Energy removed from the class average", "id": "energy_removed"},
    {"name": "Mean energy removed per sample", "id": "mean_sample_energy_removed"},
]


_stat = stat_maker("subspaces")


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _space(n: int) -> str:
    """ "ℝⁿ" with n in superscript digits."""
    return "ℝ" + str(n).translate(_SUPERSCRIPT)


def stats_panel(data: SubspacesData, projection: ProjectionData | None) -> list[html.Div]:
    """Dimensions of the four subspaces, rank, condition number, tolerance (and the mean
    energy removed over the dataset when the inputs are known)."""
    m, n = data.shape
    d = data.dims
    stats = [
        _stat("Row space", str(d["row"]), f"signal space in {_space(n)}: V[:, :r]", "row"),
        _stat(
            "Column space", str(d["col"]), f"signal output space in {_space(m)}: U[:, :r]", "col"
        ),
        _stat("Null space", str(d["null"]), f"rejected inputs, W x = 0: n − r = {n} − r", "null"),
        _stat(
            "Left null space",
            str(d["left_null"]),
            f"unreachable outputs, Wᵀ y = 0: m − r = {m} − r",
            "left_null",
        ),
        _stat("Condition number", fmt_cond(data.cond), "σ₁ / σ_r over the rank r", "cond"),
        _stat(
            "Rank tolerance",
            f"{data.rtol:.3g}",
            f"σᵢ > rtol · σ₁ count towards the rank r = {data.rank}",
            "rtol",
        ),
    ]
    if projection is not None:
        stats.append(
            _stat(
                "Energy removed",
                f"{100 * projection.mean_energy_ratio:.1f} %",
                f"‖residual‖² / ‖x‖², mean over {projection.n_samples:,} inputs",
                "energy",
            )
        )
    return stats


def own_neuron_figure(data: SubspacesData, projection: ProjectionData, name: str) -> go.Figure:
    """Pattichis Fig. 1, last row: each class average against its own output neuron."""
    if projection.own_residuals is None:
        return placeholder_figure()
    info = data.info
    return panel_grid(
        projection.own_residuals,
        [
            f"class {c} − p<sub>{c}</sub> · {100 * r:.1f} %"
            for c, r in zip(projection.class_names, projection.own_ratios, strict=True)
        ],
        image_shape=data.image_shape,
        axis_values=None if info.col_axis is None else info.col_axis.values,
        axis_title=axis_title(info.col_axis, info.col_label),
        title=(
            f"Each class average against its own output neuron of {name}: x̄<sub>k</sub> − "
            "p<sub>k</sub> (Pattichis Fig. 1, last row)"
            "<br><sup>what output neuron k ignores of its own class; each title: the share "
            "of the average's energy removed</sup>"
        ),
        value_label="x̄ − p",
    )


def input_figures(
    data: SubspacesData, projection: ProjectionData, name: str, highlight_class: int | None
) -> tuple[go.Figure, go.Figure, go.Figure]:
    """x = signal + residual for the focus input, the per-neuron residual row, and the
    residuals of the class averages."""
    info = data.info
    axis_values = None if info.col_axis is None else info.col_axis.values
    axis = axis_title(info.col_axis, info.col_label)
    decomposition = decomposition_figure(
        projection.x,
        projection.signal,
        projection.residual,
        projection.energy_ratio,
        title=f"{projection.focus_label}: split by the signal space of {name}",
        image_shape=data.image_shape,
        axis_values=axis_values,
        axis_title=axis,
    )
    neurons = projection.neurons.tolist()
    titles = [
        f"neuron {j} · {100 * r:.1f} %"
        for j, r in zip(neurons, projection.neuron_ratios, strict=True)
    ]
    some = ""
    if len(neurons) < projection.neuron_total:
        some = f"{len(neurons)} of {projection.neuron_total} neurons, those that keep most of x; "
    highlight = neurons.index(highlight_class) if highlight_class in neurons else None
    neuron_fig = panel_grid(
        projection.neuron_residuals,
        titles,
        image_shape=data.image_shape,
        axis_values=axis_values,
        axis_title=axis,
        title=(
            f"Per-neuron residuals x − p<sub>j</sub> of the {projection.focus_label}<br><sup>"
            "p<sub>j</sub> = (w<sub>j</sub>·x / w<sub>j</sub>·w<sub>j</sub>) w<sub>j</sub>; "
            f"{some}each title: the share of x's energy that neuron j ignores</sup>"
        ),
        highlight=highlight,
        value_label="x − p",
    )
    if not projection.class_names:
        classes = placeholder_figure(projection.classes_note)
    else:
        ratios = {row["name"]: row["energy_removed"] for row in projection.class_table}
        classes = panel_grid(
            projection.class_residuals,
            [f"class {c} · {100 * ratios[c]:.1f} %" for c in projection.class_names],
            image_shape=data.image_shape,
            axis_values=axis_values,
            axis_title=axis,
            title=(
                f"Residuals of the class averages: what {name} ignores of each class"
                "<br><sup>each title: the share of the average's energy removed</sup>"
            ),
            value_label="residual",
        )
    return decomposition, neuron_fig, classes


def table_rows(projection: ProjectionData) -> list[dict[str, Any]]:
    """The energy table, percentages as text with one decimal."""
    return [
        {
            "label": row["label"],
            "name": row["name"],
            "count": row["count"],
            "energy_removed": f"{100 * row['energy_removed']:.1f} %",
            "mean_sample_energy_removed": f"{100 * row['mean_sample_energy_removed']:.1f} %",
        }
        for row in projection.class_table
    ]
