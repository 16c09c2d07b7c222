"""svdcore.esd: power-law recovery on synthetic spectra, xmin selection, the per-layer table."""

import io
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.esd import (
    EVALS_THRESH,
    TABLE_COLUMNS,
    LayerSpectrum,
    PowerLawFit,
    esd_eigenvalues,
    fit_powerlaw,
    layer_spectra,
    spectral_table,
)


def _pareto(alpha, n, seed, xmin=1.0):
    """n samples with density ~ x^(-alpha) on [xmin, inf) (inverse-CDF sampling)."""
    u = np.random.default_rng(seed).uniform(size=n)
    return xmin * (1.0 - u) ** (-1.0 / (alpha - 1.0))


def _reference_fit(evals, thresh=EVALS_THRESH):
    """WeightWatcher's published method written out plainly, one candidate xmin at a time."""
    data = np.sort(evals[evals > thresh])
    best = None
    for i in range(data.size - 1):
        tail = data[i:]
        n = tail.size
        alpha = 1.0 + n / np.sum(np.log(tail / tail[0]))
        if alpha > 1.0:
            cdf = 1.0 - (tail / tail[0]) ** (1.0 - alpha)
            D = np.max(np.abs(cdf - np.arange(n) / n))
        else:
            D = 1.0
        if best is None or D < best[2]:
            best = (alpha, tail[0], D, n)
    return best


@pytest.mark.parametrize("alpha", [1.5, 2.0, 2.5, 3.0, 4.0])
def test_alpha_recovers_power_law_exponent(alpha):
    fits = [fit_powerlaw(_pareto(alpha, 2000, seed)) for seed in range(8)]
    estimates = np.array([f.alpha for f in fits])
    # the estimator is unbiased to within 0.1 (its spread per sample grows with alpha - 1)
    assert abs(estimates.mean() - alpha) < 0.1
    for f in fits:
        assert isinstance(f, PowerLawFit)
        assert abs(f.alpha - alpha) < max(0.1, 4 * f.sigma)  # within the fit's own error bar
        assert f.D < 0.05  # a true power law fits well
        assert f.sigma == pytest.approx((f.alpha - 1) / math.sqrt(f.n_tail))
    if alpha <= 2.0:  # a single sample is already within 0.1 here
        assert np.all(np.abs(estimates - alpha) < 0.1)


def test_alpha_invariant_and_fixed_xmin():
    x = _pareto(2.5, 2000, seed=42)
    f = fit_powerlaw(x)
    tail = np.sort(x)[np.sort(x) >= f.xmin]
    assert f.n_tail == tail.size
    assert f.alpha == pytest.approx(1 + tail.size / np.sum(np.log(tail / f.xmin)), rel=1e-12)
    assert f.D == pytest.approx(f.Ds.min())
    assert f.xmins.shape == f.alphas.shape == f.Ds.shape == (x.size - 1,)
    fixed = fit_powerlaw(x, xmin=1.0)  # the true onset: every sample is in the tail
    assert fixed.n_tail == 2000 and fixed.xmin == pytest.approx(np.min(x))
    assert abs(fixed.alpha - 2.5) < 0.1
    # scale invariance: alpha and D do not depend on the units, xmin does
    scaled = fit_powerlaw(37.0 * x)
    assert scaled.alpha == pytest.approx(f.alpha, rel=1e-9)
    assert scaled.D == pytest.approx(f.D, rel=1e-9)
    assert scaled.xmin == pytest.approx(37.0 * f.xmin, rel=1e-12)


@pytest.mark.parametrize("alpha", [2.5, 3.5])
def test_xmin_finds_the_onset_of_the_tail(alpha):
    rng = np.random.default_rng(7)
    body = rng.exponential(0.25, size=4000)
    body = body[body < 1.0][:1000]  # an exponential bulk below 1
    x = np.concatenate([body, _pareto(alpha, 1000, seed=8)])  # a power-law tail from 1 up
    f = fit_powerlaw(x)
    assert 0.9 <= f.xmin <= 3.0
    assert abs(f.alpha - alpha) < max(0.15, 4 * f.sigma)
    # without the xmin search the bulk ruins the exponent
    assert abs(fit_powerlaw(x, xmin=float(x.min())).alpha - alpha) > 0.5


