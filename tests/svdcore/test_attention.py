"""Attention heads: config.json parsing, per-head views of separate and fused projections
in every layout (each recovers the planted head exactly), and W_QK / W_OV spectra from the
factors equal to dense float64 SVDs of the products."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import svdcore as sc
from svdcore.attention import (
    TransformerConfig,
    attach_attention,
    attention_blocks,
    factored_singular_values,
    head_circuits,
    head_weights,
    read_transformer_config,
    transformer_config,
)
from svdcore.sources import DictSource

D_MODEL, H, HKV, D = 32, 4, 2, 8  # grouped-query: 2 query heads per key/value head


def _heads(seed: int = 0):
    """Planted per-head weights (float64): Q[h], K[g], V[g] (d x d_model), O[h] (d_model x d)."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((H, D, D_MODEL))
    K = rng.standard_normal((HKV, D, D_MODEL))
    V = rng.standard_normal((HKV, D, D_MODEL))
    O = rng.standard_normal((H, D_MODEL, D))
    return Q, K, V, O


def _net(tensors: dict[str, np.ndarray]) -> sc.Network:
    return sc.Network(
        DictSource({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}),
        name="t",
    )


def _config(layout: str = "concat", model_type: str = "llama") -> TransformerConfig:
    return TransformerConfig(H, HKV, D, D_MODEL, model_type, layout)


def _separate(prefix: str = "model.layers.0.self_attn", names=("q_proj", "k_proj", "v_proj")):
    Q, K, V, O = _heads()
    return (
        {
            f"{prefix}.{names[0]}.weight": Q.reshape(H * D, D_MODEL),
            f"{prefix}.{names[1]}.weight": K.reshape(HKV * D, D_MODEL),
            f"{prefix}.{names[2]}.weight": V.reshape(HKV * D, D_MODEL),
            f"{prefix}.o_proj.weight": np.concatenate(list(O), axis=1),
            "model.layers.0.mlp.up_proj.weight": np.ones((64, D_MODEL)),
        },
        (Q, K, V, O),
    )


def _fused(layout: str) -> np.ndarray:
    Q, K, V, _ = _heads()
    g = H // HKV
    if layout == "concat":
        parts = [*Q, *K, *V]
    elif layout == "per_head":  # GPT-NeoX: needs as many key/value heads as query heads
        raise AssertionError("per_head is built in its own test")
    else:  # grouped (Falcon): each group's queries, then its k and v
        parts = [p for j in range(HKV) for p in (*Q[j * g : (j + 1) * g], K[j], V[j])]
    return np.concatenate(parts, axis=0)


def _check_heads(net, block, planted):
    Q, K, V, O = planted
    for h in range(H):
        Wq, Wk, Wv, Wo = head_weights(net, block, h)
        g = h // (H // HKV)
        np.testing.assert_array_equal(Wq, Q[h])  # float64 in, float64 out: exact
        np.testing.assert_array_equal(Wk, K[g])
        np.testing.assert_array_equal(Wv, V[g])
        if O is not None:
            np.testing.assert_array_equal(Wo, O[h])


