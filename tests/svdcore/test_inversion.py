"""Inversion: activation inverses, pseudo-inverse through chains, ideal outputs, optimisation."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import svdcore.zoo as zoo
from svdcore.exceptions import DataError, ExecutionError, SvdscopeError
from svdcore.inversion import (
    INVERTIBLE_ACTIVATIONS,
    NotInvertibleError,
    activation_range,
    ideal_output,
    invert_activation,
    optimise_input,
    pseudo_inverse_input,
)
from svdcore.io.chain import build_chain
from svdcore.network import Network
from svdcore.sources import DictSource

SELU_LOW = -1.0507009873554805 * 1.6732632423543772

FORWARD = {
    "identity": lambda z: z,
    "selu": torch.selu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "leaky_relu": lambda z: nn.functional.leaky_relu(z, 0.2),
    "elu": lambda z: nn.functional.elu(z, 0.7),
}


# ----------------------------------------------------------------------------- activations
@pytest.mark.parametrize("name", INVERTIBLE_ACTIVATIONS)
def test_invert_activation_round_trips_inside_the_range(name):
    z = torch.linspace(-6, 6, 121, dtype=torch.float64)
    y = FORWARD[name](z)
    inv = invert_activation(name, y, negative_slope=0.2, alpha=0.7)
    assert inv.clipped == 0 and inv.warning is None
    np.testing.assert_allclose(inv.x.numpy(), z.numpy(), rtol=1e-9, atol=1e-9)
    assert inv.x.dtype == torch.float64


@pytest.mark.parametrize(
    ("name", "y", "n_clipped", "low", "high"),
    [
        ("tanh", [-2.0, -1.0, 0.5, 1.0, 3.0], 4, -1.0, 1.0),
        ("sigmoid", [-0.1, 0.0, 0.3, 1.0], 3, 0.0, 1.0),
        ("selu", [-5.0, SELU_LOW, -1.0, 2.0], 2, SELU_LOW, math.inf),
        ("identity", [-1e9, 0.0, 1e9], 0, -math.inf, math.inf),
        ("leaky_relu", [-1e3, 5.0], 0, -math.inf, math.inf),
    ],
)
def test_values_outside_the_range_are_clipped_and_reported(name, y, n_clipped, low, high):
    inv = invert_activation(name, torch.tensor(y, dtype=torch.float64), margin=1e-6, layer="act9")
    assert inv.clipped == n_clipped
    assert (inv.low, inv.high) == pytest.approx((low, high))
    assert torch.isfinite(inv.x).all()
    if n_clipped:
        assert "act9" in inv.warning and f"{n_clipped} of {len(y)}" in inv.warning
        # clipped values land just inside the range
        back = FORWARD[name](inv.x)
        assert float(back.min()) >= low + 0.99e-6 - 1e-12
        assert float(back.max()) <= high - 0.99e-6 + 1e-12
    else:
        assert inv.warning is None


def test_activation_names_and_parameters():
    assert activation_range("logistic") == (0.0, 1.0)
    assert activation_range("selu")[0] == pytest.approx(SELU_LOW)
    assert activation_range("elu", alpha=2.0) == (-2.0, math.inf)
    with pytest.raises(NotInvertibleError, match="optimise_input"):
        invert_activation("relu", torch.zeros(2))
    with pytest.raises(NotInvertibleError, match="slope"):
        invert_activation("leaky_relu", torch.zeros(2), negative_slope=0.0)
    with pytest.raises(DataError, match="NaN"):
        invert_activation("tanh", torch.tensor([float("nan")]))
    with pytest.raises(DataError, match="empty"):
        invert_activation("tanh", torch.zeros(0))
    assert issubclass(NotInvertibleError, SvdscopeError)


# ----------------------------------------------------------------------------- pseudo-inverse
def _train_inputs(name, idx):
    x, _ = zoo.get(name).make_data(split="train")
    return x[list(idx)]


def test_single_layer_digits_is_inverted_exactly_by_eq5():
    net = zoo.load("digits")
    for x0 in _train_inputs("digits", [0, 17, 900]):
        target = net.forward(x0)[0]
        inv = pseudo_inverse_input(net, target, refine_steps=0)
        assert inv.method == "pseudo-inverse" and inv.start == "layer-by-layer"
        assert inv.steps == 0 and inv.clipped == 0 and inv.warnings == ()
        assert inv.x.shape == (64,)
        np.testing.assert_allclose(inv.output.numpy(), target.double().numpy(), atol=1e-5)
        np.testing.assert_allclose(net.forward(inv.x.float())[0].numpy(), target, atol=1e-5)
        # W^+ gives the minimum-norm input: no longer than the one that produced the target
        assert float(inv.x.norm()) <= float(x0.norm()) + 1e-6
        assert inv.distance <= 1e-10


def test_five_layer_reachable_targets_are_reproduced():
    net = zoo.load("digits-5layer")
    for x0 in _train_inputs("digits-5layer", [0, 5, 700]):
        target = net.forward(x0)[0]
        inv = pseudo_inverse_input(net, target)
        np.testing.assert_allclose(inv.output.numpy(), target.double().numpy(), atol=1e-5)
        out32 = net.forward(inv.x.float())[0]
        np.testing.assert_allclose(out32.numpy(), target.numpy(), atol=1e-4)
        assert inv.distance <= inv.start_distance
        # eq. 5 alone misses (64 -> 256 is not onto); the refinement is reported
        assert inv.start_distance > 1.0 and inv.steps > 0
        assert any("Gauss-Newton" in w for w in inv.warnings)
        assert sum(inv.clipped_by_layer.values()) == inv.clipped
        assert inv.clipped_by_layer["act5"] == 0  # the target itself is in SELU's range
    eq5_only = pseudo_inverse_input(net, target, refine_steps=0)
    assert eq5_only.distance == pytest.approx(inv.start_distance)
    assert eq5_only.steps == 0 and eq5_only.start == "layer-by-layer"


def test_unreachable_target_is_clipped_with_a_warning():
    net = zoo.load("digits")
    target = net.forward(_train_inputs("digits", [3]))[0].double()
    target[2] = -5.0  # below SELU's minimum -1.7581
    inv = pseudo_inverse_input(net, target)
    assert inv.clipped == 1 and inv.clipped_by_layer == {"act1": 1}
    assert any("act1" in w and "clipped" in w for w in inv.warnings)
    assert float(inv.output[2]) == pytest.approx(SELU_LOW, abs=1e-6)
    others = [i for i in range(10) if i != 2]
    np.testing.assert_allclose(inv.output[others].numpy(), target[others].numpy(), atol=1e-6)
    assert inv.distance == pytest.approx(SELU_LOW + 5.0, abs=1e-5)


def test_hand_built_chains_with_other_activations():
    torch.manual_seed(0)
    seq = nn.Sequential(
        OrderedDict(
            flat=nn.Flatten(),
            fc1=nn.Linear(6, 5),
            act1=nn.Tanh(),
            fc2=nn.Linear(5, 4),
            act2=nn.LeakyReLU(0.1),
            fc3=nn.Linear(4, 3, bias=False),
            act3=nn.Sigmoid(),
        )
    ).eval()
    x0 = torch.randn(1, 2, 3)
    with torch.no_grad():
        target = seq(x0)[0]
    inv = pseudo_inverse_input(seq, target)
    np.testing.assert_allclose(inv.output.numpy(), target.double().numpy(), atol=1e-6)
    chain = build_chain(
        {"a.weight": torch.randn(4, 8), "b.weight": torch.randn(2, 4)}, activation="elu"
    )
    net = Network.from_module(chain, input_shape=(8,))
    with torch.no_grad():
        target = chain(torch.randn(1, 8))[0]
    inv = pseudo_inverse_input(net, target)
    np.testing.assert_allclose(inv.output.numpy(), target.double().numpy(), atol=1e-5)


class _SkipNet(nn.Module):
    """Children look like a chain, but forward adds a skip connection."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.act1 = nn.Tanh()
        self.fc2 = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc2(self.act1(self.fc1(x))) + x


