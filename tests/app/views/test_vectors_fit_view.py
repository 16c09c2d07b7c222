"""The fit control of the Singular vectors view without a browser: the service fits the top-k
vectors part by part (auto split where the axis restarts), equals svdcore's fit_vector on the
same vectors, is cached, turns bad options into DataError sentences and skips image views;
the gallery draws the fits dashed with R² in the titles; the hint says what was used."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import svdcore as sc
from app.config import AppConfig
from app.figures import vector_gallery
from app.figures.theme import FIT, LINE
from app.figures.vectors import r2_text
from app.services import Services
from app.services.vector_fits import VectorFitOptions, auto_split, parse_split
from app.views.vectors import fit_hint
from svdcore.signal_models import fit_vector

ILR = "ilr-biexp-ndnd"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fits")
    return Services(AppConfig(models=[ILR, "deernet", "digits"], upload_dir=tmp / "up"))


def options(family: str, *, order=None, split="", side="right") -> VectorFitOptions:
    return VectorFitOptions.from_controls(family=family, order=order, split=split, side=side)


def test_ilr_fc1_right_vectors_fit_half_by_half(services):
    fits = services.fits.run(ILR, "fc1", "default", 8, options("biexponential"), None)
    assert fits.left is None and fits.family == "biexponential" and fits.order is None
    right = fits.right
    assert right.split == (64,) and right.auto and right.abscissa == "time (ms)"
    assert len(right.fits) == 8
    for parts in right.fits:
        assert [p.span for p in parts] == [(0, 64), (64, 128)]
    for parts in right.fits[:2]:  # the zoo description: 0.989 / 0.966 (second half 0.989 / 0.965)
        assert all(p.r2 > 0.9 for p in parts)
    assert right.fits[0][0].r2 == pytest.approx(0.989, abs=0.005)
    assert right.fits[1][0].r2 == pytest.approx(0.966, abs=0.005)


def test_fits_equal_fit_vector_on_the_same_vectors(services):
    data = services.layers.vectors(ILR, "fc1", "default", 3, None)
    fits = services.fits.run(ILR, "fc1", "default", 3, options("biexponential"), None)
    t = data.info.col_axis.values
    # Exact on purpose: the service fits these very arrays (its cached `vectors`, the same
    # float64 axis) with the same fit_vector, one thread: the same inputs give the same bits.
    # A tolerance would not do for the parameters: the biexponential fit of these vectors
    # is ill-conditioned (c1 ≈ -c2 ≈ 2.5e4), so they are not close unless identical.
    for v, parts in zip(data.right, fits.right.fits, strict=True):
        direct = fit_vector(v, "biexponential", t=t, split=[64])
        for got, want in zip(parts, direct, strict=True):
            np.testing.assert_array_equal(got.fitted, want.fitted)
            assert got.params == want.params and got.r2 == want.r2
    # DEERNet fc2: left vectors over the distance axis, Chebyshev degree 5, no split
    data = services.layers.vectors("deernet", "fc2", "default", 2, None)
    cheb = services.fits.run(
        "deernet", "fc2", "default", 2, options("chebyshev", order=5, side="left"), None
    )
    assert cheb.order == 5 and cheb.left.split == () and cheb.left.abscissa == "distance (nm)"
    for u, parts in zip(data.left, cheb.left.fits, strict=True):
        want = fit_vector(u, "chebyshev", degree=5, x=data.info.row_axis.values)
        np.testing.assert_array_equal(parts[0].fitted, want.fitted)


def test_both_sides_and_default_orders(services):
    fits = services.fits.run(ILR, "fc1", "default", 4, options("trig", side="both"), None)
    assert fits.order == 7 and fits.right.split == (64,) and fits.left.split == ()
    assert fits.left.abscissa == "index"  # fc1's outputs have no physical axis
    assert all(len(p) == 2 for p in fits.right.fits) and all(len(p) == 1 for p in fits.left.fits)
    assert all(len(p[0].params) == 7 for p in fits.left.fits)
    assert options("chebyshev").resolved_order == 6


def test_fits_are_cached_per_side_and_options(services, monkeypatch):
    first = services.fits.run(ILR, "fc1", "default", 2, options("chebyshev"), None)
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return fit_vector(*args, **kwargs)

    monkeypatch.setattr("app.services.vector_fits.fit_vector", counting)
    again = services.fits.run(ILR, "fc1", "default", 2, options("chebyshev"), None)
    assert calls == []  # from the cache (stored pickled: equal values, not the same objects)
    assert [p.r2 for f in again.right.fits for p in f] == [
        p.r2 for f in first.right.fits for p in f
    ]
    services.fits.run(ILR, "fc1", "default", 2, options("chebyshev", order=4), None)
    assert len(calls) == 2  # another order: both vectors fitted again
    services.fits.run(ILR, "fc1", "default", 2, options("chebyshev", split="32, 64"), None)
    assert len(calls) == 4


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"split": "200"}, "split point 200 lies outside 1..127"),
        ({"split": "0"}, "split point 0 lies outside 1..127"),
        ({"split": "64, 32"}, "strictly increasing"),
        ({"split": "126"}, "has 2 point(s); a biexponential fit needs at least 6"),
    ],
)
def test_bad_options_raise_a_sentence(services, kwargs, expected):
    with pytest.raises(sc.DataError, match="right \\(input-side\\) singular vectors") as err:
        services.fits.run(ILR, "fc1", "default", 2, options("biexponential", **kwargs), None)
    assert expected in str(err.value)
    assert services.error_message(err.value) == str(err.value)


def test_order_too_large_for_the_part_and_bad_controls(services):
    too_big = options("chebyshev", order=64)  # 65 coefficients on 64-point halves
    with pytest.raises(sc.DataError, match=r"part \[0:64\] has 64 point\(s\)"):
        services.fits.run(ILR, "fc1", "default", 2, too_big, None)
    with pytest.raises(sc.DataError, match="whole numbers"):
        options("biexponential", split="half")
    with pytest.raises(sc.DataError, match="whole number"):
        options("chebyshev", order=2.5)
    with pytest.raises(sc.DataError, match="1 or more"):
        options("trig", order=0)
    with pytest.raises(sc.DataError, match="Unknown fit family"):
        options("spline")


def test_image_views_are_not_fitted(services):
    fits = services.fits.run("digits", "fc1", "default", 4, options("trig", side="both"), None)
    assert fits.right.fits == (None,) * 4 and "8×8 images" in fits.right.note
    assert all(len(p) == 1 for p in fits.left.fits)  # the 10 class scores: curves, fitted
    hint = fit_hint(fits)
    assert "Right: the right singular vectors are 8×8 images: not fitted" in hint


def test_parse_and_auto_split():
    assert parse_split("") is None and parse_split(None) is None and parse_split("auto") is None
    assert parse_split(" 32, 64 ") == (32, 64) and parse_split("64") == (64,)
    t = np.concatenate([np.linspace(0, 800, 64), np.linspace(0, 800, 64)])
    assert auto_split(t, 128) == (64,)
    assert auto_split(np.arange(10.0), 10) == ()
    assert auto_split(None, 10) == () and auto_split(t, 64) == ()  # no axis / wrong length


def _part(fitted, span, r2):
    return SimpleNamespace(fitted=np.asarray(fitted, dtype=float), span=span, r2=r2)


def test_gallery_draws_fits_dashed_with_r2_in_titles():
    t = np.concatenate([np.arange(5.0), np.arange(5.0)])
    V = np.arange(20, dtype=np.float32).reshape(2, 10)
    fits = [
        [_part(V[0, :5] + 1, (0, 5), 0.9891), _part(V[0, 5:], (5, 10), 0.96549)],
        None,
    ]
    fig = vector_gallery(V, np.array([3.2, 1.0]), axis_values=t, fits=fits)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "v<sub>1</sub>   σ = 3.2<br>R² 0.989 | 0.965"
    assert titles[1] == "v<sub>2</sub>   σ = 1"
    assert len(fig.data) == 4  # two vectors, two fitted parts (not joined across the split)
    data_line, fit1, fit2 = fig.data[0], fig.data[1], fig.data[2]
    assert data_line.line.color == LINE and data_line.line.dash is None
    # the axis restarts at 5: the vector's curve is broken there, not joined back to 0
    assert len(data_line.y) == 11 and np.isnan(data_line.y[5]) and np.isnan(data_line.x[5])
    np.testing.assert_array_equal(np.delete(data_line.y, 5), V[0])
    for trace, (a, b) in ((fit1, (0, 5)), (fit2, (5, 10))):
        assert trace.line.dash == "dash" and trace.line.color == FIT
        assert trace.xaxis == "x" and "fit %{y" in trace.hovertemplate
        np.testing.assert_array_equal(trace.x, t[a:b])
    np.testing.assert_allclose(fit1.y, V[0, :5] + 1)
    assert "part 2, R² 0.965" in fit2.hovertemplate
    # without an axis the fit runs over the index
    fig = vector_gallery(V, np.ones(2), fits=[[_part(V[0, 2:], (2, 10), 0.5)], None])
    np.testing.assert_array_equal(fig.data[1].x, np.arange(2, 10))


def test_gallery_r2_not_available_and_images_ignore_fits():
    assert r2_text([_part([1.0], (0, 1), math.nan)]) == "R² n/a"
    V = np.ones((1, 4), dtype=np.float32)
    fig = vector_gallery(V, np.ones(1), image_shape=(2, 2), fits=[[_part(V[0], (0, 4), 1.0)]])
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    assert "R²" not in fig.layout.annotations[0].text
    with pytest.raises(ValueError, match="one entry of fits per vector"):
        vector_gallery(V, np.ones(1), fits=[])


def test_hint_names_family_split_and_abscissa(services):
    fits = services.fits.run(ILR, "fc1", "default", 8, options("biexponential"), None)
    hint = fit_hint(fits)
    assert hint.startswith("Biexponential fit")
    assert "Right: split 64 (auto, where the axis restarts), x = time (ms)" in hint
    given = services.fits.run(ILR, "fc1", "default", 2, options("chebyshev", split="64"), None)
    assert "split 64 (given)" in fit_hint(given) and "degree 6" in fit_hint(given)
