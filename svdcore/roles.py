"""What a layer does in a transformer (or any named network), from its name alone: its
``role`` (attention, MLP, embedding, head, other) and the ``block`` it belongs to
("model.layers.3"), for grouping and filtering a model's layer table.

Names are matched by their dotted components, so "attn" in ``model.layers.0.self_attn.q_proj``
counts and "attn" in a layer called ``pattern`` does not. The first rule that matches wins:
embedding, then attention (BERT's ``attention.output.dense`` is attention), then MLP (BERT's
block-level ``output.dense`` and ``intermediate.dense``), then the output head.
"""

from __future__ import annotations

import re

__all__ = ["ROLES", "layer_block", "layer_role"]

ROLES = ("attention", "mlp", "embedding", "head", "other")

_EMBEDDING = {"embed", "embeddings", "embed_tokens", "wte", "wpe", "tok_embeddings",
              "word_embeddings", "position_embeddings", "token_type_embeddings",
              "embed_positions", "shared"}  # fmt: skip
_ATTENTION = {"attn", "attention", "self_attn", "self_attention", "selfattention",
              "encdecattention", "cross_attn", "crossattention", "q_proj", "k_proj",
              "v_proj", "o_proj", "query", "key", "value", "qkv", "qkv_proj", "c_attn",
              "query_key_value", "wqkv", "in_proj_weight", "wq", "wk", "wv", "wo",
              "q_lin", "k_lin", "v_lin", "out_lin"}  # fmt: skip
_MLP = {"mlp", "ffn", "feed_forward", "feedforward", "fc1", "fc2", "gate_proj", "up_proj",
        "down_proj", "intermediate", "c_fc", "w1", "w2", "w3", "dense_h_to_4h",
        "dense_4h_to_h", "experts", "densereludense", "wi", "wi_0", "wi_1", "lin1", "lin2",
        "gate_up_proj"}  # fmt: skip
_HEAD = {"lm_head", "classifier", "cls", "score", "pooler", "head", "heads", "qa_outputs"}
# a block: the prefix up to "<layers|layer|h|blocks|block>.<index>"
_BLOCK = re.compile(
    r"^(.*?(?:^|\.)(?:layers|layer|h|blocks|block|transformer_blocks)\.\d+)(?:\.|$)"
)


def _parts(name: str) -> list[str]:
    return [p.lower() for p in name.split(".")]


def layer_block(name: str) -> str:
    """The block prefix of layer ``name`` ("encoder.layer.2"), "" outside any block."""
    match = _BLOCK.match(name)
    return match.group(1) if match else ""


def layer_role(name: str, kind: str = "") -> str:
    """One of :data:`ROLES` for layer ``name`` of ``kind`` (module docstring)."""
    parts = _parts(name)
    if kind == "embedding" or any(p in _EMBEDDING or p.endswith("_embeddings") for p in parts):
        return "embedding"
    if any(p in _ATTENTION for p in parts):
        return "attention"
    block = layer_block(name)
    rest = _parts(name[len(block) :].lstrip(".")) if block else parts
    if any(p in _MLP for p in parts) or (block and rest[:1] == ["output"]):
        return "mlp"
    if any(p in _HEAD for p in parts):
        return "head"
    return "other"
