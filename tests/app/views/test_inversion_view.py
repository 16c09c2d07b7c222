"""Inversion view without a browser: the services give svdcore's inputs, cache keys follow
the options, a cancelled optimisation is not kept, and the refusals carry svdcore's
sentences; the render helpers draw the arrays."""

from __future__ import annotations

import numpy as np
import pytest

import svdcore as sc
from app.config import AppConfig
from app.figures import distance_history, generated_input, output_bars
from app.services import InversionOptions, Services
from app.views.inversion import options_from
from app.views.inversion.render import render
from svdcore.inversion import training_outputs


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inversion")
    return Services(AppConfig(models=["digits", "digits-cnn", "deernet"], upload_dir=tmp / "up"))


def _train(name: str = "digits"):
    return sc.zoo.dataset(name, split="train")


# The services run the network themselves (their own loaded copy, their own dataset tensor)
# through the engine, as these tests do (training_outputs: float64, in chunks); a chunking
# or BLAS blocking of their own could round otherwise in the last bits, so the ideal outputs
# are compared to a bound, not bitwise (kept at float32 size, far above float64 rounding).
F32_RTOL = 1e-6
# the pseudo-inverse input x = W⁺ f⁻¹(target) amplifies that by up to cond(W) ≈ 14 and by
# SELU's inverse, steep near its lower bound -1.758 where the ideal output's minima lie
PINV_RTOL = 1e-5


def _assert_f32_close(got, want, rtol: float = F32_RTOL) -> None:
    """Within rtol of each value, and of the largest one for values near 0 (a float32 sum
    of terms of the largest size rounds at that size)."""
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


def test_pseudo_inverse_equals_the_engine_and_reaches_the_ideal_output(services):
    data = services.inversion.run("digits", InversionOptions(target=3), "zoo", None)
    net = sc.zoo.load("digits")
    ds = _train()
    target = sc.ideal_output(training_outputs(net, ds.x), ds.y, 3)
    expected = sc.pseudo_inverse_input(net, target)
    _assert_f32_close(data.target, target.numpy())
    _assert_f32_close(data.x, expected.x.numpy().reshape(-1), rtol=PINV_RTOL)
    # both distances are rounding residuals (~1e-15): equal up to that rounding, and tiny
    tiny = 1e-12 * float(target.abs().max())
    assert data.distance == pytest.approx(expected.distance, abs=tiny)
    assert data.start_distance == pytest.approx(expected.start_distance, abs=tiny)
    assert data.distance < 1e-8 * float(target.abs().max())
    assert data.predicted == 3 and data.image_shape == (8, 8) and data.n_train == len(ds)
    assert data.class_names == [str(i) for i in range(10)]


def test_optimisation_equals_the_engine_with_progress(services):
    seen: list[tuple[int, int]] = []
    opts = InversionOptions(target=5, method="optimise", start="avg-min-img", steps=25, lr=0.01)
    data = services.inversion.run(
        "digits", opts, "zoo", None, progress=lambda s, t, _d: seen.append((s, t))
    )
    assert seen[0] == (1, 25) and seen[-1] == (25, 25)
    net = sc.zoo.load("digits")
    ds = _train()
    target = sc.ideal_output(training_outputs(net, ds.x), ds.y, 5)
    expected = sc.optimise_input(
        net,
        target,
        start="avg-min-img",
        x_train=ds.x,
        y_train=ds.y,
        cls=5,
        steps=25,
        lr=0.01,
        bounds=(float(ds.x.min()), float(ds.x.max())),
    )
    np.testing.assert_allclose(data.x, expected.x.numpy().reshape(-1), rtol=1e-6, atol=1e-9)
    assert data.distance == pytest.approx(expected.distance, rel=1e-6)
    assert data.distance <= data.start_distance and data.history.size == 26
    assert data.bounds == (0.0, 1.0) and data.x.min() >= 0.0 and data.x.max() <= 1.0
    assert services.inversion.run("digits", opts, "zoo", None, compute=False) is not None


def test_keys_follow_the_options_that_change_the_result(services):
    def key(**kw):
        return services.inversion.key("digits", InversionOptions(**kw), "zoo", None)

    base = key()
    # the pseudo-inverse ignores the optimisation settings
    assert key(start="min-img", steps=9, lr=0.5, clamp=False) == base
    others = [
        key(target=1),
        key(method="optimise"),
        key(method="optimise", start="min-img"),
        key(method="optimise", steps=10),
        key(method="optimise", lr=0.1),
        key(method="optimise", clamp=False),
    ]
    assert len(set(others)) == len(others) and base not in others


