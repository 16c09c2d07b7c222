"""svdcore.signal_models: parameter recovery on synthetic vectors, exactness, R^2, bad input."""

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev as npcheb

import svdcore as sc
from svdcore.signal_models import (
    FAMILIES,
    Fit,
    fit_biexponential,
    fit_chebyshev,
    fit_trig,
    fit_vector,
)

# Sule et al.: 64 time points on [0, 800] ms
T_MS = np.linspace(0.0, 800.0, 64)


def _biexp(t, c1, T1, c2, T2, d):
    return c1 * np.exp(-t / T1) + c2 * np.exp(-t / T2) + d


def _r2(y, fitted):
    return 1.0 - np.sum((y - fitted) ** 2) / np.sum((y - np.mean(y)) ** 2)


@pytest.mark.parametrize(
    "c1, T1, c2, T2, d",
    [
        (0.6, 40.0, 0.4, 250.0, 0.0),  # the ILR signal model, well-separated T's
        (1.0, 20.0, -0.5, 250.0, 0.1),  # signs free: not a decaying curve
        (-0.3, 40.0, 0.7, 200.0, 0.05),
    ],
)
def test_biexponential_recovers_parameters_with_noise(c1, T1, c2, T2, d):
    rng = np.random.default_rng(11)
    clean = _biexp(T_MS, c1, T1, c2, T2, d)
    y = clean + 1e-3 * rng.standard_normal(T_MS.size)
    fit = fit_biexponential(y, t=T_MS)
    p = fit.params
    assert isinstance(fit, Fit) and fit.family == "biexponential" and fit.span == (0, 64)
    assert p["T1"] <= p["T2"]
    assert p["T1"] == pytest.approx(T1, rel=0.05)
    assert p["T2"] == pytest.approx(T2, rel=0.05)
    assert p["c1"] == pytest.approx(c1, rel=0.05)
    assert p["c2"] == pytest.approx(c2, rel=0.05)
    assert p["d"] == pytest.approx(d, abs=0.01)
    assert fit.r2 > 0.99
    # invariant: fitted is the model at the reported parameters, fitted + residual == y
    np.testing.assert_allclose(fit.fitted, _biexp(T_MS, **p), atol=1e-10)
    np.testing.assert_allclose(fit.fitted + fit.residual, y, atol=1e-12)
    # the fit is at least as good as the truth (least squares optimum found)
    assert np.sum(fit.residual**2) <= np.sum((y - clean) ** 2) * (1 + 1e-9)


def test_biexponential_exact_on_noise_free_curve_any_time_origin():
    t = T_MS + 100.0  # constants are reported at the caller's time origin
    y = _biexp(t, 0.7, 50.0, 0.3, 300.0, -0.02)
    fit = fit_biexponential(y, t=t)
    assert fit.params["T1"] == pytest.approx(50.0, rel=1e-4)
    assert fit.params["T2"] == pytest.approx(300.0, rel=1e-4)
    assert fit.params["c1"] == pytest.approx(0.7, rel=1e-4)
    assert fit.params["c2"] == pytest.approx(0.3, rel=1e-4)
    assert fit.rmse < 1e-7 and fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_biexponential_default_time_is_the_index_and_starts_are_configurable():
    n = np.arange(40, dtype=float)
    y = _biexp(n, 1.0, 2.0, 0.5, 12.0, 0.0)
    fit = fit_biexponential(torch.tensor(y, dtype=torch.float64))
    assert fit.params["T1"] == pytest.approx(2.0, rel=1e-4)
    assert fit.params["T2"] == pytest.approx(12.0, rel=1e-4)
    again = fit_biexponential(y, starts=[(1.0, 10.0), (3.0, 30.0)])
    assert again.params["T2"] == pytest.approx(12.0, rel=1e-4)