def test_config_json_of_llama_gpt2_t5_and_multimodal_models():
    llama = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
             "num_key_value_heads": 8}  # fmt: skip
    cfg = transformer_config(llama)
    assert (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.group) == (32, 8, 128, 4)
    gpt2 = transformer_config({"model_type": "gpt2", "n_embd": 768, "n_head": 12})
    assert (gpt2.n_heads, gpt2.n_kv_heads, gpt2.head_dim) == (12, 12, 64)
    t5 = transformer_config({"model_type": "t5", "d_model": 512, "num_heads": 8, "d_kv": 64})
    assert t5.head_dim == 64
    gemma = transformer_config({"hidden_size": 3072, "num_attention_heads": 16, "head_dim": 256})
    assert gemma.head_dim == 256  # not 3072 / 16
    llava = transformer_config({"model_type": "llava", "text_config": llama})
    assert llava.n_heads == 32
    falcon = {"model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4}
    assert transformer_config({**falcon, "multi_query": True}).n_kv_heads == 1
    assert transformer_config({**falcon, "multi_query": True}).layout == "concat"
    grouped = {**falcon, "new_decoder_architecture": True, "num_kv_heads": 2}
    assert transformer_config(grouped).layout == "grouped"
    assert transformer_config({**falcon, "multi_query": False}).layout == "per_head"
    assert transformer_config({"model_type": "gpt_neox", **falcon}).layout == "per_head"
    assert transformer_config({"model_type": "resnet", "hidden_sizes": [64]}) is None


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"hidden_size": 100, "num_attention_heads": 3}, "not a multiple of 3 heads"),
        ({"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 3}, "3 key"),
        ({"hidden_size": 64, "num_attention_heads": True}, "positive integer"),
        ({"hidden_size": -64, "num_attention_heads": 4}, "positive integer"),
        ({"hidden_size": 64, "num_attention_heads": "4"}, "positive integer"),
    ],
)
def test_inconsistent_configs_are_named(cfg, match):
    with pytest.raises(sc.DataError, match=match):
        transformer_config(cfg)


def test_config_is_read_as_json_from_a_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64, "n_head": 4}))
    assert read_transformer_config(tmp_path).head_dim == 16
    assert read_transformer_config(tmp_path / "missing") is None
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(sc.LoadError, match="not a readable JSON config"):
        read_transformer_config(tmp_path)


def test_separate_projections_with_grouped_query_heads():
    tensors, planted = _separate()
    net = _net(tensors)
    (block,) = attach_attention(net, _config())
    assert attention_blocks(net) == (block,)
    assert (block.name, block.o, block.fused) == (
        "model.layers.0.self_attn",
        "model.layers.0.self_attn.o_proj",
        False,
    )
    assert block.views["q"] == tuple(f"head {h}" for h in range(H))
    assert block.views["k"] == ("head 0", "head 1")  # the key/value heads
    assert net.layer(block.q).views == ("default", *block.views["q"])
    assert net.layer("model.layers.0.mlp.up_proj").views == ("default",)
    info = net.view_info(block.o, view="head 3")
    assert info.shape == (D_MODEL, D) and "residual" in info.row_label
    assert net.view_info(block.k, view="head 1").shape == (D, D_MODEL)
    _check_heads(net, block, planted)
    key = net.matrix_key(block.q, view="head 1")
    assert key == sc.cache.tensor_key(net.matrix(block.q, view="head 1"))
    assert key != net.matrix_key(block.q, view="head 2")
    with pytest.raises(sc.LayerError, match="no matrix view 'head 9'"):
        net.matrix(block.q, view="head 9")


@pytest.mark.parametrize("layout", ["concat", "grouped"])
def test_fused_qkv_is_split_by_its_layout(layout):
    tensors, (Q, K, V, O) = _separate()
    fused = {
        "model.layers.0.self_attn.qkv_proj.weight": _fused(layout),
        "model.layers.0.self_attn.o_proj.weight": tensors["model.layers.0.self_attn.o_proj.weight"],
    }
    net = _net(fused)
    (block,) = attach_attention(net, _config(layout))
    assert block.fused and block.views["q"][0] == "q head 0" and block.views["v"][1] == "v head 1"
    _check_heads(net, block, (Q, K, V, O))
    layer = "model.layers.0.self_attn.qkv_proj"
    views = net.layer(layer).views
    assert views[:3] == ("default", "q", "q head 0") and views.index("k") == 2 + H  # grouped
    for role, planted in (("q", Q), ("k", K), ("v", V)):  # each part as its own projection
        part = net.matrix(layer, view=role, dtype=torch.float64).numpy()
        np.testing.assert_array_equal(part, planted.reshape(-1, D_MODEL))
        assert net.view_info(layer, view=role).shape == part.shape