def test_non_invertible_networks_are_refused_with_the_alternative():
    with pytest.raises(NotInvertibleError, match=r"conv1.*optimise_input"):
        pseudo_inverse_input(zoo.load("digits-cnn"), torch.zeros(10))
    relu = build_chain(
        {"fc1.weight": torch.randn(5, 4), "fc2.weight": torch.randn(3, 5)}, activation="relu"
    )
    with pytest.raises(NotInvertibleError, match=r"ReLU\) is not invertible"):
        pseudo_inverse_input(relu, torch.zeros(3))
    with pytest.raises(NotInvertibleError, match="skip connections"):
        pseudo_inverse_input(_SkipNet().eval(), torch.zeros(4))
    weights_only = Network(DictSource({"fc1.weight": torch.randn(3, 4)}), name="w")
    with pytest.raises(ExecutionError, match="weights only"):
        pseudo_inverse_input(weights_only, torch.zeros(3))


def test_bad_targets():
    net = zoo.load("digits")
    with pytest.raises(DataError, match=r"9 values.*10 outputs"):
        pseudo_inverse_input(net, torch.zeros(9))
    with pytest.raises(DataError, match="NaN"):
        pseudo_inverse_input(net, torch.full((10,), float("nan")))
    with pytest.raises(DataError, match="one output vector"):
        pseudo_inverse_input(net, torch.zeros(2, 10))