def test_cancelled_optimisation_is_returned_but_not_cached(services):
    opts = InversionOptions(target=2, method="optimise", steps=500, lr=1e-3)
    services.jobs.request_cancel("session-a", "inv1")
    data = services.inversion.run(
        "digits",
        opts,
        "zoo",
        None,
        should_stop=lambda: services.jobs.cancel_requested("session-a", "inv1"),
    )
    assert data.stopped and data.steps == 0
    assert services.inversion.run("digits", opts, "zoo", None, compute=False) is None


def test_refusals_carry_svdcore_sentences(services):
    with pytest.raises(sc.NotInvertibleError, match="optimis"):
        services.inversion.run("digits-cnn", InversionOptions(), "zoo", None)
    with pytest.raises(sc.DataError, match="regression targets"):
        services.inversion.run("deernet", InversionOptions(), "zoo", None)
    with pytest.raises(sc.DataError, match="no class 12"):
        services.inversion.run("digits", InversionOptions(target=12), "zoo", None)
    with pytest.raises(sc.DataError, match="steps"):
        services.inversion.run("digits", InversionOptions(method="optimise", steps=0), "zoo", None)
    with pytest.raises(sc.DataError, match="Unknown start"):
        services.inversion.run(
            "digits", InversionOptions(method="optimise", start="x"), "zoo", None
        )
    # the CNN can be optimised from a training start
    data = services.inversion.run(
        "digits-cnn", InversionOptions(method="optimise", steps=3), "zoo", None
    )
    assert data.image_shape == (8, 8) and data.x.shape == (64,)


def test_options_from_controls():
    assert options_from(None, None, None, None, None, ["clamp"]) == InversionOptions()
    assert options_from("4", "optimise", "min-img", "30", "0.1", []) == InversionOptions(
        target=4, method="optimise", start="min-img", steps=30, lr=0.1, clamp=False
    )


def test_render_and_figures(services):
    data = services.inversion.run("digits", InversionOptions(target=3), "zoo", None)
    image, bars, _, style, stats, warnings = render(data, "digits")
    assert image.data[0].z.shape == (8, 8) and image.data[0].colorscale is not None
    assert [t.type for t in bars.data] == ["bar", "bar"] and len(bars.data[0].y) == 10
    np.testing.assert_array_equal(bars.data[1].y, data.target)
    assert style == {"display": "none"}  # no steps to plot for the pseudo-inverse
    assert warnings is None  # digits fc1 is wide: eq. 5 reaches the target exactly
    keys = [s.children[1].id for s in stats]
    assert "text-inversion-distance" in keys and "text-inversion-clipped" in keys
    curve = generated_input(np.arange(5.0), title="t", axis_values=np.arange(5) * 2.0)
    assert curve.data[0].type == "scatter" and curve.data[0].x[-1] == 8.0
    fig = output_bars(np.ones(3), np.zeros(3), ["a", "b", "c"], title="o", target_index=1)
    assert "◆" in fig.data[0].x[1]
    fig = distance_history(np.array([4.0, 2.0, 1.0]), title="h")
    assert fig.layout.yaxis.type == "log" and list(fig.data[0].x) == [0, 1, 2]


def test_uploaded_training_data_defines_the_ideal_output(services, tmp_path):
    ds = _train()
    session = "S" * 43
    path = tmp_path / "train.npz"
    np.savez(path, x=ds.x[:300].numpy(), y=ds.y[:300].numpy())
    with open(path, "rb") as body:
        stored = services.dataset_uploads.save_stream(session, "train.npz", body)
    dataset = f"upload-{stored.file_id}"
    data = services.inversion.run("digits", InversionOptions(target=1), dataset, session)
    net = sc.zoo.load("digits")
    target = sc.ideal_output(training_outputs(net, ds.x[:300]), ds.y[:300], 1)
    _assert_f32_close(data.target, target.numpy())
    assert data.n_train == 300 and data.data_name == "train.npz"
    other = services.inversion.key("digits", InversionOptions(target=1), "zoo", None)
    assert services.inversion.key("digits", InversionOptions(target=1), dataset, session) != other
