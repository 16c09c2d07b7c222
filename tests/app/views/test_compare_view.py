"""Compare view without a browser: the second-model choice (siblings first, the requested
one when it fits, a message when nothing fits), the cached service equals svdcore's
compare_layers on the same matrices, the URL keeps the choice, and the figures carry the
numbers they show."""

from __future__ import annotations

import numpy as np
import pytest

import svdcore as sc
from app import ids
from app.config import AppConfig
from app.figures.compare import overlap_figure, spectra_overlay
from app.services import Services
from app.views import compare
from app.views.router import encode_search, parse_search
from svdcore.compare import compare_layers

MODELS = [
    "digits",
    "ilr-biexp-ndnd",
    "squares-ae",
    "squares-ae-bias",
    "ilr-biexp-ndreg",
    "digits-cnn",
]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    return Services(AppConfig(models=MODELS, upload_dir=tmp / "up"))


def test_default_second_model_is_the_sibling_with_the_same_layer(services):
    c = services.compare.choices("ilr-biexp-ndnd", "fc1", None)
    assert (c.model, c.layer, c.message) == ("ilr-biexp-ndreg", "fc1", None)
    assert [m for m, _ in c.models] == MODELS
    assert dict(c.models)["ilr-biexp-ndnd"].endswith("(this model)")
    c = services.compare.choices("squares-ae", "fc3", None)
    assert (c.model, c.layer) == ("squares-ae-bias", "fc3")
    assert c.layers == ["fc3"]  # only layers with the tensor shape of squares-ae fc3 (8x32)


def test_requested_model_and_layer_are_kept_when_they_fit(services):
    c = services.compare.choices("ilr-biexp-ndnd", "fc3", None, other="ilr-biexp-ndnd")
    assert c.model == "ilr-biexp-ndnd" and c.layer == "fc3"
    # conv2 and conv3 of digits-cnn are both 8x8x3x3: either may be chosen
    c = services.compare.choices("digits-cnn", "conv2", None, other="digits-cnn")
    assert c.layers == ["conv2", "conv3"] and c.layer == "conv2"
    c = services.compare.choices(
        "digits-cnn", "conv2", None, other="digits-cnn", other_layer="conv3"
    )
    assert c.layer == "conv3"
    c = services.compare.choices(
        "ilr-biexp-ndnd", "fc3", None, other="ilr-biexp-ndreg", other_layer="fc1"
    )
    assert c.layer == "fc3"  # fc1 has another shape: the same name instead


def test_no_compatible_layer_is_explained(services):
    c = services.compare.choices("digits", "fc1", None)
    assert c.model is None and c.layer is None
    assert "No other model here has a layer with the shape of fc1" in c.message
    c = services.compare.choices("digits", "fc1", None, other="squares-ae")
    assert c.model == "squares-ae" and c.layers == [] and c.layer is None
    assert "'squares-ae' has no layer with the shape of fc1" in c.message


def test_service_equals_compare_layers_and_is_cached(services, monkeypatch):
    data = services.compare.run(
        "ilr-biexp-ndnd", "fc1", "default", "ilr-biexp-ndreg", "fc1", 6, None
    )
    Wa = sc.zoo.load("ilr-biexp-ndnd").matrix("fc1")
    Wb = sc.zoo.load("ilr-biexp-ndreg").matrix("fc1")
    ref = compare_layers(Wa, Wb, k=6)
    c = data.comparison
    assert c.k == 6 and not data.truncated
    np.testing.assert_allclose(c.diff, (Wb - Wa).numpy())
    assert c.diff_fro == pytest.approx(ref.diff_fro, rel=1e-12)
    np.testing.assert_allclose(c.left_angles, ref.left_angles, atol=1e-12)
    np.testing.assert_allclose(c.right_overlap, ref.right_overlap, atol=1e-12)
    assert data.info.col_axis is not None and data.info.col_axis.unit == "ms"
    monkeypatch.setattr(
        "app.services.compare.compare_layers", lambda *a, **k: pytest.fail("not cached")
    )
    again = services.compare.run(
        "ilr-biexp-ndnd", "fc1", "default", "ilr-biexp-ndreg", "fc1", 6, None
    )
    assert again.comparison is c or again.comparison.diff_fro == c.diff_fro


