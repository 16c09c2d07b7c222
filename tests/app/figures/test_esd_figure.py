"""The ESD figure: densities that integrate to one, the draggable xmin line first among the
shapes, click roles on the traces."""

from __future__ import annotations

import numpy as np
import pytest

import svdcore as sc
from app.figures.esd import XMIN_SHAPE, esd_figure, histogram_density


def test_histogram_density_integrates_to_one_and_draws_lone_bins():
    rng = np.random.default_rng(0)
    values = np.r_[rng.lognormal(size=500), 1e4]  # a lone spike far above the rest
    edges = np.geomspace(values.min(), values.max() * (1 + 1e-9), 61)
    x, y = histogram_density(values, edges, total=values.size)
    assert x.shape == y.shape
    counts, _ = np.histogram(values, bins=edges)
    runs = np.split(np.arange(x.size), np.flatnonzero(np.isnan(x)))
    area = 0.0
    for run in runs:
        run = run[~np.isnan(x[run])]
        assert run.size >= 2  # every run is a drawable line, the lone bin too
        steps = np.diff(x[run])
        area += float((steps * y[run][:-1]).sum())
    assert area == pytest.approx(1.0, rel=1e-12)
    assert len(runs) == 1 + int(np.sum(np.diff(np.flatnonzero(counts > 0)) > 1))
    assert x[~np.isnan(x)][-1] == pytest.approx(edges[-1])  # the spike's bin is there
    assert histogram_density(np.array([]), edges, total=0)[0].size == 0


def _fit_inputs():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((80, 200)) @ np.diag(np.linspace(0.2, 3, 200))
    evals = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)
    return evals, sc.fit_powerlaw(evals), sc.hill_estimator(evals)


def test_xmin_line_is_the_first_shape_and_editable():
    evals, fit, hill = _fit_inputs()
    fig = esd_figure(
        evals,
        thresh=1e-5,
        xmin=fit.xmin,
        alpha=fit.alpha,
        n_tail=fit.n_tail,
        xmins=fit.xmins,
        Ds=fit.Ds,
        auto_xmin=fit.xmin,
        hill_ks=hill.ks,
        hill_alphas=hill.alphas,
        hill_k=hill.k,
        mp={"x": np.array([1.0, 10.0]), "y": np.array([0.1, 0.01]), "lambda_plus": 400.0},
        spikes=evals[-2:],
        shuffled=evals[::-1].copy(),
    )
    shapes = fig.layout.shapes
    line = shapes[XMIN_SHAPE]
    assert line.editable and line.x0 == line.x1 == pytest.approx(fit.xmin)
    assert sum(bool(s.editable) for s in shapes) == 1  # only xmin can be dragged
    assert any(s.y0 == s.y1 == pytest.approx(fit.alpha) for s in shapes)  # alpha on Hill
    by_name = {t.name: t for t in fig.data}
    assert set(by_name["ESD"].customdata) == {"xmin"}
    assert set(by_name["KS D(xmin)"].customdata) == {"xmin"}
    assert set(by_name["Hill α(k)"].customdata) == {"k"}
    law = by_name[f"power law α = {fit.alpha:.3f}"]
    drawn = (evals > 1e-5).sum()
    assert law.y[0] == pytest.approx(fit.n_tail / drawn * (fit.alpha - 1) / fit.xmin)
    assert law.x[0] == pytest.approx(fit.xmin)
    assert by_name[f"Hill k = {hill.k}"].y[0] == pytest.approx(hill.alphas[hill.k - 1])
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_figure_without_fits_draws_the_density_alone():
    fig = esd_figure(np.array([0.5, 1.0, 2.0]), thresh=1e-5)
    assert [t.name for t in fig.data] == ["ESD"]
    assert not fig.layout.shapes
    empty = esd_figure(np.zeros(4), thresh=1e-5)  # a zero matrix: nothing to draw, no error
    assert len(empty.data) == 0
