"""svdcore.wiretap: the signals of each position and source, and descramble_layer."""

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.descramble import descramble
from svdcore.sources import DictSource
from svdcore.wiretap import descramble_layer, layer_gram


class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(10, 7)
        self.act1 = nn.Tanh()
        self.fc2 = nn.Linear(7, 5)
        self.act2 = nn.Sigmoid()

    def forward(self, x):
        return self.act2(self.fc2(self.act1(self.fc1(x))))


@pytest.fixture()
def chain():
    mod = Chain().double().float()
    return mod, sc.Network.from_module(mod, input_shape=(10,), name="chain")


def _x(n=300, seed=1):
    return torch.randn(n, 10, generator=torch.Generator().manual_seed(seed))


def test_limit_and_linear_dataset_grams(chain):
    mod, net = chain
    W = mod.fc1.weight.detach().double()
    lim = layer_gram(net, "fc1", source="limit")
    np.testing.assert_allclose(lim.S.numpy(), (W @ W.T).numpy(), rtol=1e-12)
    x = _x()
    ds = layer_gram(net, "fc1", source="dataset", x=x, batch_size=64)  # several batches
    Y = W @ x.double().T  # W h, bias left out
    np.testing.assert_allclose(ds.S.numpy(), (Y @ Y.T / 300).numpy(), rtol=1e-5, atol=1e-6)
    assert ds.n_signals == 300
    # second layer, linear position: the input is act1(fc1(x))
    h = mod.act1(mod.fc1(x)).detach().double()
    Y2 = mod.fc2.weight.detach().double() @ h.T
    ds2 = layer_gram(net, "fc2", source="dataset", x=x)
    np.testing.assert_allclose(ds2.S.numpy(), (Y2 @ Y2.T / 300).numpy(), rtol=1e-5, atol=1e-6)


def test_activation_and_noise_grams(chain):
    mod, net = chain
    x = _x()
    act = layer_gram(net, "fc1", position="activation", source="dataset", x=x)
    A = mod.act1(mod.fc1(x)).detach().double().T
    np.testing.assert_allclose(act.S.numpy(), (A @ A.T / 300).numpy(), rtol=1e-5, atol=1e-6)
    W = mod.fc1.weight.detach().double()
    noise = layer_gram(net, "fc1", source="noise", n_noise=200_000, seed=3)
    np.testing.assert_allclose(noise.S.numpy(), (W @ W.T).numpy(), atol=0.05 * float(W.norm() ** 2))
    act_noise = layer_gram(net, "fc1", position="activation", source="noise", n_noise=500, seed=3)
    assert act_noise.S.shape == (7, 7) and bool((torch.linalg.eigvalsh(act_noise.S) > -1e-12).all())


