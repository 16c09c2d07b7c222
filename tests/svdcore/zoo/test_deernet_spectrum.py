"""The shipped DEERNet's first layer is the filter of Amey et al. (PNAS 2021, Fig. 2).

E(f) = sum over rows of |fftshift(fft2(W1))[:, f]|^2 is W1's energy per input (time)
frequency. It is unchanged by any orthogonal descrambler acting on the rows of W1, so the
notch at zero input frequency and the low-pass band limit that Fig. 2 shows after
descrambling are properties of W1 itself and can be checked on the raw weights.

Thresholds sit well clear of what the shipped weights measure (noted beside each; seeds 1
and 2 of the same recipe in brackets) and fail for the same recipe without weight decay
(plain Adam, the previous shipped weights: "no decay").
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import svdcore.zoo as zoo
from svdcore.exceptions import DataError
from svdcore.fourier import fft2_view
from svdcore.zoo import deernet


def _energy(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    view = fft2_view(weight)
    return (view.magnitude**2).sum(axis=0), view.col_freq


@pytest.fixture(scope="module")
def spectrum() -> tuple[np.ndarray, np.ndarray]:
    weight = zoo.load_module("deernet").fc1.weight.detach().double().numpy()
    return _energy(weight)


def test_energy_per_input_frequency_ignores_descrambling(spectrum):
    weight = zoo.load_module("deernet").fc1.weight.detach().double().numpy()
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((80, 80)))
    energy, _ = _energy(q @ weight)
    np.testing.assert_allclose(energy, spectrum[0], rtol=1e-9)


def test_first_layer_has_a_notch_at_zero_input_frequency(spectrum):
    energy, freq = spectrum
    zero = int(np.flatnonzero(freq == 0)[0])
    e0 = energy[zero]
    neighbours = energy[[zero - 2, zero - 1, zero + 1, zero + 2]]  # f = +-1/256, +-2/256
    low_band = energy[(np.abs(freq) <= 0.02) & (freq != 0)]  # 0 < |f| <= 5/256
    assert e0 <= 0.1 * energy.max()  # measured 0.033 (0.038, 0.043); no decay 0.48
    assert e0 <= 0.25 * neighbours.min()  # measured 0.076 (0.100, 0.100); no decay 0.96
    assert e0 <= 0.5 * low_band.min()  # measured 0.18 (0.22, 0.23); no decay 4.5
    # the same notch read directly: the rows of W1 nearly sum to zero
    weight = zoo.load_module("deernet").fc1.weight.detach().double()
    ones = torch.ones(weight.shape[1], dtype=torch.float64)
    assert float((weight @ ones).norm() / (16 * weight.norm())) <= 0.15  # 0.067; no decay 0.26


def test_first_layer_is_a_low_pass_filter(spectrum):
    energy, freq = spectrum
    total = energy.sum()
    assert energy[np.abs(freq) <= 0.1].sum() >= 0.9 * total  # 0.934 (0.933, 0.935); no decay 0.835
    assert energy[np.abs(freq) > 0.25].sum() <= 0.04 * total  # 0.017 (0.018, 0.018); no decay 0.080


def test_description_and_record_quote_the_filter_and_its_recipe(spectrum):
    energy, freq = spectrum
    total = energy.sum()
    description = zoo.get("deernet").description
    assert f"{energy[freq == 0][0] / energy.max():.0%} of the peak" in description
    assert f"{energy[np.abs(freq) <= 0.1].sum() / total:.0%} of the energy" in description
    record = json.loads(zoo.weights_path("deernet").with_suffix(".json").read_text("utf-8"))
    assert record["settings"]["l2"] == pytest.approx(1e-4)  # MATLAB's default L2Regularization
    assert record["settings"]["weight_decay"] == pytest.approx(1e-4 * 2 / 256)


def test_l2_option_decays_the_weights_and_not_the_biases(tmp_path):
    tiny = {"n_train": 512, "n_test": 64, "epochs": 2, "batch_size": 128, "lr": 1e-2}
    plain = deernet.train(out=tmp_path / "plain.safetensors", l2=0.0, **tiny)
    heavy = deernet.train(out=tmp_path / "heavy.safetensors", l2=100.0, **tiny)
    a, b = (load_file(str(r.path)) for r in (plain, heavy))
    assert plain.settings["weight_decay"] == 0.0
    assert heavy.settings["weight_decay"] == pytest.approx(100.0 * 2 / 256)
    for key in ("fc1.weight", "fc2.weight"):
        assert b[key].norm() < 0.9 * a[key].norm()
    # biases are not decayed: the heavily decayed net's biases are not pulled towards zero
    assert b["fc2.bias"].norm() > 0.5 * a["fc2.bias"].norm()


def test_negative_l2_is_rejected(tmp_path):
    with pytest.raises(DataError, match="l2"):
        deernet.train(out=tmp_path / "x.safetensors", l2=-1.0, n_train=8, n_test=8, epochs=1)
