"""Subspaces view without a browser: the services give svdcore's numbers, cache keys follow
the options, layer inputs are read off (or refused with the reason), and the render helpers
draw what they are given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from app.config import AppConfig
from app.figures import decomposition_figure, panel_grid, signal_gallery
from app.services import Services, SubspacesOptions
from app.services.subspaces import NoLayerInputs
from app.views.subspaces import options_from
from app.views.subspaces.render import input_figures, stats_panel, table_rows, weight_figures


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("subspaces")
    torch.manual_seed(0)
    path = tmp / "toy.safetensors"
    low_rank = torch.randn(6, 2) @ torch.randn(2, 12)  # rank 2
    save_file({"fc1.weight": low_rank, "fc2.weight": torch.randn(3, 6)}, str(path))
    models = ["digits", "digits-5layer", "digits-cnn", "deernet", str(path)]
    return Services(AppConfig(models=models, upload_dir=tmp / "up"))


def _digits_test():
    return sc.zoo.dataset("digits", split="test")


# The services compute in float64 along their own path (cached SVD of the layer, inputs read
# off the dataset in batches) and the tests call svdcore directly: the same formulas, but
# BLAS may sum in another order, so values agree to a few ulps (seen: 1 ulp), not bitwise.
# 1e-12 is ~10^4 ulps of float64 (cond(W) ~ 14): far below any real change of a result.
F64 = {"rtol": 1e-12, "atol": 1e-12}  # atol: entries near 0 of unit-scale vectors
# float32 activations of the same network through a forward hook vs net.activations
F32 = {"rtol": 1e-6, "atol": 1e-6}


def _assert_rows_close(got: list[dict], want: list[dict]) -> None:
    """Tables of dicts: ints and strings equal, floats within F64."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=F64["rtol"], abs=F64["atol"]), key
            else:
                assert g[key] == value, key


def test_subspaces_data_equals_the_engine(services):
    data = services.subspaces.data("digits", "fc1", "default", None, None)
    W = sc.zoo.load("digits").matrix("fc1")
    fs = sc.subspaces(W)
    assert data.dims == fs.dims == {"row": 10, "col": 10, "null": 54, "left_null": 0}
    assert data.rank == fs.rank
    assert data.cond == pytest.approx(fs.cond, rel=F64["rtol"])
    assert data.rtol == pytest.approx(fs.rtol, rel=F64["rtol"])
    np.testing.assert_allclose(data.singular_values, fs.singular_values.numpy(), **F64)
    sv = sc.signal_vectors(W, k=10)
    np.testing.assert_allclose(data.signal_vectors, sv.vectors.numpy(), **F64)
    assert data.image_shape == (8, 8)
    # the toy's rank-2 layer: a 6 x 12 matrix with null 10 and left null 4
    toy = services.subspaces.data("toy", "fc1", "default", None, None)
    assert toy.dims == {"row": 2, "col": 2, "null": 10, "left_null": 4}
    assert toy.signal_vectors.shape == (2, 12) and toy.image_shape is None


def test_conv_kernels_view_gives_3x3_signal_kernels(services):
    data = services.subspaces.data("digits-cnn", "conv2", "kernels", None, None)
    net = sc.zoo.load("digits-cnn")
    assert data.shape == (64, 9) and data.image_shape == (3, 3)
    assert data.dims == sc.subspaces(net.matrix("conv2", view="kernels")).dims
    np.testing.assert_allclose(
        data.signal_vectors, sc.signal_vectors(net.tensor("conv2"), k=9).vectors.numpy()
    )
    assert services.subspaces.data("digits-cnn", "conv1", "unfolded", None, None).image_shape == (
        3,
        3,
    )