def test_second_layer_form_follows_amey(chain):
    mod, net = chain
    x = _x()
    wg = layer_gram(net, "fc1", position="second", source="dataset", x=x)
    sig = mod.act1(mod.fc1(x)).detach().double().T  # (7, N), un-normalised
    W2 = mod.fc2.weight.detach().double()
    c = float(torch.linalg.matrix_norm(sig, ord=2) / torch.linalg.matrix_norm(W2.T, ord=2))
    assert wg.c == pytest.approx(c, rel=1e-5) and wg.next_layer == "fc2"
    # S is the Gram of [c W2^T, sigma(W1 X)] divided by N: the same P as Amey's signals
    E = c * W2.T
    ref = (sig @ sig.T + E @ E.T) / 300
    np.testing.assert_allclose(wg.S.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    res = descramble_layer(net, "fc1", position="second", source="dataset", x=x)
    direct = descramble(torch.cat([E, sig], dim=1))
    assert res.result.objective * 300 == pytest.approx(direct.objective, rel=1e-5)
    # wiretapping inserts P^T P between the activation and W2: W2 P^T (P a) = W2 a
    P = res.result.P
    a = mod.act1(mod.fc1(x)).detach().double().T
    np.testing.assert_allclose((res.W_next_Pt @ (P @ a)).numpy(), (W2 @ a).numpy(), atol=1e-10)
    np.testing.assert_allclose(res.W_next_Pt.numpy(), (W2 @ P.T).numpy())
    np.testing.assert_allclose(res.PW.numpy(), (P @ mod.fc1.weight.detach().double()).numpy())


def test_jacobian_source_is_exact_for_a_linear_network():
    torch.manual_seed(2)
    lin = nn.Sequential(nn.Linear(6, 4))
    net = sc.Network.from_module(lin, input_shape=(6,))
    x = torch.randn(50, 6)
    jac = layer_gram(net, "0", source="jacobian", x=x)
    ds = layer_gram(net, "0", source="dataset", x=x)
    np.testing.assert_allclose(jac.S.numpy(), ds.S.numpy(), rtol=1e-5, atol=1e-6)


def test_jacobian_source_matches_a_manual_linearisation(chain):
    mod, net = chain
    x = _x(80)
    wg = layer_gram(net, "fc2", position="activation", source="jacobian", x=x)
    m64 = Chain().double()
    m64.load_state_dict(mod.state_dict())
    xb = x.double()
    x_bar = xb.mean(0)
    f_bar = m64(x_bar[None])[0].detach()
    J = torch.func.jacrev(lambda v: m64(v[None])[0])(x_bar).detach()
    Y = f_bar[:, None] + J @ (xb - x_bar).T
    np.testing.assert_allclose(wg.S.numpy(), (Y @ Y.T / 80).numpy(), rtol=1e-8, atol=1e-10)
    assert next(mod.parameters()).dtype == torch.float32  # the shared module was not touched


def test_conv_layer_dataset_signals_use_every_position():
    torch.manual_seed(3)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3))
    net = sc.Network.from_module(conv, input_shape=(2, 5, 5))
    x = torch.randn(4, 2, 5, 5)
    wg = layer_gram(net, "0", source="dataset", x=x)
    out = conv(x).detach() - conv[0].bias.detach()[None, :, None, None]
    Y = out.permute(1, 0, 2, 3).reshape(3, -1).double()
    assert wg.n_signals == 4 * 9
    np.testing.assert_allclose(wg.S.numpy(), (Y @ Y.T / 36).numpy(), rtol=1e-5, atol=1e-6)


def test_descramble_layer_on_deernet_noise_limit():
    net = sc.zoo.load("deernet")
    res = descramble_layer(net, "fc1", source="limit")
    r = res.phi.shape[0]
    assert res.PW.shape == (80, 256) and r == sc.numerical_rank(net.matrix("fc1"))
    np.testing.assert_allclose(res.phi.numpy(), np.eye(r), atol=1e-8)  # Theorem 1 limit
    assert res.result.objective == pytest.approx(res.result.bound, rel=1e-10)
    np.testing.assert_allclose((res.result.P @ res.W).numpy(), res.PW.numpy())
    # singular values are invariant under the orthogonal P
    s_w = torch.linalg.svdvals(res.W).numpy()
    np.testing.assert_allclose(
        torch.linalg.svdvals(res.PW).numpy(), s_w, rtol=1e-10, atol=1e-12 * s_w[0]
    )


def test_descramble_layer_weight_criteria(chain):
    _, net = chain
    mds = descramble_layer(net, "fc1", criterion="mds", method="exact")
    assert mds.result.criterion == "mds" and "not square" in mds.result.note
    assert mds.result.objective == pytest.approx(mds.result.bound)
    dn = descramble_layer(net, "fc1", criterion="max_diagonal_norm", method="iterative", steps=50)
    assert dn.result.method == "iterative" and dn.source == "weights"


