"""Spectral surgery view without a browser: figure builders, thumbnails, the service (its
numbers are svdcore's; cache keys follow the options), rendering and the URL's sample."""

from __future__ import annotations

import base64
import io
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import svdcore as sc
from app.config import AppConfig
from app.figures.surgery import (
    bias_waterfall,
    contributions_heatmap,
    panel_grid,
    proportions_bar,
    pruned_output,
    spectrum_comparison,
)
from app.figures.surgery_dataset import depth_figure, similarity_heatmap
from app.figures.thumbnails import curve_thumbnail, image_thumbnail, png_bytes
from app.services import Services
from app.services.surgery_types import (
    DATA_SVD_SAMPLES,
    DATA_SVD_VECTORS,
    DepthOptions,
    SimilarityOptions,
    SurgeryOptions,
)
from app.views.router import encode_search, parse_search, resolve_state
from app.views.surgery import sample_of
from app.views.surgery.render import gallery_items, render, render_pruned
from svdcore.surgery import contract, depth_evolution, prune, sign_reduce, spectral_surgery

# --------------------------------------------------------------------------- figures


def test_contributions_heatmap_is_diverging_and_centred_at_zero():
    alpha = np.array([[1.0, -3.0, 0.5], [0.2, 2.0, -0.1]])
    fig = contributions_heatmap(alpha, output=1, title="α")
    heat = fig.data[0]
    assert heat.zmid == 0 and heat.zmin == -3.0 and heat.zmax == 3.0
    assert heat.colorscale[0][1] != heat.colorscale[-1][1]  # two ends: a diverging scale
    np.testing.assert_allclose(heat.z, alpha, rtol=1e-6)
    assert list(heat.x) == [1, 2, 3]  # components are numbered from 1
    (box,) = fig.layout.shapes  # the chosen output's row is outlined
    assert (box.y0, box.y1) == (0.5, 1.5) and (box.x0, box.x1) == (0.5, 3.5)


def test_proportions_bar_sums_to_one_with_an_others_bar():
    p = np.array([0.5, 0.2, 0.1, 0.1, 0.06, 0.04])
    fig = proportions_bar(p, np.array([3, 0, 5, 1, 2, 4]), [2, 1, 1, 1, 1, 1], max_bars=4)
    bar = fig.data[0]
    assert list(bar.x) == ["φ4 +1", "φ1", "φ6", "φ2", "others (2)"]
    assert sum(bar.y) == pytest.approx(1.0)
    full = proportions_bar(p, np.arange(6), [1] * 6)
    assert len(full.data[0].x) == 6 and sum(full.data[0].y) == pytest.approx(1.0)


def _png_pixels(uri: str) -> np.ndarray:
    """The pixels of a PNG data URI, decoded by Pillow (8-bit grey or RGB)."""
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode in ("L", "RGB")
        return np.asarray(image).squeeze()


def test_image_thumbnail_is_a_png_of_the_stretched_image():
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    pixels = _png_pixels(image_thumbnail(img))
    assert pixels.shape == (3, 4) and pixels[0, 0] == 0 and pixels[-1, -1] == 255
    inverted = _png_pixels(image_thumbnail(img, invert=True))
    np.testing.assert_array_equal(inverted, 255 - pixels)
    colour = _png_pixels(image_thumbnail(np.random.default_rng(0).random((3, 5, 6))))
    assert colour.shape == (5, 6, 3)
    flat = _png_pixels(image_thumbnail(np.ones((2, 2))))  # constant: no division by zero
    assert (flat == 0).all()
    with pytest.raises(ValueError):
        png_bytes(np.zeros((2, 2, 2), dtype=np.uint8))


def test_curve_thumbnail_is_an_svg_polyline():
    uri = curve_thumbnail(np.sin(np.linspace(0, 6, 1000)))
    assert uri.startswith("data:image/svg+xml")
    svg = unquote(uri.split(",", 1)[1])
    points = svg.split('points="')[1].split('"')[0].split()
    assert 2 <= len(points) <= 4 * 96 and svg.startswith("<svg")


def test_panel_grid_draws_images_and_curves():
    images = panel_grid([np.ones((4, 5)), -np.ones((4, 5))], ["a", "b"], columns=2)
    assert [t.type for t in images.data] == ["heatmap", "heatmap"]
    assert all(t.zmid == 0 for t in images.data)
    assert images.layout.yaxis.autorange == "reversed"
    curves = panel_grid([np.arange(5.0)], ["c"], columns=3, axis_values=np.arange(5) * 2.0)
    assert curves.data[0].type == "scatter" and list(curves.data[0].x) == [0, 2, 4, 6, 8]


