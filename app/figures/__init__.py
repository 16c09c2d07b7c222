"""Pure figure builders: numpy arrays in, plotly figures out (no svdcore, no Dash)."""

from app.figures.descramble import (
    basis_overlay,
    fft_heatmap,
    fft_view_heatmap,
    matrix_panel,
    objective_history,
)
from app.figures.inversion import distance_history, generated_input, output_bars
from app.figures.overview import sparklines_figure
from app.figures.pooling import Pooled, pool_max_abs
from app.figures.spectrum import spectrum_figure
from app.figures.subspaces import (
    decomposition_figure,
    panel_grid,
    signal_gallery,
    singular_values_figure,
)
from app.figures.theme import (
    DIVERGING,
    SEQUENTIAL,
    TEMPLATE,
    placeholder_figure,
    register_template,
)
from app.figures.vectors import side_gallery, vector_gallery
from app.figures.weights import symmetric_limit, weights_heatmap

__all__ = [
    "DIVERGING",
    "SEQUENTIAL",
    "TEMPLATE",
    "Pooled",
    "basis_overlay",
    "decomposition_figure",
    "distance_history",
    "fft_heatmap",
    "fft_view_heatmap",
    "generated_input",
    "matrix_panel",
    "objective_history",
    "output_bars",
    "panel_grid",
    "placeholder_figure",
    "pool_max_abs",
    "register_template",
    "side_gallery",
    "signal_gallery",
    "singular_values_figure",
    "sparklines_figure",
    "spectrum_figure",
    "symmetric_limit",
    "vector_gallery",
    "weights_heatmap",
]

register_template()
