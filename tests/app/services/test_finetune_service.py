"""The Compare tab's fine-tune table: small layers in the request, large ones pending for
the job (which fills them in, cached by content), a PEFT adapter merged into model A."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from app.config import AppConfig
from app.services import Services


@pytest.fixture
def services(tmp_path):
    g = torch.Generator().manual_seed(0)
    base = {
        "small.weight": torch.randn(8, 6, generator=g),
        "big.weight": torch.randn(90, 80, generator=g),
    }
    tuned = {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in base.items()}
    tuned["new.weight"] = torch.randn(3, 3, generator=g)
    save_file(base, str(tmp_path / "base.safetensors"))
    save_file(tuned, str(tmp_path / "tuned.safetensors"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    save_file(
        {
            "base_model.model.small.lora_A.weight": torch.randn(2, 6, generator=g),
            "base_model.model.small.lora_B.weight": torch.randn(8, 2, generator=g),
        },
        str(adapter / "adapter_model.safetensors"),
    )
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 2}))
    models = [str(tmp_path / "base.safetensors"), str(tmp_path / "tuned.safetensors"), str(adapter)]
    return Services(AppConfig(models=models, upload_dir=tmp_path / "up"))


def test_large_layers_wait_for_the_job_then_equal_svdcore(services):
    first = services.finetune.data("base", "tuned", None, inline_max_elements=1000)
    assert first.pending == ("big",) and first.elements == 90 * 80
    notes = dict(zip(first.table["name"], first.table["note"], strict=True))
    assert notes["new"] == "only in tuned.safetensors" and "background" in notes["big"]
    seen = []
    stopped = services.finetune.compute("base", "tuned", None, progress=lambda *a: seen.append(a))
    assert stopped is False and seen[-1][:2] == (90 * 80, 90 * 80) and seen[-1][2] == "big"
    data = services.finetune.data("base", "tuned", None, inline_max_elements=1000)
    assert data.complete
    rows = data.table.set_index("name")
    a, b = (services.registry.network(m, None) for m in ("base", "tuned"))
    expected = sc.layer_delta(a.matrix("big"), b.matrix("big"), k=8)
    assert rows.loc["big", "rel_change"] == pytest.approx(expected.rel_change, rel=1e-12)
    assert rows.loc["big", "left_overlap"] == pytest.approx(expected.left_overlap, rel=1e-9)
    csv = services.finetune.csv("base", "tuned", None)
    assert csv["filename"] == "base.safetensors-vs-tuned.safetensors-finetune.csv"
    assert csv["content"].splitlines()[0].startswith("name,rows,cols,rel_change")


def test_an_adapter_as_b_is_merged_into_a(services):
    data = services.finetune.data("base", "adapter", None)
    assert data.adapter and data.complete
    # one merged model per (base, adapter): its content keys are hashed once, not per request
    assert (
        services.finetune._pair("base", "adapter", None)[1]
        is services.finetune._pair("base", "adapter", None)[1]
    )
    rows = data.table.set_index("name")
    assert rows.loc["big", "rel_change"] == 0 and rows.loc["small", "delta_rank90"] <= 2
    adapter = sc.read_adapter(services.registry.network("adapter", None).origin)
    delta = adapter.delta(adapter.modules[0], dtype=torch.float64)
    W = services.registry.network("base", None).matrix("small", dtype=torch.float64)
    assert rows.loc["small", "rel_change"] == pytest.approx(
        float(delta.norm() / W.norm()), rel=1e-5
    )


def test_a_stopped_job_keeps_its_rows(services):
    assert services.finetune.compute("base", "tuned", None, should_stop=lambda: True) is True
    assert services.finetune.data("base", "tuned", None, inline_max_elements=1000).pending == (
        "big",
    )
