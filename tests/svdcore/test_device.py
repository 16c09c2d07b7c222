"""svdcore.device: SVDSCOPE_DEVICE override and precision policy."""

import pytest
import torch

import svdcore as sc
from svdcore.device import resolve_dtype, to_device


def test_default_device_and_override(monkeypatch):
    monkeypatch.delenv("SVDSCOPE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert sc.default_device().type == expected
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cpu")
    assert sc.default_device() == torch.device("cpu")
    monkeypatch.setenv("SVDSCOPE_DEVICE", "tpu-of-dreams")
    with pytest.raises(sc.SvdscopeError, match="SVDSCOPE_DEVICE"):
        sc.default_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("SVDSCOPE_DEVICE", "cuda")
        with pytest.raises(sc.SvdscopeError, match="no GPU"):
            sc.default_device()


def test_precision_policy(monkeypatch):
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cpu")
    assert resolve_dtype(None) is torch.float32
    assert resolve_dtype("float64") is torch.float64
    with pytest.raises(sc.DataError, match="precision"):
        resolve_dtype("float16")
    assert to_device(torch.arange(3), precision="float64").dtype == torch.float64