@pytest.mark.parametrize("kind", ["gaussian", "student", "pareto-spectrum"])
def test_agrees_with_weightwatcher_method_on_matrices(kind):
    rng = np.random.default_rng(3)
    if kind == "gaussian":
        W = rng.standard_normal((300, 120))
    elif kind == "student":
        W = rng.standard_t(2.5, size=(300, 120))  # heavy-tailed entries -> heavy-tailed ESD
    else:
        U, _ = np.linalg.qr(rng.standard_normal((300, 120)))
        V, _ = np.linalg.qr(rng.standard_normal((120, 120)))
        W = (U * np.sqrt(_pareto(3.0, 120, seed=4))) @ V.T
    evals = esd_eigenvalues(W)
    f = fit_powerlaw(evals)
    alpha, xmin, D, n = _reference_fit(evals)
    assert f.alpha == pytest.approx(alpha, rel=1e-10)
    assert f.xmin == pytest.approx(xmin, rel=1e-12)
    assert f.D == pytest.approx(D, rel=1e-10, abs=1e-14)
    assert f.n_tail == n


def test_esd_eigenvalues_of_a_matrix():
    lam = _pareto(3.0, 50, seed=5)
    rng = np.random.default_rng(6)
    U, _ = np.linalg.qr(rng.standard_normal((80, 50)))
    V, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    W = (U * np.sqrt(lam)) @ V.T
    ev = esd_eigenvalues(torch.tensor(W))
    np.testing.assert_allclose(ev, np.sort(lam), rtol=1e-10)
    assert ev.sum() == pytest.approx(np.linalg.norm(W) ** 2)
    np.testing.assert_allclose(esd_eigenvalues(W.T), ev, rtol=1e-10)  # same nonzero spectrum
    np.testing.assert_allclose(esd_eigenvalues(W, normalize=True), ev / 80, rtol=1e-12)
    # alpha does not see the normalisation
    assert fit_powerlaw(ev / 80).alpha == pytest.approx(fit_powerlaw(ev).alpha, rel=1e-9)


@pytest.mark.parametrize(
    "bad, kwargs, fragment",
    [
        (np.array([1.0, np.nan] + [2.0] * 20), {}, "NaN"),
        (np.array([]), {}, "empty"),
        (np.ones((4, 4)), {}, "1-D"),
        (np.arange(1.0, 6.0), {}, "at least 10"),
        (np.concatenate([np.zeros(50), [1.0, 2.0]]), {}, "at least 10"),
        (np.array([-1.0] + [1.0] * 20), {}, ">= 0"),
        (np.full(20, 3.0), {}, "all equal"),
        (np.arange(1.0, 30.0), {"xmin": 100.0}, "smaller xmin"),
        (np.arange(1.0, 30.0), {"xmin": -1.0}, "positive"),
        (np.array(["a", "b"]), {}, "numeric"),
        ("abc", {}, "numpy array"),
    ],
)
def test_bad_input_raises_data_error(bad, kwargs, fragment):
    with pytest.raises(sc.DataError, match=fragment):
        fit_powerlaw(bad, **kwargs)


