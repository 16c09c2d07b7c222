"""The top-k spectral surgery through the service, the page's rendering, the export and the
CLI: the numbers are svdcore's ``spectral_surgery(rank=k)``, the rest-of-spectrum term is
shown and exported, and the parts add up to the output."""

from __future__ import annotations

import numpy as np
import pytest

import app.services.surgery_types as surgery_types
import svdcore as sc
from app.cli import main
from app.config import AppConfig
from app.export import ExportOptions, export_analysis
from app.services import Services
from app.services.surgery_types import (
    DEFAULT_TOP_K,
    MAX_TOP_K,
    SYNC_MAX_RANK,
    SurgeryOptions,
    computed_in_request,
    resolve_precision,
    resolve_rank,
)
from app.views.surgery.render import render, render_pruned
from app.views.surgery.state import rank_of
from svdcore.surgery import prune, spectral_surgery

K = 16  # of the 64 components of digits-cnn at conv2 (64 output channels x ... > 64 inputs)

# The service runs the same seeded Krylov method on its own float64 copy of the network and
# sample; BLAS may round the last bits otherwise than the direct call, and the Ritz vectors
# move by ulps / (gap between singular values): 1e-9 of the largest value is far above that
# noise and far below any real change.
RTOL = 1e-9


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("surgery-topk")
    return Services(AppConfig(models=["digits-cnn", "digits"], upload_dir=tmp / "up"))


@pytest.fixture(scope="module")
def top(services):
    return services.surgery.run("digits-cnn", SurgeryOptions(5, "conv2", K), None)


def _close(got, want, rtol: float = RTOL) -> None:
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


def test_the_components_the_controls_ask_for():
    big = SYNC_MAX_RANK + 1
    assert resolve_rank("auto", None, 64) is None  # small: every component, exactly
    assert resolve_rank("auto", None, big) == DEFAULT_TOP_K  # large: the top 64
    assert resolve_rank("auto", 10, big) == 10
    assert resolve_rank("exact", 10, big) is None
    assert resolve_rank("top", 10, 64) == 10
    assert resolve_rank("top", 64, 64) is None  # k >= r: that is the exact surgery
    assert resolve_rank("top", 10**6, 10**7) == MAX_TOP_K
    assert resolve_rank("top", 0, big) == DEFAULT_TOP_K  # no k: the default
    assert computed_in_request(SYNC_MAX_RANK) and not computed_in_request(big)
    assert rank_of("nonsense", "12", big) == 12 and rank_of("top", "", 100) == DEFAULT_TOP_K
    for bad in (0, MAX_TOP_K + 1):
        with pytest.raises(sc.DataError, match="top components must be between 1 and"):
            SurgeryOptions(0, "conv2", bad).validate()


def test_top_k_is_the_engines_and_adds_up_to_the_output(services, top):
    net = services.registry.network("digits-cnn", None)
    x = sc.zoo.dataset("digits-cnn", split="test").x[5]
    ref = spectral_surgery(net, x, split="conv2", rank=K)
    assert top.rank == K and top.total_components == 64 and not top.exact
    _close(top.S, ref.S.numpy())
    _close(top.alpha, ref.alpha.numpy())
    _close(top.rest, ref.rest.numpy())
    _close(top.residuals, ref.residuals.numpy(), rtol=1e-6)  # residuals: differences of ~s
    # sum of the top-k contributions + the rest of the spectrum + bypass + bias = y
    scale = float(np.abs(top.y).max())
    np.testing.assert_allclose(top.reconstruction, top.y, rtol=0, atol=1e-10 * scale)
    assert float(np.abs(top.rest).max()) > 1e-6 * scale  # the rest is not a zero term here
    # the exact surgery's first K values are these (well-separated values: 1e-6 relative)
    exact = services.surgery.run("digits-cnn", SurgeryOptions(5, "conv2"), None)
    assert exact.exact and exact.rank == 64
    np.testing.assert_allclose(top.S[:4], exact.S[:4], rtol=1e-6)
    # prune keeps k of the computed components and drops the rest with the others
    j = top.predicted
    mine, theirs = services.surgery.prune(top, j, K), prune(ref, K, output=j)
    _close(mine.y_pruned, theirs.y_pruned)
    _close(mine.y_pruned, top.alpha.sum(1) + top.bypass + top.bias)


