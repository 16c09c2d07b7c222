"""svdcore.zoo.ilr_data (Sule et al.): the noisy decays, their Reg tracks, the regularised fit.

Measured values are noted beside each threshold; thresholds leave margin for BLAS
differences between machines.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares

import svdcore.zoo as zoo
from svdcore.exceptions import DataError
from svdcore.zoo import ilr, ilr_data

NAMES = [entry.name for entry in ilr.ENTRIES]


# ----------------------------------------------------------------------------- the data
def test_grid_and_input_axis():
    t = ilr_data.time_grid_ms()
    assert t.shape == (64,) and t[0] == 0.0 and t[-1] == pytest.approx(800.0)
    assert np.allclose(np.diff(t), 800.0 / 63)
    for name in NAMES:
        entry = zoo.get(name)
        assert entry.input_shape == (128,) and entry.image_shape is None
        assert entry.output_axis is None
        axis = entry.input_axis
        assert (axis.label, axis.unit) == ("time", "ms")
        assert np.array_equal(axis.values[:64], t) and np.array_equal(axis.values[64:], t)
        with pytest.raises(ValueError):
            axis.values[0] = 1.0
    assert ilr_data.NOISE_STD == pytest.approx(1 / 30)


def test_shapes_ranges_and_ordering(test_data):
    for variant in ("ndnd", "ndreg"):
        x, y = test_data[variant]
        assert x.shape == (2000, 128) and y.shape == (2000, 2)
        assert x.dtype == torch.float32 and y.dtype == torch.float32
    t2 = test_data["t2"]
    assert t2.min() >= 50.0 - 1e-3 and t2.max() <= 500.0 + 1e-3
    assert np.all(t2[:, 0] <= t2[:, 1])
    # sorted pairs of uniforms: means 200 and 350 ms
    assert t2.mean(axis=0) == pytest.approx([200.0, 350.0], abs=8.0)
    xn, yn = test_data["ndnd"]
    xr, yr = test_data["ndreg"]
    assert torch.equal(xn[:, :64], xn[:, 64:])  # (ND, ND): the same decay twice
    assert torch.equal(xn[:, :64], xr[:, :64])  # both variants share the noisy decays
    assert torch.equal(yn, yr)


def test_noise_is_gaussian_with_variance_one_over_snr(test_data):
    xn, _ = test_data["ndnd"]
    noise = xn[:, :64].double().numpy() - test_data["clean"]
    assert noise.std() == pytest.approx(1 / 30, rel=0.02)  # measured 0.03331
    assert abs(noise.mean()) < 5e-4  # measured 3e-5
    # no structure left over time: every time point has the same spread
    assert np.allclose(noise.std(axis=0), 1 / 30, rtol=0.1)


def test_data_is_deterministic_and_prefix_stable():
    a = ilr_data.make_data(n=50, seed=3, split="train", variant="ndreg")
    b = ilr_data.make_data(n=50, seed=3, split="train", variant="ndreg")
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    c = ilr_data.make_data(n=50, seed=4, split="train", variant="ndreg")
    d = ilr_data.make_data(n=50, seed=3, split="test", variant="ndreg")
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[0], d[0])
    # across a chunk boundary (chunks of 4096)
    small = ilr_data.make_data(n=10, seed=1, split="train", variant="ndnd")
    large = ilr_data.make_data(n=ilr_data.CHUNK + 10, seed=1, split="train", variant="ndnd")
    assert torch.equal(large[0][:10], small[0]) and torch.equal(large[1][:10], small[1])
    assert not torch.equal(large[0][ilr_data.CHUNK : ilr_data.CHUNK + 10], small[0])
    # the entries' make_data are the two variants
    x, _ = zoo.get("ilr-biexp-ndreg").make_data(n=50, seed=3, split="train")
    assert torch.equal(x, a[0])


def test_bad_arguments_raise_data_error():
    with pytest.raises(DataError, match="variant"):
        ilr_data.make_data(n=5, variant="reg")
    with pytest.raises(DataError, match="split"):
        ilr_data.make_data(n=5, split="validation")
    with pytest.raises(DataError, match="positive"):
        ilr_data.make_data(n=0)
    with pytest.raises(DataError):
        ilr_data.regularized_fit(np.zeros(64))
    with pytest.raises(DataError):
        ilr_data.regularized_fit(np.zeros((3, 64)), bounds=(500.0, 50.0))


# ----------------------------------------------------------------------------- the Reg track
def _scipy_reference(d: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """The same problem with scipy's bounded least squares from eight starts."""
    best = None
    for start in [(275, 275), (100, 400), (400, 100), (60, 60), (490, 490), (60, 490), (490, 60)]:
        res = least_squares(
            lambda q: np.concatenate([ilr_data.biexponential(q[0], q[1])[0] - d, lam * q]),
            np.array(start, dtype=float),
            bounds=([50.0, 50.0], [500.0, 500.0]),
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        if best is None or 2 * res.cost < best[0]:
            best = (2 * res.cost, res.x)
    return best


def test_regularized_fit_finds_the_global_minimum():
    batch = ilr_data.simulate(40, np.random.default_rng(11), reg=True)
    t = ilr_data.time_grid_ms()
    ours = ilr_data._objective(batch.reg_params, batch.noisy, t, ilr_data.REG_LAMBDA)
    for i in range(40):
        cost, _ = _scipy_reference(batch.noisy[i], ilr_data.REG_LAMBDA)
        assert ours[i] <= cost * (1 + 1e-8)  # measured: equal to 3e-10 relative on 300
    assert np.all((batch.reg_params >= 50.0) & (batch.reg_params <= 500.0))
    assert np.allclose(batch.reg, ilr_data.biexponential(*batch.reg_params.T))


def test_regularized_fit_recovers_noise_free_constants():
    rng = np.random.default_rng(5)
    t2 = np.sort(rng.uniform(60.0, 480.0, size=(200, 2)), axis=1)
    t2 = t2[t2[:, 1] - t2[:, 0] > 5.0]
    clean = ilr_data.biexponential(t2[:, 0], t2[:, 1])
    p = ilr_data.regularized_fit(clean, lam=0.0)
    np.testing.assert_allclose(p, t2, rtol=1e-4)
    # With lambda = 1.6e-4 the penalty lambda^2 (T1^2 + T2^2) decides between two nearly
    # equal curves: 0.6 on the faster component (the truth) or on the slower one (T1 > T2,
    # both constants smaller). For noise-free data the fit takes the mirrored pair for 81 %
    # of these samples, so its constants are no estimate of (T21, T22); the curve, which is
    # what the Reg track uses, stays close (rms 0.0008 mean, 0.0047 worst).
    q = ilr_data.regularized_fit(clean)
    t = ilr_data.time_grid_ms()
    objective = ilr_data._objective(q, clean, t, ilr_data.REG_LAMBDA)
    assert np.all(objective <= ilr_data._objective(t2, clean, t, ilr_data.REG_LAMBDA))
    assert np.mean(q[:, 0] > q[:, 1]) > 0.5
    rms = np.sqrt(np.mean((ilr_data.biexponential(*q.T) - clean) ** 2, axis=1))
    assert rms.max() < 0.008 and rms.mean() < 0.002


def test_reg_track_is_smooth_and_close_to_the_noise_free_decay(test_data):
    x, _ = test_data["ndreg"]
    noisy, reg = x[:, :64].double().numpy(), x[:, 64:].double().numpy()
    clean = test_data["clean"]
    rms_reg = np.sqrt(np.mean((reg - clean) ** 2))
    rms_noise = np.sqrt(np.mean((noisy - clean) ** 2))
    assert rms_reg < 0.008  # measured 0.0057
    assert rms_reg < 0.25 * rms_noise  # noise 0.0333
    per_sample = np.sqrt(np.mean((reg - clean) ** 2, axis=1))
    assert np.quantile(per_sample, 0.99) < 0.02  # measured 0.012
    # smooth: second differences as small as the noise-free curve's, 35x below the data's
    d2 = lambda a: np.sqrt(np.mean(np.diff(a, 2, axis=1) ** 2))  # noqa: E731
    assert d2(reg) < 1.5 * d2(clean)  # measured 0.00224 vs 0.00220
    assert d2(reg) < 0.05 * d2(noisy)  # noisy 0.081
    assert np.all(np.diff(reg, axis=1) <= 1e-6)  # a decay: never rises
    assert np.all(reg[:, 0] == pytest.approx(1.0, abs=1e-6))  # 0.6 + 0.4 at t = 0


def test_data_names_stay_importable_from_ilr():
    assert ilr.make_data is ilr_data.make_data and ilr.biexponential is ilr_data.biexponential
    assert ilr.TARGET_SCALE_MS == ilr_data.TARGET_SCALE_MS
