"""Layer roles and blocks from names, across the naming schemes of common checkpoints."""

from __future__ import annotations

import pytest

from svdcore.roles import ROLES, layer_block, layer_role


@pytest.mark.parametrize(
    ("name", "kind", "role", "block"),
    [
        ("model.embed_tokens", "embedding", "embedding", ""),
        ("model.layers.0.self_attn.q_proj", "linear", "attention", "model.layers.0"),
        ("model.layers.31.self_attn.o_proj", "linear", "attention", "model.layers.31"),
        ("model.layers.0.mlp.down_proj", "linear", "mlp", "model.layers.0"),
        ("lm_head", "linear", "head", ""),
        ("encoder.layer.0.attention.self.query", "linear", "attention", "encoder.layer.0"),
        ("encoder.layer.0.attention.output.dense", "linear", "attention", "encoder.layer.0"),
        ("encoder.layer.0.intermediate.dense", "linear", "mlp", "encoder.layer.0"),
        ("encoder.layer.0.output.dense", "linear", "mlp", "encoder.layer.0"),
        ("embeddings.word_embeddings", "embedding", "embedding", ""),
        ("transformer.wte", "embedding", "embedding", ""),
        ("transformer.h.3.attn.c_attn", "linear", "attention", "transformer.h.3"),
        ("transformer.h.3.mlp.c_proj", "linear", "mlp", "transformer.h.3"),
        ("gpt_neox.layers.2.attention.query_key_value", "linear", "attention", "gpt_neox.layers.2"),
        ("decoder.block.1.layer.0.SelfAttention.q", "linear", "attention", "decoder.block.1"),
        ("decoder.block.1.layer.1.DenseReluDense.wi", "linear", "mlp", "decoder.block.1"),
        ("blocks.2.attn.qkv", "linear", "attention", "blocks.2"),
        ("classifier.2", "linear", "head", ""),
        ("features.0", "conv2d", "other", ""),
        ("attn_pattern_probe", "tensor", "other", ""),  # "attn" inside a word is not a part
        ("layers_norm.weight_g", "tensor", "other", ""),
    ],
)
def test_roles_and_blocks(name, kind, role, block):
    assert layer_role(name, kind) == role
    assert layer_block(name) == block
    assert role in ROLES


def test_the_stored_kind_decides_an_embedding():
    assert layer_role("tok", "embedding") == "embedding"
    assert layer_role("tok", "linear") == "other"