def test_bias_waterfall_ends_at_the_total():
    fig = bias_waterfall([("Σ α", 3.0), ("bypass", -1.0), ("β fc1", 0.5)], 2.5)
    w = fig.data[0]
    assert w.type == "waterfall" and list(w.measure) == ["relative"] * 3 + ["total"]
    assert sum(w.y[:-1]) == pytest.approx(w.y[-1])


def test_spectrum_and_pruned_output_figures():
    fig = spectrum_comparison(np.array([3.0, 2.0, 1.0]), np.array([-0.5, 2.0, 0.1]))
    assert list(fig.data[1].y) == [0.5, 2.0, 0.1]  # |alpha| on the right axis
    bars = pruned_output(np.arange(3.0), np.zeros(3), kind="bars", names=["a", "b", "c"])
    assert [t.type for t in bars.data] == ["bar", "bar"] and list(bars.data[0].x) == ["a", "b", "c"]
    img = pruned_output(np.arange(16.0), np.zeros(16), kind="image", image_shape=(4, 4))
    assert [t.type for t in img.data] == ["heatmap", "heatmap"]
    curve = pruned_output(np.arange(100.0), np.zeros(100), kind="curve")
    assert [t.type for t in curve.data] == ["scatter", "scatter"]


def test_similarity_heatmap_is_fixed_to_minus_one_one_with_class_ticks():
    m = np.eye(5)
    fig = similarity_heatmap(m, labels=np.array([0, 0, 1, 1, 1]))
    heat = fig.data[0]
    assert (heat.zmin, heat.zmid, heat.zmax) == (-1.0, 0.0, 1.0)
    assert list(fig.layout.xaxis.tickvals) == [0, 2]
    assert list(fig.layout.yaxis.ticktext) == ["class 0", "class 1"]


def test_depth_figure_has_one_column_per_split():
    tops = [np.ones((3, 3)), np.ones((3, 3))]
    fig = depth_figure(["a", "b"], tops, tops, [np.array([2.0, 1.0]), np.array([4.0])])
    assert [t.type for t in fig.data] == ["heatmap", "heatmap", "bar"] * 2
    assert list(fig.data[2].y) == [1.0, 0.5]  # sigma_k / sigma_1


# --------------------------------------------------------------------------- service


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("surgery")
    path = tmp / "toy.safetensors"
    save_file({"fc1.weight": torch.randn(8, 12), "fc2.weight": torch.randn(3, 8)}, str(path))
    models = ["digits-cnn", "digits", "deernet", str(path)]
    return Services(AppConfig(models=models, upload_dir=tmp / "up"))


def _sample(name: str, i: int) -> torch.Tensor:
    return sc.zoo.dataset(name, split="test").x[i]


# Surgery runs in float64, in the service on its own copy of the sample and network; BLAS may
# round the last bits otherwise than the direct call. α and the bypass come through the SVD's
# vectors, which move by a few ulps / (gap between singular values): 1e-10 of the largest
# value still lies ~5 orders above that noise and far below a real change.
F64_SVD = 1e-10


def _assert_f64_close(got, want, rtol: float = F64_SVD) -> None:
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


def test_surgery_numbers_are_the_engines(services):
    data = services.surgery.run("digits-cnn", SurgeryOptions(5, "conv2"), None, "zoo")
    net = services.registry.network("digits-cnn", None)
    ref = spectral_surgery(net, _sample("digits-cnn", 5), split="conv2")
    _assert_f64_close(data.alpha, ref.alpha.numpy())
    _assert_f64_close(data.S, ref.S.numpy(), rtol=1e-12)  # singular values: well conditioned
    _assert_f64_close(data.bypass, ref.bypass.numpy())
    np.testing.assert_allclose(data.V, ref.V.numpy(), rtol=1e-6, atol=1e-7)
    assert set(data.layer_bias) == set(ref.layer_bias)
    np.testing.assert_allclose(data.alpha.sum(1) + data.bypass + data.bias, data.y, atol=1e-10)
    j = data.predicted
    assert j == int(ref.y.argmax()) and data.label is not None
    reduced = services.surgery.reduce(data, j)
    engine = sign_reduce(ref.alpha[j])
    # proportions |α_k| / Σ|α| of the α above: as close as α
    _assert_f64_close(reduced.proportions, engine.proportions)
    assert reduced.proportions.sum() == pytest.approx(1.0)
    for k in (0, 3, data.rank):
        mine, theirs = services.surgery.prune(data, j, k), prune(ref, k, output=j)
        np.testing.assert_allclose(mine.y_pruned, theirs.y_pruned, rtol=1e-12)
        assert mine.relative_change == pytest.approx(theirs.relative_change, abs=1e-15)
    assert services.surgery.prune(data, j, data.rank).relative_change < 1e-12
    top = services.surgery.top(data, j, 3, rank="reduced")
    assert list(top.k) == list(engine.lead[: len(top.k)])
    expected = contract(ref.V[:, top.k], ref.x, input_shape=ref.input_shape)
    np.testing.assert_allclose(top.contracted, expected, rtol=1e-5, atol=1e-6)
    by_alpha = services.surgery.top(data, j, 4)
    row = data.alpha[j] * np.sign(data.alpha[j].sum())
    assert list(by_alpha.k) == list(np.argsort(-row, kind="stable")[:4])