def test_cache_keys_follow_weights_view_and_tolerance(services):
    key = services.subspaces.key("digits-cnn", "conv2", "kernels", None, None)
    assert services.subspaces.key("digits-cnn", "conv2", "kernels", None, None) == key
    others = {
        services.subspaces.key("digits-cnn", "conv2", "unfolded", None, None),
        services.subspaces.key("digits-cnn", "conv3", "kernels", None, None),
        services.subspaces.key("digits-cnn", "conv2", "kernels", 1e-3, None),
    }
    assert len(others) == 3 and key not in others
    hits = services.cache.hits
    services.subspaces.data("digits-cnn", "conv2", "kernels", None, None)
    services.subspaces.data("digits-cnn", "conv2", "kernels", None, None)
    assert services.cache.hits >= hits + 1
    # a tolerance between two singular values drops the smaller one
    S = services.subspaces.data("digits", "fc1", "default", None, None).singular_values
    rtol = float((S[-1] + S[-2]) / 2 / S[0])
    cut = services.subspaces.data("digits", "fc1", "default", rtol, None)
    assert cut.rank == 9 and cut.dims["left_null"] == 1 and cut.signal_vectors.shape[0] == 9
    with pytest.raises(sc.DataError, match="rank tolerance"):
        services.subspaces.data("digits", "fc1", "default", 2.0, None)


def test_projections_equal_the_engine_for_a_class_average_and_a_sample(services):
    W = sc.zoo.load("digits").matrix("fc1")
    ds = _digits_test()
    data = services.subspaces.projections(
        "digits", "fc1", "default", SubspacesOptions(cls=8), "zoo", None
    )
    cp = sc.class_projections(W, ds.x, ds.y)
    _assert_rows_close(data.class_table, cp.as_table())
    assert len(data.class_table) == 10
    mean8 = cp.means[8]
    proj = sc.project(W, mean8)
    np.testing.assert_allclose(data.x, mean8.numpy(), **F64)
    np.testing.assert_allclose(data.residual, proj.residual.numpy(), **F64)
    assert data.energy_ratio == pytest.approx(float(proj.energy_ratio), rel=F64["rtol"])
    assert data.focus_label.startswith("average of class 8")
    neurons = sc.neuron_projections(W, mean8)
    np.testing.assert_allclose(data.neuron_residuals, neurons.residual.numpy(), **F64)
    np.testing.assert_array_equal(data.neurons, np.arange(10))
    assert data.mean_energy_ratio == pytest.approx(float(sc.project(W, ds.x).energy_ratio.mean()))
    np.testing.assert_allclose(data.class_residuals, cp.residual.numpy(), **F64)
    # Fig. 1, last row: class k's average against neuron k
    own8 = sc.neuron_projections(W, mean8, neurons=[8])
    np.testing.assert_allclose(data.own_residuals[8], own8.residual[0].numpy(), **F64)

    sample = services.subspaces.projections(
        "digits", "fc1", "default", SubspacesOptions(focus="sample", sample=7), "zoo", None
    )
    x7 = ds.x[7].double()
    np.testing.assert_allclose(sample.residual, sc.project(W, x7).residual.numpy(), **F64)
    assert sample.focus_label == f"sample 7 (class {int(ds.y[7])})"
    with pytest.raises(sc.DataError, match="no sample 9999"):
        services.subspaces.projections(
            "digits", "fc1", "default", SubspacesOptions(focus="sample", sample=9999), "zoo", None
        )


def test_deeper_layers_read_the_previous_module_and_keep_the_strongest_neurons(services):
    net = sc.zoo.load("digits-5layer")
    ds = _digits_test()
    H, _, how, _ = services.subspaces.layer_inputs("digits-5layer", "fc3", "default", "zoo", None)
    assert how == "the outputs of act2 on the dataset"
    expected = net.activations(ds.x, ["act2"])["act2"]
    np.testing.assert_allclose(H.numpy(), expected.numpy(), **F32)
    data = services.subspaces.projections(
        "digits-5layer", "fc3", "default", SubspacesOptions(focus="sample"), "zoo", None
    )
    W = net.matrix("fc3")
    assert data.neuron_total == 128 and len(data.neurons) == 16
    ratios = sc.neuron_projections(W, expected[0].double()).energy_ratio.numpy()
    # the 16 shown are those that remove the least of x (keep the most)
    assert set(data.neurons.tolist()) == set(np.argsort(ratios)[:16].tolist())
    np.testing.assert_allclose(data.neuron_ratios, ratios[data.neurons], rtol=1e-12)
    # digits-cnn's classifier reads the flattened outputs of act3 (after the skip connection)
    _, _, how, _ = services.subspaces.layer_inputs("digits-cnn", "fc1", "default", "zoo", None)
    assert how == "the outputs of act3 on the dataset"