# ----------------------------------------------------------------------------- ideal output
def test_ideal_output_is_class_max_and_min_elsewhere():
    out = torch.tensor([[1.0, 5.0, 0.0], [3.0, -1.0, 2.0], [9.0, 0.5, -4.0], [2.0, 7.0, 1.0]])
    y = torch.tensor([0, 1, 2, 0])
    ideal = ideal_output(out, y, 0)
    # output 0 over class-0 images (rows 0 and 3): max 2; others: minima over all rows
    assert ideal.tolist() == [2.0, -1.0, -4.0]
    assert ideal_output(out.numpy(), y.numpy(), 2).tolist() == [1.0, -1.0, -4.0]
    with pytest.raises(DataError, match="class index"):
        ideal_output(out, y, 3)
    with pytest.raises(DataError, match="no training image has class 1"):
        ideal_output(out, torch.tensor([0, 0, 2, 2]), 1)
    with pytest.raises(DataError, match="one class label per sample"):
        ideal_output(out, torch.tensor([0, 1]), 0)


# ----------------------------------------------------------------------------- optimisation
@pytest.fixture(scope="module")
def five_layer():
    net = zoo.load("digits-5layer")
    x, y = zoo.get("digits-5layer").make_data(split="train")
    return net, x, y


@pytest.mark.parametrize("start", ["avg-img", "min-img", "avg-min-img"])
def test_optimisation_lowers_the_distance_from_every_start(five_layer, start):
    net, x, y = five_layer
    before = {k: v.clone() for k, v in net.module.state_dict().items()}
    calls = []
    res = optimise_input(
        net,
        start=start,
        x_train=x,
        y_train=y,
        cls=3,
        steps=40,
        lr=0.02,
        progress=lambda step, total, d: calls.append((step, total, d)),
    )
    assert res.method == "optimise" and res.start == start and not res.stopped
    assert res.distance < 0.7 * res.start_distance  # measured: about 0.3x after 40 steps
    assert res.steps == 40 and len(res.history) == 41 and res.history[0] == res.start_distance
    assert [c[0] for c in calls] == list(range(1, 41)) and all(c[1] == 40 for c in calls)
    assert res.distance == pytest.approx(min(res.history), rel=1e-5)
    ideal = ideal_output(net.forward(x), y, 3)
    # the target comes from the engine's float64 copy, net.forward runs in float32: they
    # agree to float32 rounding (measured 1.1e-7 relative)
    np.testing.assert_allclose(res.target.numpy(), ideal.numpy(), rtol=1e-6)
    np.testing.assert_allclose(res.output.numpy(), net.forward(res.x.float())[0].numpy(), atol=1e-5)
    assert res.x.shape == (64,)
    # the weights are frozen and untouched
    for k, v in net.module.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in net.module.parameters())