def test_surgery_is_cached_by_weights_data_and_options(services):
    key = services.surgery.key
    a = key("digits-cnn", SurgeryOptions(5, "conv2"), None, "zoo")
    assert a == key("digits-cnn", SurgeryOptions(5, "conv2"), None, None)  # default = zoo data
    assert a != key("digits-cnn", SurgeryOptions(6, "conv2"), None, "zoo")
    assert a != key("digits-cnn", SurgeryOptions(5, "conv1"), None, "zoo")
    assert a != key("digits", SurgeryOptions(5, "conv2"), None, "zoo")
    opts = SurgeryOptions(7, "conv3")
    assert services.surgery.run("digits-cnn", opts, None, compute=False) is None
    first = services.surgery.run("digits-cnn", opts, None)
    hits = services.shared_cache.hits
    again = services.surgery.run("digits-cnn", opts, None)
    assert services.shared_cache.hits == hits + 1
    np.testing.assert_array_equal(first.alpha, again.alpha)
    sim = services.surgery.similarity_key
    s = sim("digits-cnn", SimilarityOptions("conv2", 10, 1), None, "zoo")
    assert s != sim("digits-cnn", SimilarityOptions("conv2", 11, 1), None, "zoo")
    assert s != sim("digits-cnn", SimilarityOptions("conv2", 10, 2), None, "zoo")
    assert s != sim("digits-cnn", SimilarityOptions("conv1", 10, 1), None, "zoo")
    depth = services.surgery.depth_key
    d = depth("digits-cnn", DepthOptions(0, ("conv1", "fc1")), None, "zoo")
    assert d != depth("digits-cnn", DepthOptions(1, ("conv1", "fc1")), None, "zoo")
    assert len({a, s, d}) == 3


def test_similarity_and_depth_equal_the_engine_and_cancel_keeps_nothing(services):
    opts = SimilarityOptions("conv2", 20, 1)
    reports = []
    data = services.surgery.similarity(
        "digits-cnn", opts, None, progress=lambda done, total: reports.append((done, total))
    )
    assert reports[-1] == (20, 20) and len(reports) >= 2
    samples = services.surgery.samples("digits-cnn", None)
    assert list(data.labels) == sorted(samples.labels[:20])  # grouped by class
    net = services.registry.network("digits-cnn", None)
    ref = sc.singular_vector_similarity(net, torch.from_numpy(samples.x[data.order]), split="conv2")
    np.testing.assert_allclose(data.matrix, ref, atol=1e-6)
    assert services.surgery.similarity("digits-cnn", opts, None, compute=False) is not None
    stopped = SimilarityOptions("conv2", 40, 1)
    out = services.surgery.similarity("digits-cnn", stopped, None, should_stop=lambda: True)
    assert out is None
    assert services.surgery.similarity("digits-cnn", stopped, None, compute=False) is None

    splits = services.surgery.depth_splits("digits-cnn", None)
    assert splits == ("conv1", "conv2", "conv3", "fc1")
    depth = services.surgery.depth("digits-cnn", DepthOptions(2, splits), None)
    engine = depth_evolution(net, _sample("digits-cnn", 2), splits=splits)
    for mine, theirs in zip(depth.spectra, engine, strict=True):
        np.testing.assert_allclose(mine, theirs.S.numpy(), rtol=1e-12)
    np.testing.assert_allclose(depth.top[-1], engine[-1].V[:, 0].numpy(), rtol=1e-5, atol=1e-7)
    halted = DepthOptions(3, splits)
    assert services.surgery.depth("digits-cnn", halted, None, should_stop=lambda: True) is None
    assert services.surgery.depth("digits-cnn", halted, None, compute=False) is None