def test_gpt_neox_per_head_layout():
    rng = np.random.default_rng(5)
    Q, K, V = (rng.standard_normal((H, D, D_MODEL)) for _ in range(3))
    fused = np.concatenate([p for h in range(H) for p in (Q[h], K[h], V[h])], axis=0)
    net = _net({"gpt_neox.layers.0.attention.query_key_value.weight": fused})
    cfg = TransformerConfig(H, H, D, D_MODEL, "gpt_neox", "per_head")
    (block,) = attach_attention(net, cfg)
    assert block.o is None  # no output projection stored: QK only
    for h in range(H):
        _, Wk, Wv, Wo = head_weights(net, block, h)
        np.testing.assert_array_equal(Wk, K[h])
        np.testing.assert_array_equal(Wv, V[h])
        assert Wo is None
    (circuit, *_) = head_circuits(net, block)
    assert circuit.ov is None and circuit.qk.shape == (D,)


def test_gpt2_conv1d_weights_are_stored_transposed():
    _, (Q, K, V, O) = _separate()
    c_proj = np.concatenate(list(O), axis=1)
    # transformers' Conv1D stores (in, out); a square c_proj is only known by model_type
    Wq = np.concatenate(list(Q), axis=0)
    square = TransformerConfig(H, H, D, D_MODEL, "gpt2", "concat")
    K2 = np.concatenate([*K, *K], axis=0)  # 4 key heads: K0 K1 K0 K1
    V2 = np.concatenate([*V, *V], axis=0)
    net = _net(
        {
            "h.0.attn.c_attn.weight": np.concatenate([Wq, K2, V2], axis=0).T,
            "h.0.attn.c_proj.weight": c_proj.T,
            "h.0.mlp.c_proj.weight": np.ones((4 * D_MODEL, D_MODEL)),
        }
    )
    (block,) = attach_attention(net, square)
    assert block.o == "h.0.attn.c_proj"
    Wq0, Wk3, *_ = head_weights(net, block, 3)
    np.testing.assert_array_equal(Wq0, Q[3])
    np.testing.assert_array_equal(Wk3, K[1])  # key head 3 = K1
    np.testing.assert_array_equal(head_weights(net, block, 2)[3], O[2])


def test_bert_names_find_the_output_dense_in_the_parent():
    Q, K, V, O = _heads()
    p = "encoder.layer.0.attention"
    net = _net(
        {
            f"{p}.self.query.weight": Q.reshape(H * D, D_MODEL),
            f"{p}.self.key.weight": np.concatenate([*K, *K]),
            f"{p}.self.value.weight": np.concatenate([*V, *V]),
            f"{p}.output.dense.weight": np.concatenate(list(O), axis=1),
            "encoder.layer.0.output.dense.weight": np.ones((D_MODEL, 64)),
        }
    )
    (block,) = attach_attention(net, TransformerConfig(H, H, D, D_MODEL, "bert"))
    assert block.o == f"{p}.output.dense" and block.name == f"{p}.self"


def test_projections_that_do_not_fit_the_config_are_left_alone():
    tensors, _ = _separate()
    net = _net(tensors)
    wrong = TransformerConfig(8, 8, 8, D_MODEL, "llama")  # q_proj would need 64 rows
    assert attach_attention(net, wrong) == ()
    assert all(layer.views == ("default",) for layer in net.layers)


def test_circuit_spectra_equal_dense_float64_products():
    tensors, _ = _separate()
    net = _net(tensors)
    (block,) = attach_attention(net, _config())
    circuits = head_circuits(net, block)
    assert [c.kv_head for c in circuits] == [0, 0, 1, 1]
    for c in circuits:
        Wq, Wk, Wv, Wo = head_weights(net, block, c.head)
        dense_qk = np.linalg.svd(Wq.T @ Wk, compute_uv=False)  # d_model x d_model
        dense_ov = np.linalg.svd(Wo @ Wv, compute_uv=False)
        assert c.qk.shape == c.ov.shape == (D,)
        np.testing.assert_allclose(c.qk, dense_qk[:D], rtol=1e-10)
        np.testing.assert_allclose(c.ov, dense_ov[:D], rtol=1e-10)
        assert np.all(dense_qk[D:] < 1e-10 * dense_qk[0])  # rank <= d: nothing lost