def test_a_layer_against_itself(services):
    c = services.compare.run(
        "squares-ae", "fc2", "default", "squares-ae", "fc2", 8, None
    ).comparison
    assert c.diff_fro == 0.0 and c.rel_diff == 0.0
    np.testing.assert_allclose(c.left_angles, 0.0, atol=1e-6)
    np.testing.assert_allclose(np.diag(c.right_overlap), 1.0, atol=1e-9)


def test_different_shapes_are_refused_with_both_shapes(services):
    with pytest.raises(sc.DataError, match=r"W_a is \(48, 4096\), W_b is \(32, 48\)"):
        services.compare.run("squares-ae", "fc1", "default", "squares-ae", "fc2", 4, None)


def test_resolve_compare_only_on_the_compare_tab(services):
    state = {"model": "ilr-biexp-ndnd", "layer": "fc1", "tab": ids.TAB_WEIGHTS}
    requested = {"compare": "whatever", "compare_layer": "x"}
    assert compare.resolve_compare(services, None, state, requested) is None
    assert state["compare"] == "whatever"  # kept unchecked, so a link keeps it
    assert compare.picker_outputs(None) == (compare.no_update,) * 4
    state = {"model": "ilr-biexp-ndnd", "layer": "fc1", "tab": ids.TAB_COMPARE}
    choices = compare.resolve_compare(services, None, state, requested)
    assert state["compare"] == "ilr-biexp-ndreg" and state["compare_layer"] == "fc1"
    model_opts, model, layer_opts, layer = compare.picker_outputs(choices)
    assert model == "ilr-biexp-ndreg" and layer == "fc1"
    assert {"label": "fc1", "value": "fc1"} in layer_opts and len(model_opts) == len(MODELS)


def test_url_keeps_the_comparison():
    state = {
        "model": "ilr-biexp-ndnd",
        "layer": "fc1",
        "tab": "compare",
        "view": "default",
        "compare": "ilr-biexp-ndreg",
        "compare_layer": "fc1",
    }
    search = encode_search(state, default_view="default")
    assert "compare=ilr-biexp-ndreg" in search and "compare_layer=fc1" in search
    assert parse_search(search)["compare_layer"] == "fc1"


def test_stats_panel_numbers():
    A = np.diag([3.0, 2.0, 1.0])
    c = compare_layers(A, 2 * A, k=2)
    boxes = compare.stats_panel(c)
    values = {box.children[1].id: box.children[1].children for box in boxes}
    assert values[ids.stat_id("compare", "rel")] == "1"  # ||2A - A|| / ||A||
    assert values[ids.stat_id("compare", "sigma1")] == "3 / 6"
    assert values[ids.stat_id("compare", "left-angle")] == "0°"


def test_spectra_overlay_draws_both_and_the_ratio():
    a, b = np.array([4.0, 2.0, 1.0, 0.0]), np.array([8.0, 2.0, 0.5, 0.1])
    fig = spectra_overlay(a, b, name_a="A: x", name_b="B: y")
    names = [t.name for t in fig.data]
    assert names == ["A: x", "B: y", "ratio"]
    assert np.isnan(fig.data[0].y[3])  # a zero has no place on a log axis
    np.testing.assert_allclose(fig.data[2].y[:3], [2.0, 1.0, 0.5])
    assert np.isnan(fig.data[2].y[3])


def test_overlap_figure_panels():
    L = np.eye(3)
    R = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    angles = np.array([0.0, np.pi / 4, np.pi / 2])
    fig = overlap_figure(L, R, angles, angles[::-1])
    heat = [t for t in fig.data if t.type == "heatmap"]
    lines = [t for t in fig.data if t.type == "scatter"]
    assert len(heat) == 2 and len(lines) == 2
    assert heat[0].zmin == 0 and heat[0].zmax == 1
    np.testing.assert_allclose(heat[1].z, R)
    np.testing.assert_allclose(lines[0].y, [0.0, 45.0, 90.0], atol=1e-5)