def test_top_k_has_its_own_cache_key_and_reports_progress(services):
    key = services.surgery.key
    exact, topk = SurgeryOptions(3, "conv2"), SurgeryOptions(3, "conv2", 8)
    assert key("digits-cnn", exact, None, None) != key("digits-cnn", topk, None, None)
    seen: list[tuple[int, int]] = []
    services.surgery.run("digits-cnn", topk, None, progress=lambda d, t: seen.append((d, t)))
    total = sc.randomized.DEFAULT_POWER_ITERATIONS + 2  # block steps (each one counted in
    assert seen[-1] == (total, total)  # svdcore's tests; this R is small: its dense SVD)
    assert all(t == total and 1 <= d <= total for d, t in seen)
    # a cancelled run raises the engine's sentence and keeps nothing
    stopped = SurgeryOptions(4, "conv2", 8)
    with pytest.raises(sc.ExecutionError, match="cancelled"):
        services.surgery.run("digits-cnn", stopped, None, should_stop=lambda: True)
    assert services.surgery.run("digits-cnn", stopped, None, compute=False) is None


def test_the_page_shows_the_rest_of_the_spectrum(services, top):
    j = top.predicted
    out = render(services.surgery, top, j, 4)
    summary = " ".join(str(s.children) for s in out.summary)
    assert f"top {K} of r = 64 components" in summary and "largest residual" in summary
    assert "rest" in out.check and "e-1" in out.check  # max |Σα + rest + bypass + b − y|
    waterfall = out.bias.data[0]
    assert "rest of spectrum" in list(waterfall.x)
    at = list(waterfall.x).index("rest of spectrum")
    assert float(waterfall.y[at]) == pytest.approx(float(top.rest[j]), rel=1e-6, abs=1e-12)
    bars = out.spectrum.data[0]
    assert bars.error_y.array is not None and len(bars.error_y.array) == K
    assert "Rest of the spectrum" in str(out.bias_notes)
    fig, change, note = render_pruned(services.surgery, top, j, K)
    assert f"top {K} of the {K} computed" in fig.layout.title.text
    assert "of r = 64 in all" in fig.layout.title.text
    assert "rest of the spectrum is dropped" in note
    want = np.linalg.norm(top.rest) / np.linalg.norm(top.y)  # keeping all K drops the rest
    assert float(change) == pytest.approx(want, rel=1e-2)  # (printed to 3 digits)


def test_export_and_cli_write_the_rest_term(services, tmp_path, monkeypatch):
    options = ExportOptions(sample=5, split="conv2", components="top", top_k=K)
    sur = export_analysis(services, "digits-cnn", "conv2", "surgery", options=options)
    assert sur.numbers["exact"] is False and sur.numbers["total_components"] == 64
    assert sur.arrays["alpha"].shape == (10, K) and sur.arrays["rest"].shape == (10,)
    data = services.surgery.run("digits-cnn", SurgeryOptions(5, "conv2", K), None)
    _close(sur.arrays["rest"], data.rest)
    assert "Bias terms" in sur.figures
    # the page's export of a split computed in the background: only once it is computed
    monkeypatch.setattr(surgery_types, "SYNC_MAX_RANK", 32)
    page = ExportOptions(sample=6, split="conv2", components="top", top_k=8, full_spectrum=False)
    with pytest.raises(sc.DataError, match="press Compute on the Surgery tab first"):
        export_analysis(services, "digits-cnn", "conv2", "surgery", options=page)
    monkeypatch.undo()
    out = tmp_path / "topk.npz"
    argv = ["export", "digits-cnn", "--layer", "conv2", "--analysis", "surgery"]
    argv += ["--split", "conv2", "--components", "top", "--top-k", "8", "--sample", "2"]
    assert main([*argv, "--out", str(out), "--no-disk-cache", "--quiet"]) == 0
    with np.load(out) as z:
        assert z["alpha"].shape == (10, 8)
        total = z["alpha"].sum(1) + z["rest"] + z["bypass"] + z["bias"]
        np.testing.assert_allclose(total, z["y"], rtol=0, atol=1e-10 * np.abs(z["y"]).max())