def test_data_svd_is_numpys_svd_of_the_data_matrix(services):
    svd = services.surgery.data_svd("digits-cnn", None, "zoo")
    samples = services.surgery.samples("digits-cnn", None)
    n = min(DATA_SVD_SAMPLES, len(samples))
    X = samples.x[:n].reshape(n, -1).astype(np.float64)  # uncentred, as in SpecXAI
    _, S, Vt = np.linalg.svd(X, full_matrices=False)
    assert (svd.samples, svd.total) == (n, len(samples))
    np.testing.assert_allclose(svd.S, S, rtol=1e-10, atol=1e-10 * S[0])
    top = Vt[:DATA_SVD_VECTORS]
    top = top * np.sign(top[np.arange(len(top)), np.abs(top).argmax(axis=1)])[:, None]
    np.testing.assert_allclose(svd.vectors, top, atol=1e-5)
    hits = services.cache.hits
    assert services.surgery.data_svd("digits-cnn", None, None) is not None  # zoo = default
    assert services.cache.hits == hits + 1
    small = services.surgery.data_svd("digits-cnn", None, "zoo", samples=10)
    np.testing.assert_allclose(small.S, np.linalg.svd(X[:10], compute_uv=False), rtol=1e-10)
    data = services.surgery.run("digits-cnn", SurgeryOptions(5, "conv2"), None)
    fig = render(services.surgery, data, data.predicted, 3, data_svd=svd).data_svd
    assert [t.type for t in fig.data] == ["scatter"] * 2 + ["heatmap"] * 6
    np.testing.assert_allclose(fig.data[0].y, S / S[0], rtol=1e-6, atol=1e-9)  # data, σ/σ1
    np.testing.assert_allclose(fig.data[1].y, data.S / data.S[0], rtol=1e-6)  # network
    np.testing.assert_allclose(fig.data[2].z, top[0].reshape(8, 8), atol=1e-5)
    np.testing.assert_allclose(fig.data[5].z, data.V[:, 0].reshape(8, 8), atol=1e-6)
    assert fig.layout.yaxis.type == "log"
    assert render(services.surgery, data, data.predicted, 3).data_svd.data == ()  # none given
    deer = services.surgery.run("deernet", SurgeryOptions(0, "fc1"), None)
    deer_svd = services.surgery.data_svd("deernet", None)
    curves = render(services.surgery, deer, 0, 2, data_svd=deer_svd).data_svd
    assert {t.type for t in curves.data} == {"scatter"} and len(curves.data) == 6


def test_layouts_splits_and_sentences(services):
    cnn = services.surgery.layout("digits-cnn", None)
    assert (cnn.kind, cnn.image_shape, cnn.channels) == ("image", (8, 8), 1)
    flat = services.surgery.layout("digits", None)  # (64,) inputs, the zoo's 8x8 image shape
    assert (flat.kind, flat.image_shape) == ("image", (8, 8))
    deer = services.surgery.layout("deernet", None)
    assert deer.kind == "curve" and len(deer.axis_values) == 256 and "µs" in deer.axis_label
    assert services.surgery.output_layout("digits-cnn", None, 10).kind == "bars"
    assert services.surgery.output_layout("deernet", None, 256).kind == "curve"
    choices = services.surgery.splits("digits-cnn", None)
    assert [c.name for c in choices] == [
        "conv1", "act1", "conv2", "act2", "conv3", "act3", "fc1",
    ]  # fmt: skip
    assert [c.has_weights for c in choices][:2] == [True, False]
    assert services.surgery.default_split("digits-cnn", "conv3", None) == "conv3"
    assert services.surgery.default_split("digits-cnn", None, None) == "conv1"
    assert services.surgery.rank("digits-cnn", SurgeryOptions(0, "fc1"), None, "zoo") == 10
    assert services.surgery.rank("digits-cnn", SurgeryOptions(0, "conv2"), None, "zoo") == 64
    with pytest.raises(sc.ExecutionError, match="weights only"):
        services.surgery.run("toy", SurgeryOptions(0, "fc1"), None)
    with pytest.raises(sc.DataError, match="There is no sample 400"):
        services.surgery.run("digits-cnn", SurgeryOptions(400, "conv2"), None)
    with pytest.raises(sc.LayerError, match="fc9"):
        services.surgery.run("digits-cnn", SurgeryOptions(0, "fc9"), None)
    with pytest.raises(sc.DataError, match="between 1 and"):
        services.surgery.similarity("digits-cnn", SimilarityOptions("conv2", 0, 1), None)


