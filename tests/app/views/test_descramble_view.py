"""Descramble view without a browser: figure builders, service methods (cache keys, hits,
cancellation), the options parsing and rendering of the view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from app.config import AppConfig
from app.figures import basis_overlay, fft_heatmap, matrix_panel, objective_history
from app.services import DescrambleOptions, Services
from app.storage.session import SESSION_COOKIE, session_from_cookies
from app.views.descramble import options_from
from app.views.descramble.controls import choices_note, fft_flags, radio_options
from app.views.descramble.render import render
from svdcore.fourier import fft2_view

# --------------------------------------------------------------------------- figures


def test_fft_heatmap_axes_are_frequencies_in_cycles_per_sample():
    M = np.random.default_rng(0).standard_normal((6, 8))
    view = fft2_view(M)
    fig = fft_heatmap(view.magnitude, view.row_freq, view.col_freq, title="F")
    heat = fig.data[0]
    np.testing.assert_allclose(heat.x, np.fft.fftshift(np.fft.fftfreq(8)))  # -0.5 ... 0.375
    np.testing.assert_allclose(heat.y, np.fft.fftshift(np.fft.fftfreq(6)))
    assert heat.x[4] == 0 and heat.y[3] == 0  # zero frequency in the middle
    assert "cycles/sample" in fig.layout.xaxis.title.text
    assert "cycles/sample" in fig.layout.yaxis.title.text
    assert heat.zmin == 0 and heat.colorbar.title.text == "|F|"
    np.testing.assert_allclose(heat.z, view.magnitude, rtol=1e-6)


def test_fft_heatmap_says_which_view_it_shows():
    M = np.random.default_rng(1).standard_normal((5, 6))
    plain = fft2_view(M)
    both = fft2_view(M, symmetrize=True, log=True)
    fig = fft_heatmap(plain.magnitude, plain.row_freq, plain.col_freq, title="F")
    assert "symmetrised" not in fig.layout.title.text and "log" not in fig.layout.title.text
    fig = fft_heatmap(
        both.magnitude, both.row_freq, both.col_freq, title="F", log=True, symmetrized=True
    )
    assert "symmetrised" in fig.layout.title.text and "log₁₀" in fig.layout.title.text
    assert fig.data[0].zmin is None and fig.data[0].colorbar.title.text == "log₁₀|F|"
    # the symmetrised view is symmetric in the input frequency (columns 1.. mirror)
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z[:, 1:], z[:, 1:][:, ::-1], rtol=1e-5)


def test_fft_heatmap_pools_large_spectra_by_block_maxima():
    mag = np.zeros((600, 1100), dtype=np.float32)
    mag[599, 1099] = 7.0
    freq_r, freq_c = np.fft.fftshift(np.fft.fftfreq(600)), np.fft.fftshift(np.fft.fftfreq(1100))
    fig = fft_heatmap(mag, freq_r, freq_c, title="big", max_side=512)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (300, 367) and z.max() == 7.0
    assert len(fig.data[0].x) == 367 and "block maxima 2×3" in fig.layout.title.text
    with pytest.raises(ValueError):
        fft_heatmap(mag, freq_r[:5], freq_c, title="mismatch")


def test_basis_overlay_draws_each_vector_over_its_basis_column():
    n, r = 16, 10
    B = np.linalg.qr(np.random.default_rng(2).standard_normal((n, r)))[0]
    U = -B
    fig = basis_overlay(U, B, np.arange(r, 0, -1.0), count=8)
    assert len(fig.data) == 16  # 8 panels x (basis, vector)
    vec, basis = fig.data[0], fig.data[1]
    np.testing.assert_allclose(basis.y, B[:, 0], rtol=1e-6)
    np.testing.assert_allclose(vec.y, U[:, 0], rtol=1e-6)
    assert basis.line.dash == "dash" and vec.line.dash is None
    assert [t.showlegend for t in fig.data[:4]] == [True, True, False, False]
    assert fig.layout.annotations[0].text.startswith("u<sub>1</sub>")
    small = basis_overlay(U[:, :3], B[:, :3], np.ones(3), count=8)
    assert len(small.data) == 6
    with pytest.raises(ValueError):
        basis_overlay(U, B[:, :3], np.ones(r))


def test_matrix_panel_reuses_the_diverging_weights_heatmap():
    P = np.linalg.qr(np.random.default_rng(3).standard_normal((5, 5)))[0]
    fig = matrix_panel(P, title="P", value_label="P", square=True)
    heat = fig.data[0]
    assert heat.zmid == 0 and heat.zmin == -heat.zmax
    assert heat.colorbar.title.text == "P" and "P = %{z" in heat.hovertemplate
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.autorange == "reversed"


def test_objective_history_marks_the_bound():
    fig = objective_history(np.array([5.0, 3.0, 2.5]), bound=2.0, title="h")
    assert list(fig.data[0].y) == [5.0, 3.0, 2.5] and list(fig.data[0].x) == [1, 2, 3]
    assert fig.layout.shapes[0].y0 == 2.0
    assert len(objective_history(np.array([1.0]), bound=None).layout.shapes) == 0


# --------------------------------------------------------------------------- services


@pytest.fixture
def services(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "toy.safetensors"
    save_file({"fc1.weight": torch.randn(8, 12), "fc2.weight": torch.randn(3, 8)}, str(path))
    return Services(AppConfig(models=["deernet", str(path)], upload_dir=tmp_path / "up"))


def test_descramble_is_cached_by_weights_data_and_options(services):
    opts = DescrambleOptions(source="limit")
    assert services.descramble.run("deernet", "fc1", opts, None, compute=False) is None
    first = services.descramble.run("deernet", "fc1", opts, None)
    hits = services.shared_cache.hits
    again = services.descramble.run("deernet", "fc1", opts, None)
    assert services.shared_cache.hits == hits + 1
    np.testing.assert_array_equal(first.P, again.P)
    assert services.descramble.run("deernet", "fc1", opts, None, compute=False) is not None
    assert first.objective == pytest.approx(first.bound, rel=1e-10)
    assert first.PW.shape == (80, 256) and first.P.shape == (80, 80)

    key = services.descramble.key("deernet", "fc1", opts, None)
    # settings that cannot change the result share the key ...
    assert services.descramble.key("deernet", "fc1", DescrambleOptions(samples=7), None) == key
    assert (
        services.descramble.key("deernet", "fc1", DescrambleOptions(steps=9, lr=0.5), None) == key
    )
    # ... every one that can gives a new key
    others = [
        DescrambleOptions(source="noise"),
        DescrambleOptions(source="noise", samples=500),
        DescrambleOptions(source="dataset"),
        DescrambleOptions(source="jacobian"),
        DescrambleOptions(stencil="finite"),
        DescrambleOptions(det_one=True),
        DescrambleOptions(position="second", source="noise"),
        DescrambleOptions(method="iterative"),
        DescrambleOptions(method="iterative", steps=10),
        DescrambleOptions(method="iterative", lr=0.1),
        DescrambleOptions(criterion="mds"),
        DescrambleOptions(criterion="max_diagonal_norm", method="iterative"),
    ]
    keys = {services.descramble.key("deernet", "fc1", o, None) for o in others}
    assert len(keys) == len(others) and key not in keys
    assert services.descramble.key("deernet", "fc2", opts, None) != key
    assert services.descramble.key("toy", "fc1", opts, None) != key


def test_weights_only_model_offers_noise_and_limit_with_reasons(services):
    reasons = services.descramble.choices("toy", None)
    assert set(reasons) == {
        "source:dataset",
        "source:jacobian",
        "position:activation",
        "position:second",
    }
    assert "weights only" in reasons["source:dataset"]
    assert services.descramble.choices("deernet", None) == {}
    data = services.descramble.run(
        "toy", "fc1", DescrambleOptions(source="noise", samples=300), None
    )
    assert data.PW.shape == (8, 12) and data.n_signals == 300
    with pytest.raises(sc.DataError, match="not available"):
        services.descramble.run("toy", "fc1", DescrambleOptions(source="dataset"), None)
    with pytest.raises(sc.DataError, match="between 1 and"):
        services.descramble.run("toy", "fc1", DescrambleOptions(source="noise", samples=0), None)
    with pytest.raises(sc.DataError, match="learning rate"):
        services.descramble.run("toy", "fc1", DescrambleOptions(method="iterative", lr=-1), None)


def test_impossible_combinations_raise_svdcore_sentences(services):
    with pytest.raises(sc.SvdscopeError, match="linear"):
        services.descramble.run("deernet", "fc1", DescrambleOptions(position="activation"), None)
    with pytest.raises(sc.SvdscopeError, match="no closed form"):
        opts = DescrambleOptions(criterion="max_diagonal_norm")
        services.descramble.run("deernet", "fc1", opts, None)


def test_iterative_progress_and_cancel_flag(services):
    seen: list[tuple[int, int]] = []
    opts = DescrambleOptions(source="limit", method="iterative", steps=30)
    data = services.descramble.run(
        "toy", "fc1", opts, None, progress=lambda s, t, _obj: seen.append((s, t))
    )
    assert seen and seen[0] == (1, 30) and data.history.size == data.steps <= 30
    assert data.objective >= data.bound * (1 - 1e-9) and not data.cancelled
    assert services.descramble.run("toy", "fc1", opts, None, compute=False) is not None

    assert not services.jobs.cancel_requested("session-a", "n1")
    services.jobs.request_cancel("session-a", "n1")
    assert services.jobs.cancel_requested("session-a", "n1")
    assert not services.jobs.cancel_requested("session-b", "n1")
    stopped = DescrambleOptions(source="limit", method="iterative", steps=500, lr=1e-3)
    data = services.descramble.run(
        "toy",
        "fc1",
        stopped,
        None,
        should_stop=lambda: services.jobs.cancel_requested("session-a", "n1"),
    )
    assert data.cancelled and data.steps == 0
    assert services.descramble.run("toy", "fc1", stopped, None, compute=False) is None  # not kept


def test_a_fixed_dataset_smaller_than_n_is_used_whole(tmp_path):
    services = Services(AppConfig(models=["digits"], upload_dir=tmp_path / "up"))
    data = services.descramble.run("digits", "fc1", DescrambleOptions(source="dataset"), None)
    test_split = len(sc.zoo.get("digits").make_data(n=None, split="test")[0])
    assert data.n_signals == test_split < DescrambleOptions().samples
    assert f"has {test_split} inputs; all of them are used" in data.note
    small = DescrambleOptions(source="dataset", samples=50)
    assert services.descramble.run("digits", "fc1", small, None).n_signals == 50


def test_second_layer_position_gives_the_next_layer_descrambled(services):
    opts = DescrambleOptions(source="dataset", samples=200, position="second")
    data = services.descramble.run("deernet", "fc1", opts, None)
    assert data.next_layer == "fc2" and data.c is not None and data.c > 0
    np.testing.assert_allclose(data.W_next_Pt, data.W_next @ data.P.T, atol=1e-4)
    ffts = services.descramble.ffts(data, symmetrize=True, log=False)
    assert ffts[1].magnitude.shape == data.PW.shape and ffts[1].symmetrized
    out = render(data, ffts, "fc1")
    assert out.next_style["display"] == "block" and out.history_style["display"] == "none"
    assert out.figures.next.data[0].z.shape == (256, 80)
    keys = [s.children[1].id for s in out.stats]
    assert "text-descramble-c" in keys and "text-descramble-objective" in keys


# --------------------------------------------------------------------------- view helpers


def test_options_from_controls():
    o = options_from(
        "noise", "250", "finite", "iterative", "smoothness", "linear", ["det"], "", None
    )
    assert o == DescrambleOptions(
        source="noise", samples=250, stencil="finite", method="iterative", det_one=True
    )
    assert options_from(None, None, None, None, None, None, [], None, None) == DescrambleOptions()
    assert fft_flags(["log"]) == (False, True) and fft_flags(None) == (False, False)


def test_disabled_choices_say_why():
    reasons = {"source:dataset": "no data", "source:jacobian": "no data"}
    options = radio_options({"dataset": "dataset inputs", "noise": "noise"}, "source", reasons)
    assert options[0]["disabled"] and options[0]["label"].title == "Not available: no data"
    assert not options[1]["disabled"] and options[1]["label"] == "noise"
    (note,) = choices_note(reasons)
    assert "dataset inputs" in note.children and "Jacobian" in note.children


def test_background_jobs_read_the_session_from_cookies():
    token = "a" * 43
    assert session_from_cookies({SESSION_COOKIE: token}) == token
    assert session_from_cookies({SESSION_COOKIE: "../etc"}) is None
    assert session_from_cookies({}) is None and session_from_cookies(None) is None
