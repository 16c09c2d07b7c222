"""Short training runs per family: loadable output, report, sidecar, determinism."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import svdcore.zoo as zoo

TINY = {
    "digits": {"epochs": 2},
    "digits-5layer": {"epochs": 1},
    "deernet": {"n_train": 1024, "n_test": 256, "epochs": 1, "batch_size": 256},
}


def _train(name, path, seed=0):
    lines: list[str] = []
    report = zoo.train(name, out=path, seed=seed, progress=lines.append, **TINY[name])
    return report, lines


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_training_run_writes_loadable_weights(name, tmp_path):
    before = torch.get_num_threads()
    path = tmp_path / "sub" / f"{name}.safetensors"
    report, lines = _train(name, path)
    assert torch.get_num_threads() == before
    assert isinstance(report, zoo.TrainReport)
    assert report.name == name and report.path == path and path.is_file()
    assert report.seconds > 0
    assert lines and name in lines[-1]
    module = zoo.get(name).build()
    module.load_state_dict(load_file(str(path)), strict=True)
    record = json.loads(path.with_suffix(".json").read_text("utf-8"))
    assert record["metrics"] == pytest.approx(report.metrics)
    assert record["settings"]["seed"] == 0
    if name == "deernet":
        assert set(report.metrics) == {"test_mse", "baseline_mse", "mse_ratio"}
        assert 0 < report.metrics["test_mse"] < 1
        assert report.metrics["baseline_mse"] > 0
    else:
        assert {"test_accuracy", "train_accuracy", "fc1_condition_number"} <= set(report.metrics)
        assert 0.0 <= report.metrics["test_accuracy"] <= 1.0
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("name", ["digits", "deernet"])
def test_training_is_deterministic_in_seed(name, tmp_path):
    a, _ = _train(name, tmp_path / "a.safetensors", seed=3)
    b, _ = _train(name, tmp_path / "b.safetensors", seed=3)
    c, _ = _train(name, tmp_path / "c.safetensors", seed=4)
    wa, wb, wc = (load_file(str(r.path)) for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.metrics == b.metrics
    assert not torch.equal(wa["fc1.weight"], wc["fc1.weight"])