# --------------------------------------------------------------------------- rendering


def test_render_draws_every_part_for_image_and_curve_inputs(services):
    data = services.surgery.run("digits-cnn", SurgeryOptions(5, "conv2"), None)
    j = data.predicted
    out = render(services.surgery, data, j, 4)
    assert np.shape(out.alpha.data[0].z) == (10, 64)
    assert sum(out.proportions.data[0].y) == pytest.approx(1.0)
    assert len(out.vectors.data) == 8 and out.vectors.data[0].type == "heatmap"
    assert out.bias.data[0].type == "waterfall" and len(out.bias.data[0].x) == 8
    assert out.bias_images_style == {"display": "none"}  # 10 class scores: no images
    assert "e-1" in out.check  # reconstruction error ~ 1e-14
    fig, change, note = render_pruned(services.surgery, data, j, data.rank)
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert float(change) < 1e-12 and f"argmax: full {j}, top-k {j}" in note
    _, change0, _ = render_pruned(services.surgery, data, j, 0)
    assert float(change0) == pytest.approx(services.surgery.prune(data, j, 0).relative_change, 1e-2)
    deer = services.surgery.run("deernet", SurgeryOptions(0, "fc1"), None)
    out = render(services.surgery, deer, deer.predicted, 3, "reduced")
    assert {t.type for t in out.vectors.data} == {"scatter"}
    assert "smooth activations" in str(out.bias_notes)  # tanh / logistic: a remainder


def test_gallery_items_highlight_the_chosen_sample(services):
    samples = services.surgery.samples("digits-cnn", None)
    layout = services.surgery.layout("digits-cnn", None)
    items = gallery_items(samples, layout, 24, 48, 30)
    assert len(items) == 24
    assert items[6].id == {"type": "button-surgery-thumb", "index": 30}
    assert items[6].className == "thumb thumb-chosen" and items[0].className == "thumb"
    assert items[0].children[0].src.startswith("data:image/png;base64,")
    curves = gallery_items(
        services.surgery.samples("deernet", None), services.surgery.layout("deernet", None), 0, 2, 0
    )
    assert curves[0].children[0].src.startswith("data:image/svg+xml")


def test_the_url_keeps_the_sample(services):
    assert parse_search("?model=digits-cnn&tab=surgery&sample=12")["sample"] == "12"
    state, _, _ = resolve_state(
        services, None, {"model": "digits-cnn", "tab": "surgery", "sample": "12"}
    )
    assert state["sample"] == "12" and state["tab"] == "surgery" and sample_of(state) == 12
    assert "sample=12" in encode_search(state) and "tab=surgery" in encode_search(state)
    state0, _, _ = resolve_state(services, None, {"model": "digits-cnn", "sample": "0"})
    assert "sample=0" in encode_search(state0)
    bad, _, _ = resolve_state(services, None, {"model": "digits-cnn", "sample": "-3"})
    assert "sample" not in bad and sample_of(bad) == 0


@pytest.mark.skipif("squares-ae-bias" not in sc.zoo.names(), reason="needs the squares zoo net")
def test_an_autoencoder_shows_its_outputs_and_bias_terms_as_images(tmp_path):
    services = Services(AppConfig(models=["squares-ae-bias"], upload_dir=tmp_path / "up"))
    layout = services.surgery.layout("squares-ae-bias", None)
    assert (layout.kind, layout.image_shape) == ("image", (64, 64))
    data = services.surgery.run("squares-ae-bias", SurgeryOptions(3, "fc3"), None)
    assert data.alpha.shape == (4096, 8) and data.output_layout.kind == "image"
    out = render(services.surgery, data, data.predicted, 4)
    assert out.bias_images_style == {"display": "block"}
    assert np.shape(out.bias_images.data[0].z) == (64, 64)
    assert len(out.bias_images.data) == len(data.layer_bias) + 2  # + total bias, remainder
    assert np.shape(out.vectors.data[4].z) == (64, 64)  # contracted phi_k . x
    fig, change, _ = render_pruned(services.surgery, data, data.predicted, data.rank)
    assert [np.shape(t.z) for t in fig.data] == [(64, 64), (64, 64)] and float(change) < 1e-12
    assert services.surgery.rank("squares-ae-bias", SurgeryOptions(0, "fc6"), None, "zoo") == 4096