@pytest.mark.parametrize(("m", "r", "n"), [(50, 6, 40), (5, 9, 30), (1, 4, 7), (20, 3, 1)])
def test_factored_singular_values_equal_the_dense_product(m, r, n):
    rng = np.random.default_rng(m * 100 + n)
    A, B = rng.standard_normal((m, r)), rng.standard_normal((r, n))
    dense = np.linalg.svd(A @ B, compute_uv=False)
    got = factored_singular_values(A, B)
    assert got.shape == (min(m, r, n),)
    np.testing.assert_allclose(got, dense[: got.size], rtol=1e-10, atol=1e-12)
    low = A @ np.diag([1.0] + [0.0] * (r - 1))  # rank one
    assert np.sum(factored_singular_values(low, B) > 1e-10) == 1


def test_factored_singular_values_refuse_bad_factors():
    with pytest.raises(sc.DataError, match="do not chain"):
        factored_singular_values(np.ones((3, 4)), np.ones((5, 2)))
    with pytest.raises(sc.DataError, match="NaN"):
        factored_singular_values(np.full((3, 2), np.nan), np.ones((2, 3)))


def _hf_folder(tmp_path, config: dict) -> tuple:
    """A sharded Llama-shaped checkpoint (2 blocks, one shard each) with config.json."""
    from safetensors.torch import save_file

    weights = {}
    for b in range(2):
        tensors, _ = _separate(prefix=f"model.layers.{b}.self_attn")
        tensors = {k.replace("layers.0.mlp", f"layers.{b}.mlp"): v for k, v in tensors.items()}
        shard = f"model-0000{b + 1}-of-00002.safetensors"
        save_file(
            {k: torch.from_numpy(v).float().contiguous() for k, v in tensors.items()},
            str(tmp_path / shard),
        )
        weights.update(dict.fromkeys(tensors, shard))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weights}))
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


LLAMA_CONFIG = {
    "model_type": "llama",
    "hidden_size": D_MODEL,
    "num_attention_heads": H,
    "num_key_value_heads": HKV,
}


def test_a_hugging_face_folder_opens_with_its_heads(tmp_path):
    folder = _hf_folder(tmp_path, LLAMA_CONFIG)
    net = sc.load_model(folder)
    blocks = attention_blocks(net)
    assert [b.name for b in blocks] == ["model.layers.0.self_attn", "model.layers.1.self_attn"]
    assert "head 3" in net.layer("model.layers.1.self_attn.q_proj").views
    table = sc.head_table(net)
    assert len(table) == 2 * H and list(table["kv_head"][:H]) == [0, 0, 1, 1]
    Wq, Wk, Wv, Wo = head_weights(net, blocks[1], 2)
    qk = np.linalg.svd(Wq.T @ Wk, compute_uv=False)
    ov = np.linalg.svd(Wo @ Wv, compute_uv=False)
    row = table.iloc[H + 2]
    assert row["qk_sigma1"] == pytest.approx(qk[0], rel=1e-10)
    assert row["qk_frobenius"] == pytest.approx(np.sqrt(np.sum(qk**2)), rel=1e-10)
    assert row["ov_stable_rank"] == pytest.approx(np.sum(ov**2) / ov[0] ** 2, rel=1e-10)
    # the same file through its index, and without a config: no head views
    assert len(attention_blocks(sc.load_model(folder / "model.safetensors.index.json"))) == 2
    (folder / "config.json").unlink()
    plain = sc.load_model(folder)
    assert attention_blocks(plain) == () and all(
        layer.views == ("default",) for layer in plain.layers
    )


def test_a_folder_with_an_inconsistent_config_is_named(tmp_path):
    folder = _hf_folder(tmp_path, {**LLAMA_CONFIG, "num_key_value_heads": 3})
    with pytest.raises(sc.LoadError, match="4 attention heads cannot share 3"):
        sc.load_model(folder)
