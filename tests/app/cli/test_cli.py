"""The svdscope command line: layers, zoo list, clear errors with exit status 2."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from app.cli import main


def test_layers_prints_table(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    save_file(
        {
            "fc1.weight": torch.randn(8, 4),
            "fc1.bias": torch.randn(8),
            "ids": torch.ones(2, 2).long(),
        },
        str(path),
    )
    assert main(["layers", str(path)]) == 0
    out = capsys.readouterr().out
    assert "m.safetensors: 2 layers, weights only" in out
    assert "fc1" in out and "8x4" in out and "int64 tensor" in out


def test_layers_csv_has_the_diagnostics_and_randomize_fills_the_trap_columns(tmp_path, capsys):
    import io

    import pandas as pd

    path = tmp_path / "m.safetensors"
    save_file(
        {"fc1.weight": torch.randn(120, 60, generator=torch.Generator().manual_seed(0))}, str(path)
    )
    assert main(["layers", str(path), "--format", "csv"]) == 0
    plain = pd.read_csv(io.StringIO(capsys.readouterr().out))
    row = plain.iloc[0]
    assert row["alpha_hill"] > 1 and row["n_spikes"] == 0 and row["mp_edge"] > 0
    assert pd.isna(row["rand_distance"]) and pd.isna(row["n_traps"])
    assert main(["layers", str(path), "--format", "csv", "--randomize"]) == 0
    shuffled = pd.read_csv(io.StringIO(capsys.readouterr().out)).iloc[0]
    assert 0 <= shuffled["rand_distance"] < 0.05 and shuffled["n_traps"] == 0
    assert shuffled["alpha"] == row["alpha"]


def test_layers_with_activation_is_executable(tmp_path, capsys):
    path = tmp_path / "m.pt"
    torch.save({"0.weight": torch.randn(8, 4), "2.weight": torch.randn(3, 8)}, path)
    assert main(["layers", str(path), "--activation", "relu"]) == 0
    assert "executable" in capsys.readouterr().out


def test_bad_model_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense")
    assert main(["layers", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("svdscope: error: bad.safetensors is not a readable safetensors file")
    assert "Traceback" not in err
    assert main(["serve", str(tmp_path / "missing.pt")]) == 2
    assert "neither an example network (zoo: " in capsys.readouterr().err


def test_zoo_list_and_console_script(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("deernet", "digits", "digits-5layer"):
        assert name in out
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "serve" in proc.stdout and "zoo" in proc.stdout


def test_zoo_train_writes_loadable_weights(tmp_path, capsys):
    import svdcore as sc

    out = tmp_path / "digits.safetensors"
    assert main(["zoo", "train", "digits", "--out", str(out)]) == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert "svdscope: trained digits" in printed and "test_accuracy=" in printed
    net = sc.load_model(out)
    assert [layer.name for layer in net.layers] == ["fc1"]
    assert main(["zoo", "train", "no-such-net"]) == 2
    assert "no example network called 'no-such-net'" in capsys.readouterr().err


def test_serve_data_option_offers_a_dataset_file(tmp_path):
    import numpy as np

    from app.cli import _dataset_spec
    from app.config import AppConfig
    from app.services import Services

    path = tmp_path / "inputs.npz"
    np.savez(path, x=np.zeros((5, 64), dtype=np.float32), y=np.arange(5))
    spec = _dataset_spec(f"{path}::y")
    assert spec == f"{path.resolve()}::y"
    services = Services(AppConfig(models=["digits"], datasets=[spec], upload_dir=tmp_path / "u"))
    ids_ = [d.id for d in services.datasets.entries("digits", None)]
    assert ids_ == ["zoo", "file-0"]
    assert services.datasets.default("digits", None) == "zoo"  # its own data first
    opened = services.datasets.open("digits", "file-0", None)
    assert len(opened.data) == 5 and opened.data.y.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(sc.LoadError, match="no such dataset file"):
        _dataset_spec(str(tmp_path / "missing.npz"))
    with pytest.raises(sc.LoadError, match="no dataset 'file-3'"):
        services.datasets.open("digits", "file-3", None)


def test_heads_prints_each_heads_circuits(tmp_path, capsys):
    import json

    torch.manual_seed(0)
    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    save_file(
        {
            "model.layers.0.self_attn.q_proj.weight": torch.randn(16, 16),
            "model.layers.0.self_attn.k_proj.weight": torch.randn(8, 16),
            "model.layers.0.self_attn.v_proj.weight": torch.randn(8, 16),
            "model.layers.0.self_attn.o_proj.weight": torch.randn(16, 16),
        },
        str(folder / "model.safetensors"),
    )
    config = {"hidden_size": 16, "num_attention_heads": 4, "num_key_value_heads": 2}
    (folder / "config.json").write_text(json.dumps(config))
    assert main(["heads", str(folder), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("block,head,kv_head,qk_sigma1")
    assert len(lines) == 1 + 4 and lines[3].startswith("model.layers.0.self_attn,2,1,")
    (folder / "config.json").unlink()
    assert main(["heads", str(folder)]) == 2
    assert "no attention projections" in capsys.readouterr().err


def test_finetune_of_a_peft_adapter_against_its_base(tmp_path, capsys):
    import json

    g = torch.Generator().manual_seed(0)
    base = tmp_path / "base.safetensors"
    save_file(
        {
            "fc.weight": torch.randn(20, 16, generator=g),
            "out.weight": torch.randn(4, 20, generator=g),
        },
        str(base),
    )
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    A, B = torch.randn(2, 16, generator=g), torch.randn(20, 2, generator=g)
    save_file(
        {"base_model.model.fc.lora_A.weight": A, "base_model.model.fc.lora_B.weight": B},
        str(adapter / "adapter_model.safetensors"),
    )
    (adapter / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4})
    )
    assert main(["finetune", str(base), str(adapter), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    header = lines[0].split(",")
    rows = {
        line.split(",")[0]: dict(zip(header, line.split(","), strict=True)) for line in lines[1:]
    }
    W = sc.load_model(base).matrix("fc").double()
    delta = 2.0 * (B.double() @ A.double())
    assert float(rows["fc"]["rel_change"]) == pytest.approx(
        float(delta.norm() / W.norm()), rel=1e-5
    )
    assert rows["fc"]["delta_rank90"] in ("1", "2") and float(rows["out"]["rel_change"]) == 0
    # the adapter alone opens as its updates
    assert main(["layers", str(adapter)]) == 0
    assert "fc" in capsys.readouterr().out
