"""Services: the bridge to svdcore (layer table, analyses, caching, error mapping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from app.config import AppConfig, default_cache_dir
from app.services import Services
from app.views.common import attempt


@pytest.fixture
def toy_path(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "toy.safetensors"
    W = torch.randn(12, 6) @ torch.diag(torch.tensor([5.0, 4, 3, 2, 1, 0]))  # rank 5
    save_file(
        {
            "fc1.weight": W.contiguous(),
            "fc1.bias": torch.randn(12),
            "conv.weight": torch.randn(4, 2, 3, 3),
            "ids": torch.arange(6).reshape(2, 3),
        },
        str(path),
    )
    return path


@pytest.fixture
def services(toy_path, tmp_path):
    return Services(AppConfig(models=[str(toy_path)], upload_dir=tmp_path / "up"))


def test_layer_table_lists_every_tensor_with_numbers_or_reason(services):
    rows = {row["name"]: row for row in services.layers.table("toy", None)}
    assert set(rows) == {"fc1", "conv", "ids"}
    fc1 = rows["fc1"]
    assert (fc1["kind"], fc1["shape"], fc1["matrix"]) == ("linear", "12×6", "12×6")
    W = services.registry.network("toy", None).matrix("fc1")
    assert float(fc1["cond"]) == pytest.approx(sc.condition_number(W), rel=1e-2)
    assert float(fc1["erank"]) == pytest.approx(sc.effective_rank(W), abs=0.06)
    assert rows["conv"]["matrix"] == "4×18" and rows["conv"]["shape"] == "4×2×3×3"
    ids_row = rows["ids"]
    assert not ids_row["viewable"] and ids_row["matrix"] == "—"
    assert "int64" in ids_row["note"] and ids_row["cond"] == ""
    assert services.registry.first_viewable_layer("toy", None) in {"fc1", "conv"}


def test_spectrum_numbers_match_svdcore(services):
    data = services.layers.spectrum("toy", "fc1", "default", None)
    W = services.registry.network("toy", None).matrix("fc1")
    S = torch.linalg.svdvals(W).numpy()
    np.testing.assert_allclose(data.summary.singular_values, S, rtol=1e-5)
    assert data.summary.numerical_rank == 5
    energy = np.cumsum(S**2) / np.sum(S**2)
    assert data.rank_for_energy[0.9] == int(np.argmax(energy >= 0.9) + 1)
    assert data.shape == (12, 6)


def test_vectors_are_orthonormal_clipped_to_k_and_cached(services):
    before = services.cache.misses
    data = services.layers.vectors("toy", "conv", "kernels", 4, None)
    assert data.right.shape == (4, 9) and data.left.shape == (4, 8)
    assert data.info.col_image_shape == (3, 3)
    np.testing.assert_allclose(data.right @ data.right.T, np.eye(4), atol=1e-5)
    assert np.all(np.diff(data.sigma) <= 0)
    assert services.cache.misses == before + 1
    again = services.layers.vectors("toy", "conv", "kernels", 99, None)  # k above the rank: clipped
    assert again.right.shape == (8, 9) and again.left.shape == (8, 8)  # min(8, 9) vectors
    assert services.cache.misses == before + 1  # same matrix content: served from the cache


def test_weights_are_float32_numpy(services):
    data = services.layers.weights("toy", "conv", "unfolded", None)
    assert data.matrix.dtype == np.float32 and data.matrix.shape == (4, 18)
    assert data.info.row_label == "output"


def test_svdcore_errors_become_sentences_not_tracebacks(services):
    with pytest.raises(sc.LayerError):
        services.layers.weights("toy", "ids", "default", None)
    with pytest.raises(sc.LayerError):
        services.layers.weights("toy", "nope", "default", None)
    value, box = attempt(services, lambda: services.layers.weights("toy", "ids", "default", None))
    assert value is None
    text = str(box.children[1].children)
    assert "cannot be viewed as a matrix" in text and "int64" in text
    with pytest.raises(sc.LoadError, match="not available in this browser session"):
        services.registry.network("ghost", None)
    generic = services.error_message(RuntimeError("secret internals at /srv/x.py line 3"))
    assert "server log" in generic and "secret" not in generic


def test_a_broken_configured_model_fails_alone(services, tmp_path, toy_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    both = Services(AppConfig(models=[str(toy_path), str(bad)], upload_dir=tmp_path / "u2"))
    assert [m.id for m in both.registry.models(None)] == ["toy", "bad"]
    with pytest.raises(sc.LoadError, match=r"bad\.safetensors"):
        both.registry.layers("bad", None)
    assert both.registry.layers("toy", None)  # the other model still opens


def test_unknown_model_names_fail_at_startup(tmp_path):
    with pytest.raises(sc.LoadError, match="neither an example network"):
        Services(AppConfig(models=["no-such-net"], upload_dir=tmp_path))


def test_filesystem_cache_survives_a_new_services(toy_path, tmp_path):
    cfg = AppConfig(models=[str(toy_path)], upload_dir=tmp_path / "u", cache_dir=tmp_path / "c")
    first = Services(cfg)
    first.layers.spectrum("toy", "fc1", "default", None)
    second = Services(cfg)
    second.layers.spectrum("toy", "fc1", "default", None)
    assert second.cache.hits >= 1 and second.cache.misses == 0


def test_config_from_env(tmp_path):
    cfg = AppConfig.from_env(
        {
            "SVDSCOPE_MODELS": "deernet, digits",
            "SVDSCOPE_UPLOAD_DIR": str(tmp_path),
            "SVDSCOPE_MAX_UPLOAD_BYTES": "1000",
        }
    )
    assert cfg.models == ["deernet", "digits"] and cfg.upload_dir == tmp_path
    # unset: the per-user filesystem cache, shared by every gunicorn worker on this host
    assert cfg.max_upload_bytes == 1000 and cfg.cache_dir == default_cache_dir()


@pytest.mark.parametrize("name", ["deernet", "digits", "digits-5layer"])
def test_zoo_networks_have_a_layer_table(name, tmp_path):
    services = Services(AppConfig(models=[name], upload_dir=tmp_path))
    rows = services.layers.table(name, None)
    viewable = [row for row in rows if row["viewable"]]
    assert viewable and all(row["cond"] and row["erank"] for row in viewable)
    assert services.registry.model_entry(name, None).description


def test_large_layers_get_their_table_numbers_once_computed(services, monkeypatch):
    import app.services.layers as services_module

    monkeypatch.setattr(services_module, "TABLE_SUMMARY_MAX_ELEMENTS", 10)
    rows = {row["name"]: row for row in services.layers.table("toy", None)}
    assert rows["fc1"]["cond"] == "" and "Spectrum tab" in rows["fc1"]["note"]
    services.layers.spectrum("toy", "fc1", "default", None)  # the user opens the Spectrum tab
    rows = {row["name"]: row for row in services.layers.table("toy", None)}
    assert rows["fc1"]["cond"] != "" and rows["fc1"]["note"] == ""


def test_a_request_scope_resolves_each_model_once(services, monkeypatch):
    """Inside a request scope every analysis shares one OpenedModel; outside, each call
    resolves the id again (and sees, e.g., an upload deleted in between)."""
    looked = []
    entry = services.registry.model_entry
    monkeypatch.setattr(services.registry, "model_entry", lambda *a: looked.append(a) or entry(*a))
    with services.registry.request_scope():
        first = services.registry.open("toy", None)
        services.layers.table("toy", None)
        services.layers.spectrum("toy", "fc1", "default", None)
        services.layers.weights("toy", "fc1", "default", None)
        assert services.registry.open("toy", None) is first
        with services.registry.request_scope():  # nested: the same scope
            assert services.registry.open("toy", None) is first
    assert looked == [("toy", None)]
    assert services.registry.open("toy", None) is not first  # out of the scope
    assert len(looked) == 2
    assert first.id == "toy" and first.entry.kind == "file"
    W, key = first.matrix("fc1", "default")
    assert key == first.key("fc1", "default") == first.net.matrix_key("fc1", view="default")
    assert torch.equal(W, first.net.matrix("fc1"))


def test_the_scope_is_per_registry_and_per_session(services, toy_path, tmp_path):
    other = Services(AppConfig(models=[str(toy_path)], upload_dir=tmp_path / "up2"))
    with services.registry.request_scope():
        a = services.registry.open("toy", None)
        b = other.registry.open("toy", None)
        assert a is not b and a.net is not b.net
        assert services.registry.open("toy", "some-session") is not a


def test_the_web_app_opens_a_scope_per_request(tmp_path):
    from app.main import create_app, get_services

    app = create_app(AppConfig(models=["deernet"], upload_dir=tmp_path / "up"))
    services = get_services(app)
    seen = []
    with app.server.test_request_context("/"):
        app.server.preprocess_request()  # the before_request hooks
        seen.append(services.registry.open("deernet", None))
        seen.append(services.registry.open("deernet", None))
        app.server.do_teardown_request()
    assert seen[0] is seen[1]
    assert services.registry.open("deernet", None) is not seen[0]  # the scope ended