def test_start_images_are_the_documented_ones(five_layer):
    net, x, y = five_layer
    ideal = ideal_output(net.forward(x), y, 7).float()
    dist = (net.forward(x) - ideal).norm(dim=1)
    r = optimise_input(net, ideal, start="min-img", x_train=x, steps=1)
    assert r.start_distance == pytest.approx(float(dist.min()), rel=1e-5)
    k = math.ceil(0.25 * len(x))
    avg_min = x[torch.topk(dist, k, largest=False).indices].mean(0)
    r = optimise_input(net, ideal, start="avg-min-img", x_train=x, steps=1)
    want = float((net.forward(avg_min)[0] - ideal).norm())
    assert r.start_distance == pytest.approx(want, rel=1e-5)
    avg = x[y == 7].mean(0)
    r = optimise_input(net, ideal, start="avg-img", x_train=x, y_train=y, cls=7, steps=1)
    assert r.start_distance == pytest.approx(float((net.forward(avg)[0] - ideal).norm()), rel=1e-5)


def test_cancellation_stops_early(five_layer):
    net, x, y = five_layer
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 5

    res = optimise_input(net, x_train=x, y_train=y, cls=1, steps=500, should_stop=should_stop)
    assert res.stopped and res.steps == 5 and len(res.history) == 6
    assert res.distance <= res.start_distance


def test_optimisation_of_a_cnn_with_bounds():
    net = zoo.load("digits-cnn")
    x, y = zoo.get("digits-cnn").make_data(split="train", n=400, seed=1)
    res = optimise_input(
        net, x_train=x, y_train=y, cls=0, start="avg-img", steps=30, lr=0.05, bounds=(0.0, 1.0)
    )
    assert res.x.shape == (1, 8, 8)
    assert float(res.x.min()) >= 0.0 and float(res.x.max()) <= 1.0
    assert res.distance < res.start_distance
    given = optimise_input(net, res.target, start=res.x, x_train=x, steps=1)
    assert given.start == "given" and given.start_distance == pytest.approx(res.distance, rel=1e-4)


def test_optimisation_refuses_bad_arguments(five_layer):
    net, x, _ = five_layer
    with pytest.raises(DataError, match="unknown start"):
        optimise_input(net, torch.zeros(10), start="best-img", x_train=x)
    with pytest.raises(DataError, match="y_train and cls"):
        optimise_input(net, x_train=x)
    with pytest.raises(DataError, match="avg-img"):
        optimise_input(net, torch.zeros(10), start="avg-img", x_train=x)
    with pytest.raises(DataError, match=r"\(63,\).*\(64,\)"):
        optimise_input(net, torch.zeros(10), start="min-img", x_train=torch.zeros(5, 63))
    with pytest.raises(DataError, match="steps"):
        optimise_input(net, torch.zeros(10), start="min-img", x_train=x, steps=0)
    with pytest.raises(DataError, match="lr"):
        optimise_input(net, torch.zeros(10), start="min-img", x_train=x, lr=-1.0)
    with pytest.raises(DataError, match="10 outputs"):
        optimise_input(net, torch.zeros(3), start="min-img", x_train=x)
    weights_only = Network(DictSource({"fc1.weight": torch.randn(3, 4)}), name="w")
    with pytest.raises(ExecutionError):
        optimise_input(weights_only, torch.zeros(3), start="min-img", x_train=torch.zeros(2, 4))
