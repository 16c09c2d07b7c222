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


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


@needs_cuda
def test_analyses_run_on_the_gpu_and_mean_the_same(monkeypatch):
    """With a GPU, svd / spectrum_summary / top_spectrum / the exact descrambler run there
    (float32) and agree with the CPU; factors of CPU input come back on the CPU."""
    import numpy as np

    from svdcore.descramble import descramble

    gen = torch.Generator().manual_seed(0)
    W = torch.randn(300, 200, generator=gen) * torch.linspace(3, 0.1, 200)
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cpu")
    cpu_svd = sc.svd(W)
    cpu_summary = sc.spectrum_summary(W)
    cpu_top = sc.top_spectrum(W, 8)
    Y = torch.randn(40, 500, generator=gen, dtype=torch.float64)
    cpu_p = descramble(Y, method="exact").P
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cuda")
    gpu_svd = sc.svd(W)
    assert gpu_svd.U.device.type == "cpu"  # back on the input's device
    np.testing.assert_allclose(gpu_svd.S.numpy(), cpu_svd.S.numpy(), rtol=1e-4)
    align = (gpu_svd.U[:, :5] * cpu_svd.U[:, :5]).sum(0)
    np.testing.assert_allclose(align.numpy(), 1.0, atol=1e-3)  # same deterministic signs
    np.testing.assert_allclose(
        sc.spectrum_summary(W).singular_values, cpu_summary.singular_values, rtol=1e-4
    )
    np.testing.assert_allclose(
        sc.top_spectrum(W, 8).singular_values, cpu_top.singular_values, rtol=1e-3
    )
    np.testing.assert_allclose(
        descramble(Y, method="exact").P.cpu().numpy(), cpu_p.numpy(), atol=1e-8
    )
    on_gpu = sc.svd(W.cuda())
    assert on_gpu.S.device.type == "cuda"


def test_factors_stay_on_the_inputs_device(monkeypatch):
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cpu")
    res = sc.svd(torch.randn(6, 4))
    assert res.U.device.type == res.S.device.type == "cpu"


def test_memory_check_names_both_sizes(monkeypatch):
    from svdcore import device

    assert device.available_memory() > 0
    device.check_memory(1, what="one byte")  # fits
    monkeypatch.setattr(device, "available_memory", lambda device=None: 2**20)
    message = (
        r"^the thing needs about 1\.0 GiB of memory and this machine has 1\.0 MiB "
        r"available\. Try less\.$"
    )
    with pytest.raises(sc.ExecutionError, match=message):
        device.check_memory(2**30, what="the thing", hint="Try less.")
    assert device.format_bytes(512) == "512 bytes" and device.format_bytes(3 * 2**20) == "3.0 MiB"


def _small_cnn() -> tuple[sc.Network, torch.Tensor]:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.BatchNorm2d(6),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 6, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 12 * 12, 5),
    ).eval()
    x = torch.randn(3, 12, 12, generator=torch.Generator().manual_seed(1))
    return sc.Network.from_module(module, input_shape=(3, 12, 12)), x


def test_operators_take_a_device_and_the_surgery_comes_back_on_the_cpu():
    from svdcore.jacobian import split_operators

    net, x = _small_cnn()
    ops = split_operators(net, x, "3", device="cpu")
    assert ops.R.device.type == ops.x.device.type == "cpu"
    res = sc.spectral_surgery(net, x, split="3", rank=5, device="cpu")
    assert all(t.device.type == "cpu" for t in (res.S, res.V, res.alpha, res.rest))


@needs_cuda
def test_jacobian_operators_top_k_surgery_and_fft_on_the_gpu_mean_the_same(monkeypatch):
    """The operators, the randomized SVD and the FFT view run on the GPU (float64) and
    agree with the CPU to round-off; the surgery's result comes back on the CPU."""
    import numpy as np

    from svdcore.jacobian import split_operators

    net, x = _small_cnn()
    V = torch.randn(432, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    cpu_ops, gpu_ops = (split_operators(net, x, "3", device=d) for d in ("cpu", "cuda"))
    assert gpu_ops.R.device.type == "cuda"
    np.testing.assert_allclose(
        gpu_ops.R.matmat(V).cpu().numpy(), cpu_ops.R.matmat(V).numpy(), rtol=1e-10, atol=1e-12
    )
    cpu = sc.spectral_surgery(net, x, split="3", rank=8, device="cpu")
    gpu = sc.spectral_surgery(net, x, split="3", rank=8, device="cuda")
    assert gpu.alpha.device.type == "cpu"
    np.testing.assert_allclose(gpu.S.numpy(), cpu.S.numpy(), rtol=1e-8)
    scale = float(cpu.y.abs().max())
    for name in ("alpha", "rest", "bypass", "bias"):
        np.testing.assert_allclose(
            getattr(gpu, name).numpy(), getattr(cpu, name).numpy(), atol=1e-7 * scale
        )
    np.testing.assert_allclose(gpu.reconstruction.numpy(), gpu.y.numpy(), atol=1e-10 * scale)
    assert sc.device.available_memory("cuda") > 0
    M = torch.randn(64, 48, generator=torch.Generator().manual_seed(3))
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cpu")
    on_cpu = sc.fft2_view(M, symmetrize=True)
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cuda")
    on_gpu = sc.fft2_view(M, symmetrize=True)
    np.testing.assert_allclose(on_gpu.magnitude, on_cpu.magnitude, rtol=1e-10, atol=1e-10)
