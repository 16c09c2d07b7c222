"""PEFT LoRA adapters: ΔW = scaling * B A per module (rank and alpha patterns, rsLoRA,
fan_in_fan_out), alone and merged into a base model; the merged weights' difference from
the base is B A times the scaling, and its spectrum has rank r."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from svdcore.finetune import layer_deltas
from svdcore.lora import apply_lora, lora_network, read_adapter
from svdcore.sources import DictSource

D = 24


def _base() -> sc.Network:
    g = torch.Generator().manual_seed(0)
    tensors = {
        "model.layers.0.self_attn.q_proj.weight": torch.randn(D, D, generator=g),
        "model.layers.0.self_attn.v_proj.weight": torch.randn(D // 2, D, generator=g),
        "model.layers.0.mlp.up_proj.weight": torch.randn(2 * D, D, generator=g),
        "model.norm.weight": torch.ones(D),
    }
    return sc.Network(DictSource(tensors), name="base")


def _adapter(tmp_path, *, config: dict, ranks: dict[str, int], out: dict[str, int]):
    g = torch.Generator().manual_seed(1)
    tensors = {}
    for module, r in ranks.items():
        stem = f"base_model.model.{module}"
        tensors[f"{stem}.lora_A.weight"] = torch.randn(r, D, generator=g)
        tensors[f"{stem}.lora_B.weight"] = torch.randn(out[module], r, generator=g)
    save_file(tensors, str(tmp_path / "adapter_model.safetensors"))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", **config}))
    return tmp_path, tensors


Q = "model.layers.0.self_attn.q_proj"
V = "model.layers.0.self_attn.v_proj"


def test_delta_is_scaled_b_times_a_with_patterns(tmp_path):
    config = {"r": 4, "lora_alpha": 8, "rank_pattern": {"v_proj": 2}, "alpha_pattern": {}}
    folder, t = _adapter(tmp_path, config=config, ranks={Q: 4, V: 2}, out={Q: D, V: D // 2})
    adapter = read_adapter(folder)
    by = {m.module: m for m in adapter.modules}
    assert by[Q].scaling == 2.0 and by[V].r == 2 and by[V].scaling == 4.0  # 8 / 2
    for module in (Q, V):
        stem = f"base_model.model.{module}"
        expected = by[module].scaling * (
            t[f"{stem}.lora_B.weight"].double() @ t[f"{stem}.lora_A.weight"].double()
        )
        np.testing.assert_allclose(
            adapter.delta(by[module], dtype=torch.float64).numpy(), expected.numpy(), rtol=1e-12
        )
    alone = lora_network(folder)
    assert [layer.name for layer in alone.layers] == [Q, V]
    assert sc.is_adapter_folder(folder) and sc.adapter_of(alone) is alone.source.adapter
    assert sc.adapter_of(_base()) is None and sc.load_model(folder).layers == alone.layers
    s = sc.singular_values(alone.matrix(V)).numpy()
    assert np.sum(s > 1e-5 * s[0]) == 2  # rank r


def test_rslora_scales_by_the_square_root(tmp_path):
    config = {"r": 4, "lora_alpha": 8, "use_rslora": True}
    folder, _ = _adapter(tmp_path, config=config, ranks={Q: 4}, out={Q: D})
    assert read_adapter(folder).modules[0].scaling == pytest.approx(8 / 2)


def test_merged_minus_base_is_the_update(tmp_path):
    config = {"r": 4, "lora_alpha": 16}
    folder, _ = _adapter(tmp_path, config=config, ranks={Q: 4, V: 4}, out={Q: D, V: D // 2})
    base = _base()
    merged = apply_lora(base, folder)
    adapter = read_adapter(folder)
    assert [layer.name for layer in merged.layers] == [layer.name for layer in base.layers]
    for m in adapter.modules:
        diff = merged.matrix(m.module, dtype=torch.float64) - base.matrix(
            m.module, dtype=torch.float64
        )
        # the merged weights are stored in float32: the difference is ΔW to float32 rounding
        np.testing.assert_allclose(
            diff.numpy(), adapter.delta(m, dtype=torch.float64).numpy(), atol=2e-5, rtol=1e-5
        )
    up = "model.layers.0.mlp.up_proj"
    assert torch.equal(merged.matrix(up), base.matrix(up))  # not adapted: the base's own
    rows, notes = layer_deltas(base, merged, k=3)
    by = {r.name: r for r in rows}
    assert by[up].rel_change == 0 and notes == {}
    assert by[Q].delta_rank90 <= 4 and np.sum(by[Q].delta_singular_values > 1e-4) == 4


def test_fan_in_fan_out_is_stored_transposed(tmp_path):
    g = torch.Generator().manual_seed(2)
    base = sc.Network(
        DictSource({"h.0.attn.c_attn.weight": torch.randn(D, 3 * D, generator=g)}), name="gpt2"
    )
    folder, t = _adapter(
        tmp_path,
        config={"r": 2, "lora_alpha": 2, "fan_in_fan_out": True},
        ranks={"h.0.attn.c_attn": 2},
        out={"h.0.attn.c_attn": 3 * D},
    )
    merged = apply_lora(base, folder)
    stem = "base_model.model.h.0.attn.c_attn"
    delta = (t[f"{stem}.lora_B.weight"].double() @ t[f"{stem}.lora_A.weight"].double()).T
    diff = merged.matrix("h.0.attn.c_attn", dtype=torch.float64) - base.matrix(
        "h.0.attn.c_attn", dtype=torch.float64
    )
    np.testing.assert_allclose(diff.numpy(), delta.numpy(), atol=2e-5)


def test_bad_adapters_are_named(tmp_path):
    with pytest.raises(sc.LoadError, match=r"no adapter_config\.json"):
        read_adapter(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    with pytest.raises(sc.LoadError, match="not LoRA"):
        read_adapter(tmp_path)
    folder, _ = _adapter(tmp_path, config={"r": 3}, ranks={Q: 4}, out={Q: D})
    with pytest.raises(sc.DataError, match="must chain through r = 3"):
        read_adapter(folder)
    folder, _ = _adapter(
        tmp_path, config={"r": 4}, ranks={"model.other": 4}, out={"model.other": D}
    )
    with pytest.raises(sc.DataError, match="does not have"):
        apply_lora(_base(), folder)
    folder, _ = _adapter(tmp_path, config={"r": 4}, ranks={V: 4}, out={V: D})  # base: D/2 rows
    with pytest.raises(sc.DataError, match=r"ΔW of .*v_proj is \(24, 24\)"):
        apply_lora(_base(), folder)
