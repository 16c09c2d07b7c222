"""The heads panel's service: the circuits of the block a projection is in, equal to dense
float64 products; None for a layer in no attention block or a model without config.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from app.config import AppConfig
from app.services import Services
from app.views.spectrum import heads as heads_view

D_MODEL, HEADS, KV = 32, 4, 2
D = D_MODEL // HEADS


@pytest.fixture
def services(tmp_path):
    g = torch.Generator().manual_seed(0)
    folder = tmp_path / "llama"
    folder.mkdir()
    p = "model.layers.0.self_attn"
    tensors = {
        f"{p}.q_proj.weight": torch.randn(HEADS * D, D_MODEL, generator=g),
        f"{p}.k_proj.weight": torch.randn(KV * D, D_MODEL, generator=g),
        f"{p}.v_proj.weight": torch.randn(KV * D, D_MODEL, generator=g),
        f"{p}.o_proj.weight": torch.randn(D_MODEL, HEADS * D, generator=g),
        "model.layers.0.mlp.up_proj.weight": torch.randn(64, D_MODEL, generator=g),
    }
    save_file(tensors, str(folder / "model.safetensors"))
    config = {"hidden_size": D_MODEL, "num_attention_heads": HEADS, "num_key_value_heads": KV}
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"fc.weight": torch.randn(4, 4, generator=g)}, str(tmp_path / "plain.safetensors"))
    models = [str(folder), str(tmp_path / "plain.safetensors")]
    return Services(AppConfig(models=models, upload_dir=tmp_path / "up")), tensors


def test_the_circuits_of_a_projections_block(services):
    services, t = services
    p = "model.layers.0.self_attn"
    data = services.heads.heads("llama", f"{p}.v_proj", None)
    assert data.block.name == p and data.kv_heads == [0, 0, 1, 1]
    for h in range(HEADS):
        g = h // 2
        Wq = t[f"{p}.q_proj.weight"][h * D : (h + 1) * D].double().numpy()
        Wk = t[f"{p}.k_proj.weight"][g * D : (g + 1) * D].double().numpy()
        Wv = t[f"{p}.v_proj.weight"][g * D : (g + 1) * D].double().numpy()
        Wo = t[f"{p}.o_proj.weight"][:, h * D : (h + 1) * D].double().numpy()
        np.testing.assert_allclose(
            data.qk[h], np.linalg.svd(Wq.T @ Wk, compute_uv=False)[:D], rtol=1e-10
        )
        np.testing.assert_allclose(
            data.ov[h], np.linalg.svd(Wo @ Wv, compute_uv=False)[:D], rtol=1e-10
        )
    assert list(data.table["head"]) == [0, 1, 2, 3]
    again = services.heads.heads("llama", f"{p}.q_proj", None)  # the same block, cached
    np.testing.assert_array_equal(again.qk[3], data.qk[3])
    assert services.heads.heads("llama", "model.layers.0.mlp.up_proj", None) is None
    assert services.heads.heads("plain", "fc", None) is None
    assert [c for c, _ in heads_view.COLUMNS if c not in data.table.columns] == []
