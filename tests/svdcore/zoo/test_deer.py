"""DEER physics behind the DEERNet example: grids, dipolar kernel, distributions, traces."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from svdcore.exceptions import DataError
from svdcore.zoo import deer, deernet


def test_grids_match_the_deernet_setup():
    t = deer.time_grid()
    r = deer.distance_grid()
    assert t.shape == (256,) and r.shape == (256,)
    assert t[0] == 0.0 and t[-1] == pytest.approx(2e-6, rel=1e-15)
    assert np.allclose(np.diff(t), 2e-6 / 255, rtol=1e-9)
    assert r[0] == pytest.approx(11.78e-10, rel=1e-12)
    assert r[-1] == pytest.approx(59.27e-10, rel=1e-12)
    assert np.allclose(deer.time_axis_us(), t * 1e6)
    assert deer.distance_axis_nm()[[0, -1]] == pytest.approx([1.178, 5.927])


def test_dipolar_frequency_is_52_MHz_at_one_nanometre():
    # The textbook dipolar constant for two electrons: D / 2 pi = 52.04 MHz nm^3 / r^3.
    nu = deer.dipolar_frequency(1e-9) / (2 * np.pi)
    assert nu == pytest.approx(52.04e6, rel=1e-3)
    assert deer.dipolar_frequency(2e-9) == pytest.approx(deer.dipolar_frequency(1e-9) / 8)


def test_kernel_is_one_at_time_zero():
    k = deer.dipolar_kernel(np.array([0.0, 1e-7]), deer.distance_grid())
    assert k.shape == (2, 256)
    assert np.array_equal(k[0], np.ones(256))
    assert np.array_equal(deer.grid_kernel()[0], np.ones(256))


@pytest.mark.parametrize("r", [1.178e-9, 2.0e-9, 3.5e-9, 5.927e-9])
@pytest.mark.parametrize("t", [1e-9, 1e-7, 7e-7, 2e-6])
def test_fresnel_kernel_equals_direct_integration(r, t):
    d = float(deer.dipolar_frequency(r))
    expected, _ = quad(
        lambda x: np.cos((1 - 3 * x * x) * d * t), 0.0, 1.0, limit=2000, epsabs=1e-13
    )
    got = deer.dipolar_kernel(t, r)
    assert got.shape == (1, 1)
    assert abs(got[0, 0] - expected) < 1e-8


def test_kernel_is_even_in_time_and_bounded():
    r = deer.distance_grid()
    t = deer.time_grid()
    assert np.allclose(deer.dipolar_kernel(-t, r), deer.dipolar_kernel(t, r), rtol=0, atol=0)
    k = deer.grid_kernel()
    assert k.shape == (256, 256)
    assert np.all(np.abs(k) <= 1.0 + 1e-12)
    assert not k.flags.writeable


def test_kernel_rejects_matrices():
    with pytest.raises(DataError, match="1-D"):
        deer.dipolar_kernel(np.zeros((2, 2)), deer.distance_grid())


def test_random_distributions_are_normalised_gaussian_mixtures():
    r = deer.distance_grid()
    p = deer.random_distributions(np.random.default_rng(5), 500, r)
    assert p.shape == (500, 256)
    assert np.all(p >= 0)
    assert np.allclose(p.sum(axis=1), 1.0)
    # a mixture of at most 4 Gaussians has at most 4 local maxima
    interior = (p[:, 1:-1] > p[:, :-2]) & (p[:, 1:-1] > p[:, 2:])
    assert interior.sum(axis=1).max() <= 4
    # peaks lie inside 1.5-5 nm, so the mean distance does too
    mean_r = p @ r
    assert np.all((mean_r > 1.4e-9) & (mean_r < 5.1e-9))


def test_form_factor_is_one_at_time_zero_for_unnormalised_p():
    rng = np.random.default_rng(1)
    p = 7.0 * deer.random_distributions(rng, 20, deer.distance_grid())
    f = deer.form_factors(p, deer.grid_kernel())
    assert f.shape == (20, 256)
    assert np.allclose(f[:, 0], 1.0, atol=1e-12)
    assert np.all(np.abs(f) <= 1.0 + 1e-9)


def test_traces_follow_the_model_up_to_scaling_and_noise():
    t = deer.time_grid()
    kernel = deer.grid_kernel()
    batch = deer.simulate(400, np.random.default_rng(11))
    assert batch.traces.shape == (400, 256)
    assert batch.traces.min() == 0.0 and batch.traces.max() == 1.0
    assert np.allclose(batch.traces.min(axis=1), 0.0) and np.allclose(batch.traces.max(axis=1), 1)
    assert np.all((batch.depth >= 0.01) & (batch.depth <= 1.0))
    assert np.all((batch.rate >= 0.0) & (batch.rate <= 5e5))
    assert np.all((batch.dimension >= 2.0) & (batch.dimension <= 3.5))
    assert np.all(batch.noise <= 0.05 * batch.depth)

    form = deer.form_factors(batch.distributions, kernel)
    m, k, d = batch.depth[:, None], batch.rate[:, None], batch.dimension[:, None]
    clean = (1 - m + m * form) * np.exp(-((k * t) ** (d / 3)))
    checked = 0
    for i in range(400):
        # trace = a * (clean + noise) + b; recover a, b by least squares, compare residual sd
        a, b = np.polyfit(clean[i], batch.traces[i], 1)
        resid = (batch.traces[i] - (a * clean[i] + b)) / a
        if batch.noise[i] > 1e-3:
            assert np.std(resid) == pytest.approx(batch.noise[i], rel=0.25)
            checked += 1
        else:
            assert np.std(resid) < 2e-3
    assert checked > 100


def test_deernet_data_shapes_range_and_targets():
    x, y = deernet.make_data(n=300, seed=3, split="train")
    assert x.shape == (300, 256) and y.shape == (300, 256)
    assert str(x.dtype) == "torch.float32" and str(y.dtype) == "torch.float32"
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(y.min()) >= 0.0
    assert np.allclose(y.max(dim=1).values.numpy(), 1.0)


def test_deernet_data_is_deterministic_by_seed_and_split():
    a = deernet.make_data(n=100, seed=4, split="train")
    b = deernet.make_data(n=100, seed=4, split="train")
    c = deernet.make_data(n=100, seed=5, split="train")
    d = deernet.make_data(n=100, seed=4, split="test")
    assert all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a, b, strict=True))
    assert not np.allclose(a[0].numpy(), c[0].numpy())
    assert not np.allclose(a[0].numpy(), d[0].numpy())
    # a longer request starts with the shorter one (chunked generation)
    long_x, long_y = deernet.make_data(n=deernet.CHUNK + 50, seed=4, split="train")
    assert np.array_equal(long_x[:100].numpy(), a[0].numpy())
    assert np.array_equal(long_y[:100].numpy(), a[1].numpy())


def test_deernet_data_rejects_bad_arguments():
    with pytest.raises(DataError, match="split"):
        deernet.make_data(n=10, split="validation")
    with pytest.raises(DataError, match="positive"):
        deernet.make_data(n=0)
