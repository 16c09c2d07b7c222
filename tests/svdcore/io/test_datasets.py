"""svdcore.io.datasets: load_dataset dispatches on the suffix and names missing files."""

from __future__ import annotations

import pytest

from svdcore.exceptions import LoadError
from svdcore.io.datasets import load_dataset


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "data.txt").write_text("1 2 3")
    with pytest.raises(LoadError, match="unsupported dataset file"):
        load_dataset(tmp_path / "data.txt")
    with pytest.raises(LoadError, match="no such dataset file"):
        load_dataset(tmp_path / "missing.npz")