def test_dataset_analyses_take_the_top_k_at_a_large_split(services, monkeypatch):
    """Above SYNC_MAX_RANK components, depth evolution computes the top components of each
    split (the engine's rank=), not dense Jacobians."""
    calls: list[object] = []
    engine = sc.depth_evolution

    def spy(*args, **kwargs):
        calls.append(kwargs.get("rank"))
        return engine(*args, **kwargs)

    monkeypatch.setattr(sc, "depth_evolution", spy)
    monkeypatch.setattr(surgery_types, "SYNC_MAX_RANK", 32)
    monkeypatch.setattr(surgery_types, "DEFAULT_TOP_K", 12)
    options = surgery_types.DepthOptions(sample=1, splits=("conv1", "fc1"))
    data = services.surgery.depth("digits-cnn", options, None)
    assert calls == [12, None]  # conv1: r = 64 > 32, the top 12; fc1: r = 10, exact
    assert [len(s) for s in data.spectra] == [12, 10] and data.top[0].shape == (64,)


def test_float32_products_for_a_top_k_surgery_on_the_page_export_and_cli(services, top, tmp_path):
    opts = SurgeryOptions(5, "conv2", K, "float32")
    data = services.surgery.run("digits-cnn", opts, None)
    assert services.surgery.key("digits-cnn", opts, None, None) != services.surgery.key(
        "digits-cnn", SurgeryOptions(5, "conv2", K), None, None
    )  # its own cache entry
    # float32 products move the leading values by about float32's epsilon; the parts still
    # add up to the output (the rest term is computed from the same products)
    _close(data.S[:4], top.S[:4], rtol=1e-5)
    total = data.alpha.sum(1) + data.rest + data.bypass + data.bias
    np.testing.assert_allclose(total, data.y, rtol=0, atol=1e-9 * np.abs(data.y).max())
    out = render(services.surgery, data, data.predicted, 4)
    summary = " ".join(str(s.children) for s in out.summary)
    assert "randomized SVD; float32 products" in summary
    # ReLU: the remainder is round-off at float32's scale, and the page says so
    assert "zero up to round-off" in str(out.bias_notes)
    with pytest.raises(sc.DataError, match="top-k surgery"):
        SurgeryOptions(5, "conv2", None, "float32").validate()
    # the controls' choice becomes float32 for a top-k surgery only
    assert resolve_precision(K, "float32") == "float32"
    assert resolve_precision(None, "float32") == "float64"
    assert resolve_precision(K, "float16") == resolve_precision(K, None) == "float64"
    with pytest.raises(sc.DataError, match="Unknown precision"):
        SurgeryOptions(5, "conv2", K, "float16").validate()
    # the export and the CLI take the same choice (ignored for an exact surgery)
    options = ExportOptions(sample=5, split="conv2", components="top", top_k=K, precision="float32")
    sur = export_analysis(services, "digits-cnn", "conv2", "surgery", options=options)
    _close(sur.arrays["alpha"], data.alpha)
    exact = ExportOptions(sample=5, split="conv2", components="exact", precision="float32")
    assert export_analysis(services, "digits-cnn", "conv2", "surgery", options=exact).numbers[
        "exact"
    ]
    npz = tmp_path / "f32.npz"
    argv = ["export", "digits-cnn", "--layer", "conv2", "--analysis", "surgery", "--split"]
    argv += ["conv2", "--components", "top", "--top-k", "8", "--precision", "float32"]
    assert main([*argv, "--out", str(npz), "--no-disk-cache", "--quiet"]) == 0
    with np.load(npz) as z:
        assert z["alpha"].shape == (10, 8)