def test_esd_eigenvalues_bad_input():
    with pytest.raises(sc.DataError, match="NaN"):
        esd_eigenvalues(np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(sc.DataError, match="2-D"):
        esd_eigenvalues(np.ones(3))


@pytest.mark.parametrize("zoo_name", ["digits-5layer", "digits-cnn"])
def test_table_matches_spectrum_functions_on_zoo_nets(zoo_name):
    net = sc.zoo.load(zoo_name)
    table = spectral_table(net)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert list(table["name"]) == [layer.name for layer in net.layers]
    fitted = 0
    for row in table.itertuples(index=False):
        W = net.matrix(row.name)
        s = np.linalg.svd(W.double().numpy(), compute_uv=False)
        assert (row.rows, row.cols) == tuple(W.shape)
        assert row.shape == "x".join(map(str, net.layer(row.name).shape))
        assert row.spectral_norm == pytest.approx(s[0], rel=1e-5)
        assert row.frobenius_norm == pytest.approx(np.linalg.norm(W.double().numpy()), rel=1e-5)
        assert row.stable_rank == pytest.approx(sc.stable_rank(W), rel=1e-9)
        assert row.effective_rank == pytest.approx(sc.effective_rank(W), rel=1e-9)
        # condition_number divides in float32, the summary in float64
        assert row.condition_number == pytest.approx(sc.condition_number(W), rel=1e-6)
        assert row.numerical_rank == sc.numerical_rank(W)
        evals = sc.spectrum_summary(W).singular_values ** 2
        if np.sum(evals > EVALS_THRESH) < 10:  # too few eigenvalues: summary only, with a note
            assert math.isnan(row.alpha) and "at least 10" in row.note
            continue
        fitted += 1
        expected = fit_powerlaw(evals)
        assert row.alpha == pytest.approx(expected.alpha, rel=1e-12)
        assert row.D == pytest.approx(expected.D, rel=1e-12)
        assert row.n_tail == expected.n_tail
        assert row.n_evals == np.sum(evals > EVALS_THRESH)
        assert row.alpha > 1 and 0 <= row.D <= 1 and row.note == ""
        # the float64 ESD of the same matrix gives (nearly) the same exponent
        assert fit_powerlaw(esd_eigenvalues(W)).alpha == pytest.approx(row.alpha, rel=1e-3)
    assert fitted >= 1
    back = pd.read_csv(io.StringIO(table.to_csv(index=False)), keep_default_na=False)
    assert list(back.columns) == list(TABLE_COLUMNS) and len(back) == len(table)


def test_table_notes_for_skipped_and_small_layers():
    module = nn.Sequential()
    module.add_module("big", nn.Linear(64, 64))
    module.add_module("tiny", nn.Linear(64, 4))  # 4 eigenvalues: too few to fit
    module.register_buffer("index", torch.zeros(3, 3, dtype=torch.long))  # not weights
    net = sc.Network.from_module(module, input_shape=(64,), name="mixed")
    table = spectral_table(net, max_elements=1000)
    notes = dict(zip(table["name"], table["note"], strict=True))
    assert "max_elements=1000" in notes["big"]
    assert "too few" in notes["tiny"] or "at least 10" in notes["tiny"]
    assert "not viewable" in notes["index"]
    big = table[table["name"] == "big"].iloc[0]
    assert math.isnan(big["alpha"]) and pd.isna(big["n_tail"]) and big["rows"] == 64
    tiny = table[table["name"] == "tiny"].iloc[0]
    assert tiny["spectral_norm"] > 0 and math.isnan(tiny["alpha"])  # summary without a fit
    rows = layer_spectra(net, max_elements=None)
    assert all(isinstance(r, LayerSpectrum) for r in rows)
    first = next(r for r in rows if r.name == "big")
    assert first.powerlaw is not None and first.summary is not None
    again = spectral_table(rows)
    assert again.loc[again["name"] == "big", "alpha"].item() == pytest.approx(first.powerlaw.alpha)
    with pytest.raises(sc.DataError, match="Network"):
        spectral_table("digits")
    with pytest.raises(sc.DataError, match="max_elements"):
        spectral_table(net, max_elements=0)


def test_table_kernels_view_and_normalize():
    net = sc.zoo.load("digits-cnn")
    table = spectral_table(net, view="kernels")
    conv1 = table[table["name"] == "conv1"].iloc[0]
    assert (conv1["rows"], conv1["cols"]) == (8, 9)
    fc1 = table[table["name"] == "fc1"].iloc[0]
    assert "kernels" in fc1["note"] and math.isnan(fc1["alpha"])
    plain, normed = spectral_table(net), spectral_table(net, normalize=True)
    np.testing.assert_allclose(normed["alpha"], plain["alpha"], rtol=1e-9)
    np.testing.assert_allclose(
        normed["xmin"] * np.maximum(plain["rows"], plain["cols"]), plain["xmin"], rtol=1e-9
    )


def test_no_layer_is_skipped_for_its_size_and_progress_is_reported():
    """The default computes every layer (no max_elements); progress names each layer in
    order; a stop request raises ExecutionError('cancelled') before the next layer."""
    module = nn.Sequential(nn.Linear(300, 2100), nn.ReLU(), nn.Linear(2100, 40))
    net = sc.Network.from_module(module, input_shape=(300,), name="wide")
    seen = []
    rows = layer_spectra(net, progress=lambda done, total, name: seen.append((done, total, name)))
    assert [r.note for r in rows if r.name == "0"] == [""]
    assert all(r.summary is not None for r in rows if r.matrix_shape is not None)
    assert seen[-1][:2] == (len(net.layers), len(net.layers))
    assert [name for _, _, name in seen] == [info.name for info in net.layers]
    big = next(r for r in rows if r.name == "0")
    want = np.linalg.svd(module[0].weight.detach().double().numpy(), compute_uv=False)
    np.testing.assert_allclose(big.summary.singular_values, want, rtol=1e-6)
    asked = []
    with pytest.raises(sc.ExecutionError, match="cancelled"):
        layer_spectra(net, should_stop=lambda: asked.append(1) or len(asked) > 1)
    assert len(asked) == 2


def test_table_diagnostics_equal_their_functions():
    """Hill, Marchenko-Pastur, near-tie and (with randomize) shuffled-copy columns equal
    svdcore.hill / rmt / ties on the same eigenvalues; without randomize they are empty."""
    rng = np.random.default_rng(0)
    module = nn.Sequential()
    module.add_module("noise", nn.Linear(300, 150, bias=False))
    module.add_module("signal", nn.Linear(150, 150, bias=False))
    with torch.no_grad():
        module.noise.weight.copy_(torch.from_numpy(rng.standard_normal((150, 300)) * 0.05))
        U = np.linalg.qr(rng.standard_normal((150, 150)))[0]
        s = np.r_[5.0, 4.99, 3.0, np.linspace(0.5, 0.1, 147)]  # sigma1 and sigma2 tie
        module.signal.weight.copy_(torch.from_numpy((U * s) @ U.T))
    net = sc.Network.from_module(module, input_shape=(300,), name="diag")
    plain = spectral_table(net)
    assert plain["rand_distance"].isna().all() and plain["n_traps"].isna().all()
    table = spectral_table(net, randomize=True, seed=5)
    for row in table.itertuples(index=False):
        W = net.matrix(row.name)
        sv = sc.spectrum_summary(W).singular_values
        evals = sv**2
        hill = sc.hill_estimator(evals)
        assert row.alpha_hill == pytest.approx(hill.alpha, rel=1e-12) and row.hill_k == hill.k
        mp = sc.fit_marchenko_pastur(evals, shape=tuple(W.shape))
        assert row.mp_edge == pytest.approx(mp.lambda_plus, rel=1e-12)
        assert row.mp_sigma2 == pytest.approx(mp.sigma2, rel=1e-12)
        assert row.n_spikes == mp.n_spikes
        assert row.bulk_fraction == pytest.approx(mp.bulk_fraction, rel=1e-12)
        shuffled = sc.shuffled_spectrum(W, seed=5)
        assert row.rand_distance == pytest.approx(shuffled.distance, rel=1e-9, abs=1e-12)
        assert row.n_traps == shuffled.n_traps
        ties = sc.near_ties(sv, top=16)
        assert row.near_ties == ", ".join(t.label() for t in ties)
    noise = table[table["name"] == "noise"].iloc[0]
    signal = table[table["name"] == "signal"].iloc[0]
    assert noise["n_spikes"] == 0 and noise["rand_distance"] < 0.02
    assert noise["mp_sigma2"] == pytest.approx(0.05**2, rel=0.03)
    assert signal["near_ties"].startswith("σ1–σ2")
    assert signal["rand_distance"] > 0.3  # structured: the shuffled copy is noise
