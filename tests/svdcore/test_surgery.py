"""svdcore.surgery: local affine maps, spectral contributions, reductions, contraction."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.sources import DictSource
from svdcore.surgery import (
    contract,
    depth_evolution,
    local_affine,
    normalise,
    prune,
    sign_reduce,
    singular_vector_similarity,
    spectral_surgery,
    threshold,
)


def _chain(act: type[nn.Module], seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    dims = [12, 16, 10, 6]
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(act())
    net = nn.Sequential(*layers)
    with torch.no_grad():  # biases large enough to matter
        for m in net:
            if isinstance(m, nn.Linear):
                m.bias.uniform_(-0.5, 0.5)
    return net


class ResCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h) + h)  # a skip around conv2
        return self.fc(h.flatten(1))


def _x(n, shape, seed=2):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("act", [nn.ReLU, nn.LeakyReLU, nn.Tanh], ids=["relu", "leaky", "tanh"])
def test_contributions_plus_bias_reproduce_the_output_at_every_split(act):
    module = _chain(act)
    net = sc.Network.from_module(module, input_shape=(12,))
    x = _x(5, (12,))
    y_ref = module.double()(x.double()).detach()
    module.float()
    splits = [name for name, m in module.named_children()]
    for split in splits:
        results = spectral_surgery(net, x, split=split, output=1)
        assert len(results) == 5
        for i, res in enumerate(results):
            np.testing.assert_allclose(res.reconstruction.numpy(), y_ref[i].numpy(), atol=1e-10)
            np.testing.assert_allclose(res.y.numpy(), y_ref[i].numpy(), atol=1e-12)
            assert float(res.bypass.abs().max()) < 1e-10  # a chain has no bypass
            # contributions: alpha[j, k] = (L U)[j, k] c_k with c_k = s_k v_k . x
            c = res.S * (res.V.T @ res.x)
            np.testing.assert_allclose(res.coeffs.numpy(), c.numpy(), atol=1e-12)
            ref = (res.L @ res.U) * c[None, :]
            np.testing.assert_allclose(res.alpha.numpy(), ref.numpy(), atol=1e-12)
            V = res.V.numpy()
            np.testing.assert_allclose(V.T @ V, np.eye(V.shape[1]), atol=1e-10)


@pytest.mark.parametrize("act", [nn.ReLU, nn.LeakyReLU])
def test_bias_terms_sum_to_the_affine_bias_for_piecewise_linear_nets(act):
    net = sc.Network.from_module(_chain(act), input_shape=(12,))
    aff = local_affine(net, _x(6, (12,)))
    assert set(aff.layer_bias) == {"0", "2", "4"}
    total = sum(aff.layer_bias.values())
    np.testing.assert_allclose(total.numpy(), aff.bias.numpy(), atol=1e-10)
    assert float(aff.remainder.abs().max()) < 1e-10
    np.testing.assert_allclose(
        (torch.einsum("bnm,bm->bn", aff.J, aff.x) + aff.bias).numpy(), aff.y.numpy(), atol=1e-12
    )


def test_smooth_activations_report_the_remainder():
    net = sc.Network.from_module(_chain(nn.Tanh), input_shape=(12,))
    aff = local_affine(net, _x(4, (12,)))
    assert float(aff.remainder.abs().max()) > 1e-3  # tanh is not piecewise linear
    np.testing.assert_allclose(
        (sum(aff.layer_bias.values()) + aff.remainder).numpy(), aff.bias.numpy(), atol=1e-12
    )


def test_batched_jacobians_equal_per_sample_autograd():
    module = ResCNN()
    net = sc.Network.from_module(module, input_shape=(2, 5, 5))
    x = _x(4, (2, 5, 5))
    aff = local_affine(net, x)
    m64 = ResCNN().double()
    m64.load_state_dict(module.state_dict())
    for i in range(4):
        J = torch.autograd.functional.jacobian(lambda v: m64(v[None])[0], x[i].double())
        np.testing.assert_allclose(aff.J[i].numpy(), J.reshape(3, -1).numpy(), atol=1e-12)


def test_residual_network_split_inside_the_skip_reports_the_bypass():
    net = sc.Network.from_module(ResCNN(), input_shape=(2, 5, 5))
    x = _x(3, (2, 5, 5))
    for split in ("conv1", "conv2", "fc"):
        for res in spectral_surgery(net, x, split=split):
            np.testing.assert_allclose(res.reconstruction.numpy(), res.y.numpy(), atol=1e-10)
            assert float(res.remainder.abs().max()) < 1e-10  # ReLU: exact bias terms
    inside = spectral_surgery(net, x[0], split="conv2")
    assert float(inside.bypass.abs().max()) > 1e-6  # the skip around conv2 bypasses it
    assert inside.U.shape == (100, 50) and inside.V.shape == (50, 50)
    outside = spectral_surgery(net, x[0], split="conv1")
    assert float(outside.bypass.abs().max()) < 1e-10


def test_sign_reduction_follows_eq_21_and_preserves_the_sum():
    a = np.array([5.0, -1.0, 3.0, -4.0, 0.5, -0.2, 2.0])
    red = sign_reduce(a)
    # round 1: positives 5, 3, 2, 0.5 with negatives -4, -1, -0.2 -> 1, 2, 1.8, 0.5 (all > 0)
    np.testing.assert_allclose(np.sort(red.values), np.sort([1.0, 2.0, 1.8, 0.5]))
    assert red.rounds == 1 and np.all(red.values > 0)
    assert red.values.sum() == pytest.approx(a.sum())
    assert red.proportions.sum() == pytest.approx(1.0)
    groups = {tuple(sorted(g)) for g in red.groups}
    assert (0, 3) in groups and (1, 2) in groups and (4,) in groups
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = rng.standard_normal(rng.integers(1, 40)) * rng.uniform(0.1, 10)
        r = sign_reduce(v)
        assert np.all(r.values >= 0) or np.all(r.values <= 0)
        assert r.values.sum() == pytest.approx(v.sum(), abs=1e-10)
        assert sorted(i for g in r.groups for i in g) == list(range(v.size))
    with pytest.raises(sc.DataError, match="finite"):
        sign_reduce(np.array([1.0, np.nan]))


def test_normalise_threshold_and_prune():
    np.testing.assert_allclose(normalise([1.0, 3.0]), [0.25, 0.75])
    with pytest.raises(sc.DataError, match="sum to zero"):
        normalise([1.0, -1.0])
    a = np.array([0.1, -2.0, 0.5, 3.0])
    np.testing.assert_array_equal(threshold(a, magnitude=0.5), [False, True, True, True])
    np.testing.assert_array_equal(threshold(a, quantile=0.75), [False, False, False, True])
    with pytest.raises(sc.DataError, match="exactly one"):
        threshold(a)
    net = sc.Network.from_module(_chain(nn.ReLU), input_shape=(12,))
    res = spectral_surgery(net, _x(1, (12,))[0], split="2", output=2)
    r = res.alpha.shape[1]
    full = prune(res, r)
    np.testing.assert_allclose(full.y_pruned, res.y.numpy(), atol=1e-10)
    assert full.relative_change < 1e-10
    none = prune(res, 0)
    np.testing.assert_allclose(none.y_pruned, (res.bias + res.bypass).numpy())
    top = prune(res, 2)
    order = np.argsort(-np.abs(res.alpha[2].numpy()))
    assert set(top.kept) == set(order[:2])
    with pytest.raises(sc.DataError, match="k must lie"):
        prune(res, r + 1)


def test_feature_wise_contraction_matches_einsum():
    rng = np.random.default_rng(3)
    shape = (3, 4, 5)
    phi = rng.standard_normal((60, 7))
    x = rng.standard_normal(shape)
    out = contract(phi, x, input_shape=shape)
    ref = np.einsum("chwk,chw->khw", phi.reshape(3, 4, 5, 7), x)
    np.testing.assert_allclose(out, ref)
    flat = contract(phi[:20, 0], x.reshape(-1)[:20], input_shape=(4, 5))  # no channel axis
    np.testing.assert_allclose(flat[0], (phi[:20, 0] * x.reshape(-1)[:20]).reshape(4, 5))
    with pytest.raises(sc.DataError, match="60 rows"):
        contract(phi[:10], x, input_shape=shape)


def test_dataset_similarity_and_depth_evolution():
    net = sc.Network.from_module(_chain(nn.ReLU), input_shape=(12,))
    x = _x(7, (12,))
    seen = []
    sim = singular_vector_similarity(
        net, x, split="2", batch_size=3, progress=lambda i, n: seen.append((i, n))
    )
    assert sim.shape == (7, 7)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-10)
    np.testing.assert_allclose(sim, sim.T, atol=1e-12)
    assert np.all(np.abs(sim) <= 1 + 1e-10) and seen[-1] == (7, 7)
    evo = depth_evolution(net, x[0], splits=["0", "2", "4"])
    assert [e.split for e in evo] == ["0", "2", "4"]
    assert all(np.all(np.diff(e.S.numpy()) <= 1e-12) for e in evo)


def test_zoo_digits_cnn_surgery_is_exact():
    net = sc.zoo.load("digits-cnn")
    x, _ = sc.zoo.get("digits-cnn").make_data(split="test")
    for res in spectral_surgery(net, x[:8], split="conv2"):
        np.testing.assert_allclose(res.reconstruction.numpy(), res.y.numpy(), atol=1e-9)
        assert float(res.remainder.abs().max()) < 1e-9


def test_errors_are_clear():
    weights_only = sc.Network(DictSource({"fc.weight": torch.randn(3, 4)}), name="w")
    with pytest.raises(sc.ExecutionError, match="weights only"):
        spectral_surgery(weights_only, torch.randn(4), split="fc")
    net = sc.Network.from_module(_chain(nn.ReLU), input_shape=(12,))
    with pytest.raises(sc.LayerError, match="no module 'nope'"):
        spectral_surgery(net, torch.randn(12), split="nope")
    with pytest.raises(sc.DataError, match="out of range"):
        spectral_surgery(net, torch.randn(12), split="2", output=6)
    with pytest.raises(sc.DataError, match="do not fit"):
        spectral_surgery(net, torch.randn(3, 5), split="2")


def test_surgery_on_a_torch_export_archive_and_an_executable_chain(tmp_path):
    module = _chain(nn.ReLU).eval()
    ep = torch.export.export(module, (torch.randn(2, 12),))  # traced with a fixed batch of 2
    torch.export.save(ep, tmp_path / "m.pt2")
    torch.save(module.state_dict(), tmp_path / "m.pt")
    x = _x(3, (12,))
    ref = module.double()(x.double()).detach()
    module.float()
    for net in (
        sc.load_model(tmp_path / "m.pt2"),
        sc.load_model(tmp_path / "m.pt", activation="relu"),
    ):
        for res, y in zip(spectral_surgery(net, x, split="2"), ref, strict=True):
            np.testing.assert_allclose(res.y.numpy(), y.numpy(), atol=1e-10)
            np.testing.assert_allclose(res.reconstruction.numpy(), y.numpy(), atol=1e-10)
            assert float(res.remainder.abs().max()) < 1e-10


def test_surgery_round_trips_through_numpy():
    from svdcore.surgery import Surgery

    net = sc.Network.from_module(_chain(nn.ReLU), input_shape=(12,))
    res = spectral_surgery(net, _x(1, (12,))[0], split="2", output=1)
    arrays = res.to_numpy()
    assert all(isinstance(arrays[k], np.ndarray) for k in ("x", "alpha", "U", "L"))
    back = Surgery.from_arrays(**arrays)
    np.testing.assert_allclose(back.alpha.numpy(), res.alpha.numpy(), atol=0)
    assert back.split == "2" and back.output == 1 and set(back.layer_bias) == set(res.layer_bias)
    lean = {k: v for k, v in arrays.items() if k not in ("U", "L")}
    p, q = prune(Surgery.from_arrays(**lean), 2), prune(res, 2)
    np.testing.assert_allclose(p.y_pruned, q.y_pruned, atol=1e-12)
    with pytest.raises(sc.DataError, match="missing"):
        Surgery.from_arrays(split="2", input_shape=(12,), x=arrays["x"])
