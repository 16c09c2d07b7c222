"""Shared fixtures of the zoo tests."""

import pytest

from svdcore.zoo import ilr_data


@pytest.fixture(scope="module")
def test_data():
    """2000 test samples (seed 7) in both variants, plus the noise-free decays."""
    xn, yn = ilr_data.make_data(n=2000, seed=7, split="test", variant="ndnd")
    xr, yr = ilr_data.make_data(n=2000, seed=7, split="test", variant="ndreg")
    t2 = yr.double().numpy() * ilr_data.TARGET_SCALE_MS
    clean = ilr_data.biexponential(t2[:, 0], t2[:, 1])
    return {"ndnd": (xn, yn), "ndreg": (xr, yr), "t2": t2, "clean": clean}
