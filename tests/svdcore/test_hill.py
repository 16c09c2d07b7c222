"""Hill's tail-exponent estimator (svdcore.hill)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from svdcore import DataError, fit_powerlaw
from svdcore.hill import hill_estimator


def test_a_pareto_sample_gives_its_exponent() -> None:
    rng = np.random.default_rng(0)
    alpha = 2.5  # density ~ x^(-2.5): numpy's pareto(a) + 1 has density a x^(-a-1)
    x = rng.pareto(alpha - 1, 20000) + 1.0
    est = hill_estimator(x, k=2000)
    assert abs(est.alpha - alpha) < 3 * est.sigma
    assert est.sigma == pytest.approx((est.alpha - 1) / math.sqrt(2000))


def test_it_is_the_mle_with_xmin_at_the_cut_and_the_hill_plot_is_consistent() -> None:
    rng = np.random.default_rng(1)
    x = np.exp(rng.standard_normal(500))
    est = hill_estimator(x, k=40)
    data = np.sort(x)[::-1]
    assert est.xmin == data[40]
    gamma = np.mean(np.log(data[:40] / data[40]))
    assert est.alpha == pytest.approx(1 + 1 / gamma, rel=1e-12)
    # fit_powerlaw with xmin = X_(k+1) uses k + 1 values (xmin itself adds log 1 = 0)
    mle = fit_powerlaw(x, xmin=est.xmin)
    assert mle.alpha - 1 == pytest.approx((est.alpha - 1) * 41 / 40, rel=1e-12)
    assert est.ks[39] == 40 and est.alphas[39] == est.alpha
    assert est.alphas.size == data.size - 1


def test_the_default_k_and_bad_input() -> None:
    x = np.arange(1.0, 101.0)
    assert hill_estimator(x).k == 10
    assert hill_estimator(np.r_[np.full(50, 3.0), 4.0, 5.0], k=2).alpha > 1
    with pytest.raises(DataError, match="at most 99"):
        hill_estimator(x, k=100)
    with pytest.raises(DataError, match="at least 3"):
        hill_estimator([1.0, 2.0])
    with pytest.raises(DataError, match="all equal"):
        hill_estimator(np.r_[np.full(50, 3.0), 1.0, 0.5], k=10)
