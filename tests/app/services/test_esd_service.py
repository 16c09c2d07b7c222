"""The ESD panel's service: its numbers are svdcore's on the layer's float64 spectrum, the
user's xmin and Hill k are checked with sentences, and a large layer waits for its job."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import app.services.esd as esd_module
import app.services.layers as layers_module
import svdcore as sc
from app.config import AppConfig
from app.services import EsdOptions, Services
from app.services.esd import mp_curve
from app.views.spectrum import esd as esd_view


def _planted(m: int, n: int, *, seed: int) -> torch.Tensor:
    """Weak noise plus a rank-3 signal whose 2nd and 3rd singular values nearly tie."""
    g = torch.Generator().manual_seed(seed)
    noise = 0.05 * torch.randn(m, n, generator=g, dtype=torch.float64) / np.sqrt(n)
    U, _ = torch.linalg.qr(torch.randn(m, 3, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, 3, generator=g, dtype=torch.float64))
    signal = U @ torch.diag(torch.tensor([9.0, 6.0, 6.01], dtype=torch.float64)) @ V.T
    return (noise + signal).float()


@pytest.fixture
def services(tmp_path):
    path = tmp_path / "net.safetensors"
    g = torch.Generator().manual_seed(1)
    save_file(
        {
            "enc.weight": _planted(120, 200, seed=2).contiguous(),
            "big.weight": torch.randn(150, 140, generator=g).contiguous(),
            "tiny.weight": torch.randn(3, 5, generator=g).contiguous(),
        },
        str(path),
    )
    return Services(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))


def _float64(services, layer):
    W = services.registry.network("net", None).matrix(layer).double().numpy()
    return W, np.sort(np.linalg.svd(W, compute_uv=False) ** 2)


def test_numbers_equal_svdcore_on_the_float64_spectrum(services):
    data = services.esd.esd("net", "enc", "default", None, EsdOptions())
    W, truth = _float64(services, "enc")
    assert data.shape == (120, 200)
    np.testing.assert_allclose(data.eigenvalues, truth, rtol=1e-9, atol=1e-12)
    auto = sc.fit_powerlaw(truth)
    assert data.fit is data.auto
    assert data.fit.alpha == pytest.approx(auto.alpha, rel=1e-9)
    assert data.fit.xmin == pytest.approx(auto.xmin, rel=1e-9)
    mp = sc.fit_marchenko_pastur(truth, shape=(120, 200))
    assert data.mp.sigma2 == pytest.approx(mp.sigma2, rel=1e-8)
    assert data.mp.n_spikes == mp.n_spikes == 3  # the planted rank-3 signal
    hill = sc.hill_estimator(truth)
    assert data.hill.k == hill.k and data.hill.alpha == pytest.approx(hill.alpha, rel=1e-9)
    shuffled = sc.shuffled_spectrum(torch.from_numpy(W), seed=esd_module.SHUFFLED_SEED)
    np.testing.assert_allclose(data.shuffled.eigenvalues, shuffled.eigenvalues, rtol=1e-6)
    assert data.shuffled.distance == pytest.approx(shuffled.distance, abs=1e-6)
    assert data.shuffled.distance > 0.1  # a planted signal is far from its shuffled copy
    groups = [(t.start, t.stop) for t in data.ties]  # 0-based; the noise bulk ties too
    assert groups[0] == (1, 3) and all(start >= 3 for start, _ in groups[1:])  # sigma2 ~ sigma3
    assert data.problems == {}


def test_the_users_xmin_and_k_are_used_and_checked(services):
    auto = services.esd.esd("net", "enc", "default", None, EsdOptions())
    evals = auto.eigenvalues
    chosen = float(evals[-40])
    data = services.esd.esd("net", "enc", "default", None, EsdOptions(xmin=chosen, hill_k=25))
    assert data.fit.xmin == pytest.approx(chosen, rel=1e-12) and data.fit.n_tail == 40
    tail = evals[-40:]
    assert data.fit.alpha == pytest.approx(1 + 40 / np.log(tail / chosen).sum(), rel=1e-9)
    assert data.auto.xmin == pytest.approx(auto.auto.xmin)  # the KS choice stays drawn
    assert data.hill.k == 25
    with pytest.raises(sc.DataError, match="choose a smaller xmin"):
        services.esd.esd("net", "enc", "default", None, EsdOptions(xmin=float(evals[-1]) * 2))
    with pytest.raises(sc.DataError, match="k"):
        services.esd.esd("net", "enc", "default", None, EsdOptions(hill_k=10**6))


@pytest.mark.parametrize(
    ("xmin", "k", "match"),
    [
        ("abc", None, "xmin must be a number"),
        (-1, None, "xmin must be a positive number"),
        (0, None, "xmin must be a positive number"),
        (float("nan"), None, "xmin must be a positive number"),
        (None, 2.5, "positive whole number"),
        (None, 0, "positive whole number"),
        (None, "x", "whole number"),
    ],
)
def test_page_inputs_that_are_not_options_are_named(xmin, k, match):
    with pytest.raises(sc.DataError, match=match):
        EsdOptions.from_page(xmin, k)


def test_page_inputs_empty_mean_automatic():
    assert EsdOptions.from_page(None, "") == EsdOptions()
    assert EsdOptions.from_page("0.5", 7) == EsdOptions(0.5, 7)


def test_a_layer_too_small_to_fit_says_why_and_keeps_the_rest(services):
    data = services.esd.esd("net", "tiny", "default", None, EsdOptions())
    assert data.fit is None and data.hill is None
    assert "at least 10 eigenvalues" in data.problems["fit"]
    assert data.mp is not None and data.shuffled is not None  # both need no tail
    boxes = {box.children[1].id: box for box in esd_view.stats_panel(data)}
    assert "at least 10" in str(boxes["text-esd-alpha"].children[2])


def test_a_large_layer_waits_for_its_job_then_has_everything(services, monkeypatch):
    monkeypatch.setattr(layers_module, "SPECTRUM_FULL_MAX_SIDE", 100)
    monkeypatch.setattr(esd_module, "SHUFFLED_INLINE_MAX_SIDE", 100)
    args = ("net", "big", "default", None)
    assert services.esd.esd(*args, EsdOptions()) is None  # only the top is known
    assert services.esd.shuffled(*args, compute=False) is None
    services.layers.spectrum_full(*args)  # what the spectrum job runs
    data = services.esd.esd(*args, EsdOptions())
    assert data is not None and data.fit is not None and data.shuffled is None
    assert any("full spectrum's job" in str(b.children[2]) for b in esd_view.stats_panel(data))
    services.esd.shuffled(*args)  # the job's second step
    data = services.esd.esd(*args, EsdOptions())
    assert data.shuffled is not None and data.shuffled.distance < 0.02  # pure noise
    _, truth = _float64(services, "big")
    np.testing.assert_allclose(data.eigenvalues, truth, rtol=1e-9, atol=1e-12)


def test_the_ties_warning_names_the_groups_and_the_subspace(services):
    data = services.esd.esd("net", "enc", "default", None, EsdOptions())
    text = str(esd_view.ties_warning(data))
    assert "σ2–σ3" in text and "subspace" in text
    noise = services.esd.esd("net", "big", "default", None, EsdOptions())
    assert all(t.start >= 1 for t in noise.ties)  # whatever noise ties, never a crash


@pytest.mark.parametrize("q", [0.25, 0.6, 1.0])
def test_mp_curve_is_svdcores_law_in_the_units_of_wtw(q):
    n_big, sigma2 = 400, 0.7
    x, y = mp_curve(q=q, sigma2=sigma2, n_big=n_big, weight=0.8, lo=1e-9, points=4000)
    expected = 0.8 * sc.marchenko_pastur_density(x / n_big, q=q, sigma2=sigma2) / n_big
    inside = np.isfinite(y)
    np.testing.assert_allclose(y[inside], expected[inside], rtol=1e-12)
    assert np.all(expected[~inside] == 0)
    upper = n_big * sigma2 * (1 + np.sqrt(q)) ** 2
    assert x[-1] == pytest.approx(upper, rel=1e-12)
    if q < 1:  # no 1/x singularity at the lower edge: the curve integrates to its weight
        assert np.trapezoid(np.nan_to_num(y), x) == pytest.approx(0.8, rel=2e-2)