def test_layers_without_inputs_say_why(services):
    with pytest.raises(NoLayerInputs, match="patches"):
        services.subspaces.projections(
            "digits-cnn", "conv2", "kernels", SubspacesOptions(), "zoo", None
        )
    with pytest.raises(NoLayerInputs, match="weights only"):
        services.subspaces.projections("toy", "fc2", "default", SubspacesOptions(), None, None)
    with pytest.raises(sc.DataError, match="No dataset is chosen"):
        services.subspaces.projections("toy", "fc1", "default", SubspacesOptions(), None, None)
    # regression targets: no classes, the sample focus and a sentence instead of the table
    data = services.subspaces.projections(
        "deernet", "fc1", "default", SubspacesOptions(), "zoo", None
    )
    assert data.class_table == [] and "regression targets" in data.classes_note
    assert data.focus_label == "sample 0" and data.x.shape == (256,)


def test_projection_keys_follow_the_options(services):
    a = services.subspaces.projections(
        "digits", "fc1", "default", SubspacesOptions(cls=1), "zoo", None
    )
    b = services.subspaces.projections(
        "digits", "fc1", "default", SubspacesOptions(cls=2), "zoo", None
    )
    again = services.subspaces.projections(
        "digits", "fc1", "default", SubspacesOptions(cls=1), "zoo", None
    )
    assert a.focus_label != b.focus_label and again.focus_label == a.focus_label
    np.testing.assert_array_equal(again.x, a.x)


def test_options_from_controls():
    assert options_from(None, None, None, None) == SubspacesOptions()
    assert options_from("0.01", "sample", "3", "12") == SubspacesOptions(
        rtol=0.01, focus="sample", cls=3, sample=12
    )
    assert options_from("x", "bogus", None, "-4") == SubspacesOptions()


def test_render_draws_the_services_arrays(services):
    data = services.subspaces.data("digits", "fc1", "default", None, None)
    proj = services.subspaces.projections(
        "digits", "fc1", "default", SubspacesOptions(), "zoo", None
    )
    spectrum, gallery = weight_figures(data, "fc1")
    assert len(gallery.data) == 10 and gallery.data[0].z.shape == (8, 8)
    assert len({(t.zmin, t.zmax) for t in gallery.data}) == 1  # one colour scale
    decomposition, neurons, classes = input_figures(data, proj, "fc1", 0)
    assert len(decomposition.data) == 3 and len(neurons.data) == 10 and len(classes.data) == 10
    assert neurons.layout.annotations[0].font.color is not None  # neuron 0 highlighted
    keys = [s.children[1].id for s in stats_panel(data, proj)]
    assert keys[:4] == [f"text-subspaces-{k}" for k in ("row", "col", "null", "left_null")]
    rows = table_rows(proj)
    assert len(rows) == 10 and rows[0]["energy_removed"].endswith(" %")
    assert spectrum.layout.yaxis.type == "log"


def test_figures_fall_back_to_curves_without_an_image_shape():
    rng = np.random.default_rng(0)
    fig = signal_gallery(rng.standard_normal((3, 20)), np.array([3.0, 2.0, 1.0]), title="s")
    assert [t.type for t in fig.data] == ["scatter"] * 3
    fig = panel_grid(rng.standard_normal((2, 9)), ["a", "b"], image_shape=(3, 3))
    assert fig.data[0].z.shape == (3, 3) and fig.data[0].zmid == 0
    x = rng.standard_normal(30)
    fig = decomposition_figure(x, x / 2, x / 2, 0.25, title="d", axis_values=np.arange(30) * 0.1)
    assert len(fig.data) == 3 and fig.data[0].x[1] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        panel_grid(np.zeros((2, 4)), ["only one"])