def test_biexponential_split_fits_each_half_on_its_own():
    # Sule's (ND, Reg) input: two 64-point halves with different curves
    rng = np.random.default_rng(3)
    first = _biexp(T_MS, 0.6, 40.0, 0.4, 250.0, 0.0)
    second = _biexp(T_MS, -0.8, 30.0, 1.2, 150.0, 0.05)
    y = np.concatenate([first, second]) + 1e-3 * rng.standard_normal(128)
    fits = fit_biexponential(y, t=T_MS, split=64)  # t of one part is reused for each part
    assert isinstance(fits, tuple) and len(fits) == 2
    assert [f.span for f in fits] == [(0, 64), (64, 128)]
    assert fits[0].params["T1"] == pytest.approx(40.0, rel=0.05)
    assert fits[1].params["T1"] == pytest.approx(30.0, rel=0.05)
    assert fits[1].params["T2"] == pytest.approx(150.0, rel=0.05)
    assert all(f.r2 > 0.99 for f in fits)
    # same as fitting each half alone; a full-length t gives the same result
    alone = fit_biexponential(y[64:], t=T_MS)
    assert alone.params == pytest.approx(fits[1].params)
    same = fit_biexponential(y, t=np.concatenate([T_MS, T_MS]), split=64)
    assert same[0].params == pytest.approx(fits[0].params)


@pytest.mark.parametrize("degree", [3, 6])
def test_chebyshev_recovers_coefficients_with_noise(degree):
    rng = np.random.default_rng(degree)
    coef = rng.uniform(-1.0, 1.0, degree + 1)
    x = np.linspace(-1.0, 1.0, 256)
    clean = npcheb.chebval(x, coef)
    y = clean + 1e-3 * rng.standard_normal(x.size)
    fit = fit_chebyshev(y, degree=degree)
    got = np.array([fit.params[f"c{j}"] for j in range(degree + 1)])
    np.testing.assert_allclose(got, coef, atol=5e-4)
    assert fit.r2 > 0.99
    # invariants: fitted = chebval at the coefficients; residual orthogonal to the basis
    np.testing.assert_allclose(fit.fitted, npcheb.chebval(x, got), atol=1e-12)
    V = npcheb.chebvander(x, degree)
    np.testing.assert_allclose(V.T @ fit.residual, 0.0, atol=1e-10)


def test_chebyshev_maps_x_onto_the_window_and_splits():
    x = np.linspace(0.0, 10.0, 50)  # mapped onto [-1, 1]
    y = npcheb.chebval(np.linspace(-1, 1, 50), [0.5, -1.0, 0.25])
    fit = fit_chebyshev(y, degree=2, x=x)
    assert [fit.params[k] for k in ("c0", "c1", "c2")] == pytest.approx([0.5, -1.0, 0.25])
    both = fit_chebyshev(np.concatenate([y, -y]), degree=2, split=50)
    assert both[1].params["c1"] == pytest.approx(1.0)
    assert both[1].span == (50, 100)


