"""Inversion by optimisation on an exported ResNet-shaped CNN (conv stem + eval-mode
BatchNorm + ReLU, two residual blocks, global average pool, Linear): it runs through the
Jacobian engine's network function, lowers the distance, and gives the same result for the
module itself, its batch-1 archive and its batch-8 archive; the pseudo-inverse refuses it
with a sentence naming the optimisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.inversion import (
    chain_refusal,
    ideal_output,
    optimise_input,
    pseudo_inverse_input,
    training_outputs,
)
from svdcore.inversion.targets import forward_batches
from svdcore.jacobian import network_function

SHAPE = (1, 12, 12)
N_TRAIN = 61  # not a multiple of 8: the last batch-8 chunk is padded
# Agreement of results reached along different float64 paths (the module, a batch-1 and a
# batch-8 program: other conv kernels, so other rounding) after the same Adam steps
# (measured: 1e-15 relative for the archives, 3e-14 between the module and its archive).
RTOL = 1e-5


class _Block(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class _ResNetish(nn.Module):
    def __init__(self, channels: int = 6):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.layer1 = _Block(channels)
        self.layer2 = _Block(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layer2(self.layer1(self.stem(x)))).flatten(1))


def resnetish(seed: int = 0) -> nn.Module:
    """The seeded CNN in eval mode, with BatchNorm statistics that matter."""
    torch.manual_seed(seed)
    module = _ResNetish()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return module.eval()


def training_data(n: int = N_TRAIN) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(1))
    return x, torch.arange(n) % 10


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """(module, {batch: path of its .pt2 archive}, x_train, y_train)."""
    module = resnetish()
    folder = tmp_path_factory.mktemp("resnetish")
    paths = {}
    for batch in (1, 8):
        ep = torch.export.export(module, (torch.randn(batch, *SHAPE),))
        paths[batch] = folder / f"b{batch}.pt2"
        torch.export.save(ep, paths[batch])
    x, y = training_data()
    return module, paths, x, y


def _run(net, target, x, y, **kw):
    opts = {"start": "min-img", "x_train": x, "y_train": y, "cls": 4, "steps": 40, "lr": 0.05}
    return optimise_input(net, target, **(opts | kw))


def _assert_same(a, b, rtol: float = RTOL) -> None:
    """Same input (norm-wise within rtol), output, distance and history."""
    assert a.start == b.start and a.steps == b.steps
    dx = float((a.x - b.x).norm())
    assert dx <= rtol * float(b.x.norm())
    np.testing.assert_allclose(a.output.numpy(), b.output.numpy(), rtol=rtol, atol=1e-12)
    assert a.distance == pytest.approx(b.distance, rel=rtol)
    np.testing.assert_allclose(np.array(a.history), np.array(b.history), rtol=rtol)


def test_optimisation_lowers_the_distance_on_the_exported_cnn(cnn):
    _, paths, x, y = cnn
    net = sc.load_model(paths[8])
    assert net.static_batch == 8 and net.input_shape == SHAPE
    calls = []
    res = optimise_input(
        net,
        start="avg-img",
        x_train=x,
        y_train=y,
        cls=3,
        steps=60,
        lr=0.05,
        bounds=(0.0, 1.0),
        progress=lambda step, total, d: calls.append(step),
    )
    assert res.method == "optimise" and res.start == "avg-img" and res.steps == 60
    assert calls == list(range(1, 61)) and len(res.history) == 61
    assert res.distance <= res.start_distance
    assert res.distance < 0.5 * res.start_distance  # measured: 0.36x after 60 steps
    assert res.x.shape == SHAPE and res.x.dtype == torch.float64
    assert float(res.x.min()) >= 0.0 and float(res.x.max()) <= 1.0
    # the output reported is the archive's own (float32) output at x, to float32 rounding
    out32 = net.forward(res.x.float())[0].double()
    np.testing.assert_allclose(res.output.numpy(), out32.numpy(), rtol=0, atol=1e-5)
    # the target is the ideal output of the training outputs
    ideal = ideal_output(net.forward(x), y, 3)
    np.testing.assert_allclose(res.target.numpy(), ideal.numpy(), rtol=1e-5, atol=1e-6)


def test_batch_8_and_batch_1_archives_give_the_same_result(cnn):
    module, paths, x, y = cnn
    target = ideal_output(module(x).detach(), y, 4)
    one = _run(sc.load_model(paths[1]), target, x, y, start="avg-img")
    eight = _run(sc.load_model(paths[8]), target, x, y, start="avg-img")
    assert one.distance < 0.5 * one.start_distance  # measured: 0.43x after 40 steps
    _assert_same(eight, one)
    for start in ("min-img", "avg-min-img"):  # the starts that run the training data
        _assert_same(
            _run(sc.load_model(paths[8]), target, x, y, start=start, steps=5),
            _run(sc.load_model(paths[1]), target, x, y, start=start, steps=5),
        )


def test_the_module_and_its_archive_give_the_same_result(cnn):
    module, paths, x, y = cnn
    before = {k: v.clone() for k, v in module.state_dict().items()}
    eager = _run(module, None, x, y)  # the ideal output computed inside, from x and y
    archive = _run(sc.load_model(paths[8]), None, x, y)
    _assert_same(archive, eager)
    wrapped = _run(sc.Network.from_module(module, input_shape=SHAPE), None, x, y)
    _assert_same(wrapped, eager, rtol=1e-12)  # the same float64 copy: the same numbers
    for k, v in module.state_dict().items():  # the weights are untouched
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in module.parameters())


def test_training_outputs_run_in_padded_chunks_one_sample_per_row(cnn):
    module, paths, x, _ = cnn
    with torch.no_grad():
        want = module.double()(x.double())
    module.float()
    for batch, path in paths.items():
        fn = network_function(sc.load_model(path))
        assert fn.rows == batch
        # a budget of a few samples per chunk: several chunks, the last one padded
        small = forward_batches(fn, x, budget_bytes=20 * 8 * (x[0].numel() + fn.width(x[0])))
        whole = forward_batches(fn, x)
        for got in (small, whole):
            assert got.shape == (N_TRAIN, 10) and got.dtype == torch.float64
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-12)
        with fn.lock, torch.no_grad():
            rows = [fn.one(x[i].double()) for i in (0, N_TRAIN - 1)]
        np.testing.assert_allclose(torch.stack(rows).numpy(), want[[0, -1]].numpy(), atol=1e-12)
        public = training_outputs(sc.load_model(path), x.numpy().reshape(N_TRAIN, -1))
        np.testing.assert_allclose(public.numpy(), want.numpy(), rtol=0, atol=1e-12)


def test_given_training_outputs_are_used_as_they_are(cnn):
    _, paths, x, y = cnn
    net = sc.load_model(paths[8])
    outputs = training_outputs(net, x)
    given = _run(net, None, x, y, steps=5, outputs_train=outputs)
    computed = _run(net, None, x, y, steps=5)
    _assert_same(given, computed, rtol=1e-12)
    with pytest.raises(sc.DataError, match=r"outputs_train of shape \(60, 10\)"):
        _run(net, None, x, y, steps=1, outputs_train=outputs[:60])
    with pytest.raises(sc.DataError, match=r"samples of shape \(1, 12, 13\)"):
        training_outputs(net, torch.zeros(4, 1, 12, 13))


def test_the_pseudo_inverse_refuses_the_cnn_with_the_alternative(cnn):
    _, paths, _, _ = cnn
    net = sc.load_model(paths[1])
    why = chain_refusal(net)
    assert why is not None and "part of a torch.export program" in why
    assert "optimise_input" in why
    with pytest.raises(sc.DataError, match="cannot be inverted layer by layer") as err:
        pseudo_inverse_input(net, torch.zeros(10))
    assert isinstance(err.value, sc.NotInvertibleError) and str(err.value) == why
    assert chain_refusal(sc.zoo.load("digits")) is None  # a chain: the pseudo-inverse applies
    relu = chain_refusal(resnetish())
    assert relu is not None and "stem.0" in relu and "is a Conv2d" in relu