def test_impossible_combinations_are_clear_errors(chain):
    _, net = chain
    weights_only = sc.Network(DictSource({"fc1.weight": torch.randn(4, 6)}), name="w")
    with pytest.raises(sc.ExecutionError, match="weights only"):
        layer_gram(weights_only, "fc1", source="dataset", x=torch.randn(3, 6))
    with pytest.raises(sc.ExecutionError, match="weights only"):
        layer_gram(weights_only, "fc1", position="activation", source="noise")
    assert layer_gram(weights_only, "fc1", source="noise", n_noise=10).S.shape == (4, 4)
    with pytest.raises(sc.DataError, match="'linear' position only"):
        layer_gram(net, "fc1", position="activation", source="limit")
    with pytest.raises(sc.LayerError, match="needs a layer after 'fc2'"):
        layer_gram(net, "fc2", position="second", source="dataset", x=_x())
    with pytest.raises(sc.DataError, match="needs inputs x"):
        layer_gram(net, "fc1", source="dataset")
    with pytest.raises(sc.DataError, match="unknown position"):
        layer_gram(net, "fc1", position="middle")
    with pytest.raises(sc.DataError, match="unknown source"):
        layer_gram(net, "fc1", source="oracle")
    with pytest.raises(sc.DataError, match="do not fit"):
        layer_gram(net, "fc1", source="dataset", x=torch.randn(5, 11))


def test_jacobian_source_on_a_conv_layer_matches_dataset_for_a_linear_network():
    torch.manual_seed(4)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3))  # a linear network: linearisation is exact
    net = sc.Network.from_module(conv, input_shape=(2, 5, 5))
    x = torch.randn(6, 2, 5, 5)
    jac = layer_gram(net, "0", source="jacobian", x=x)
    ds = layer_gram(net, "0", source="dataset", x=x)
    assert jac.S.shape == (3, 3)
    # the dataset Gram is per signal (N * positions); the Jacobian one per input (N)
    np.testing.assert_allclose(jac.S.numpy() / 9, ds.S.numpy(), rtol=1e-5, atol=1e-6)


def test_options_normalise_key_and_run(chain):
    from svdcore.wiretap import DescrambleOptions

    _, net = chain
    base = DescrambleOptions(source="limit")
    # options that cannot change the result share one key
    assert DescrambleOptions(source="limit", samples=7).cache_key() == base.cache_key()
    assert DescrambleOptions(steps=9, lr=0.5).cache_key() == base.cache_key()
    assert DescrambleOptions(seed=3).cache_key() == base.cache_key()
    mds = DescrambleOptions(criterion="mds", source="noise", det_one=True).normalized()
    assert (mds.source, mds.samples, mds.det_one) == ("weights", 0, False)
    # options that do change it get their own
    others = [
        DescrambleOptions(source="noise"),
        DescrambleOptions(source="noise", seed=1),
        DescrambleOptions(stencil="finite"),
        DescrambleOptions(det_one=True),
        DescrambleOptions(method="iterative", steps=10),
        DescrambleOptions(criterion="mds"),
    ]
    keys = {o.cache_key() for o in others} | {base.cache_key()}
    assert len(keys) == len(others) + 1
    assert DescrambleOptions(source="dataset").needs_network and not base.needs_network
    with pytest.raises(sc.DataError, match="choose one of"):
        DescrambleOptions(stencil="nope").validate()
    with pytest.raises(sc.DataError, match="at least 1"):
        DescrambleOptions(source="noise", samples=0).validate()
    res = base.run(net, "fc1")
    direct = descramble_layer(net, "fc1", source="limit")
    np.testing.assert_allclose(res.PW.numpy(), direct.PW.numpy(), atol=1e-12)
    # the derived numbers of the result
    sign = float(torch.linalg.slogdet(res.result.P)[0])
    assert res.det_sign == sign and res.rank == res.U_r.shape[1]
    eye = torch.eye(res.rank, dtype=res.phi.dtype)
    want = float(torch.linalg.matrix_norm(res.phi - eye)) / res.rank**0.5
    assert abs(res.phi_distance - want) < 1e-12
    assert abs(res.max_angle_deg - float(np.degrees(np.max(res.angles, initial=0.0)))) < 1e-12