def test_trig_fit_is_exact_on_trig_polynomials():
    m = 48
    T = sc.trig_basis(m).numpy()
    a = np.zeros(m)
    a[:7] = [0.3, -1.0, 0.5, 0.0, 2.0, -0.25, 0.1]
    y = T @ a
    fit = fit_trig(y, terms=7)
    np.testing.assert_allclose([fit.params[f"a{j}"] for j in range(7)], a[:7], atol=1e-12)
    np.testing.assert_allclose(fit.residual, 0.0, atol=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    # a sin(2 pi k l / m) component is spanned by the first terms
    ell = np.arange(m)
    wave = 1.5 + np.sin(2 * np.pi * 3 * ell / m) - 0.5 * np.cos(2 * np.pi * 2 * ell / m)
    assert fit_trig(wave, terms=7).rmse < 1e-12
    assert fit_trig(wave, terms=3).r2 < 0.5
    # all terms: exact for any vector; ||fitted||^2 == sum a^2
    noise = np.random.default_rng(0).standard_normal(m)
    full = fit_trig(noise, terms=m)
    np.testing.assert_allclose(full.fitted, noise, atol=1e-12)
    assert np.sum(full.fitted**2) == pytest.approx(sum(v**2 for v in full.params.values()))


def test_r2_and_rmse_match_direct_computation():
    rng = np.random.default_rng(8)
    y = np.sin(np.linspace(0, 3, 40)) + 0.1 * rng.standard_normal(40)
    for fit in (
        fit_chebyshev(y, degree=2),
        fit_trig(y, terms=3),
        fit_biexponential(y),
    ):
        assert fit.r2 == pytest.approx(_r2(y, fit.fitted), rel=1e-12)
        assert fit.rmse == pytest.approx(np.sqrt(np.mean((y - fit.fitted) ** 2)), rel=1e-12)
        np.testing.assert_allclose(fit.residual, y - fit.fitted, atol=1e-15)
    # a constant vector has no variance: R^2 is undefined (nan), rmse 0
    const = fit_chebyshev(np.full(10, 2.0), degree=1)
    assert math.isnan(const.r2) and const.rmse == pytest.approx(0.0, abs=1e-12)


def test_fit_vector_dispatches():
    y = npcheb.chebval(np.linspace(-1, 1, 30), [1.0, 2.0])
    assert fit_vector(y, "chebyshev", degree=1).params == pytest.approx(
        fit_chebyshev(y, degree=1).params
    )
    assert fit_vector(y, "trig", terms=5).params == pytest.approx(fit_trig(y, terms=5).params)
    assert len(fit_vector(y, "biexponential", split=15)) == 2
    assert set(FAMILIES) == {"biexponential", "chebyshev", "trig"}
    with pytest.raises(sc.DataError, match="unknown fit family"):
        fit_vector(y, "gaussian")
    with pytest.raises(sc.DataError, match="takes no option degree"):
        fit_vector(y, "trig", terms=3, degree=2)
    with pytest.raises(sc.DataError, match="needs degree"):
        fit_vector(y, "chebyshev")


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: fit_biexponential(np.array([1.0, np.nan, 2, 3, 4, 5, 6])), "NaN"),
        (lambda: fit_biexponential(np.array([])), "empty"),
        (lambda: fit_biexponential(np.ones((3, 4))), "1-D"),
        (lambda: fit_biexponential(np.ones(5)), "at least 6"),
        (lambda: fit_biexponential(np.ones(20), split=20), "outside 1..19"),
        (lambda: fit_biexponential(np.ones(20), split=0), "outside"),
        (lambda: fit_biexponential(np.ones(20), split=3), r"part \[0:3\] has 3"),
        (lambda: fit_biexponential(np.ones(30), split=[20, 10]), "increasing"),
        (lambda: fit_biexponential(np.ones(20), split=2.5), "integer"),
        (lambda: fit_biexponential(np.ones(20), t=np.arange(7.0)), "t has 7 values"),
        (lambda: fit_biexponential(np.ones(20), t=np.zeros(20)), "distinct"),
        (lambda: fit_biexponential(np.ones(20), starts=1), "starts"),
        (lambda: fit_biexponential(np.array(["a", "b"])), "numeric"),
        (lambda: fit_biexponential("abc"), "numpy array"),
        (lambda: fit_chebyshev(np.ones(3), degree=3), "at least 4"),
        (lambda: fit_chebyshev(np.ones(8), degree=-1), "non-negative"),
        (lambda: fit_chebyshev(np.ones(8), degree=2, x=np.ones(8)), "span an interval"),
        (lambda: fit_trig(np.ones(8), terms=9), "at least 9"),
        (lambda: fit_trig(np.ones(8), terms=0), "positive"),
        (lambda: fit_trig(torch.ones(4, dtype=torch.complex64), terms=1), "complex"),
    ],
)
def test_bad_input_raises_data_error(call, fragment):
    with pytest.raises(sc.DataError, match=fragment):
        call()


def test_column_vector_is_accepted():
    y = np.linspace(1.0, 0.0, 12)[:, None]  # a column of U, kept 2-D
    assert fit_chebyshev(y, degree=1).r2 == pytest.approx(1.0)
