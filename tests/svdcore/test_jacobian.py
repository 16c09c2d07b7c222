"""svdcore.jacobian: the one Jacobian engine, checked against torch.autograd.functional.

Everything runs in float64; operator products and dense matrices must agree with
``torch.autograd.functional.jacobian`` to ``ATOL`` (round-off of a few hundred float64 flops).
"""

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.jacobian import (
    JacobianOperator,
    chunk_size,
    jacobian_operator,
    network_operator,
    split_operators,
)

ATOL = 1e-12


def _mlp(n_in: int = 7, n_out: int = 5) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(n_in, 9), nn.Tanh(), nn.Linear(9, 6), nn.ReLU(), nn.Linear(6, n_out)
    )


class SkipCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        h = torch.tanh(self.conv1(x))
        h = torch.relu(self.conv2(h) + h)  # a skip around conv2
        return self.fc(h.flatten(1))


def _reference(module: nn.Module, x: torch.Tensor, shape) -> torch.Tensor:
    m64 = module.double()
    J = torch.autograd.functional.jacobian(lambda v: m64(v.reshape(1, *shape))[0].reshape(-1), x)
    module.float()
    return J.reshape(J.shape[0], -1)


def _x(shape, seed=3):
    """float64 values that float32 holds exactly (networks read their inputs as float32)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).double()


@pytest.mark.parametrize("budget", [None, 1])  # 1 byte: one vector per chunk
def test_mlp_operator_products_and_dense_match_autograd(budget):
    module = _mlp()
    net = sc.Network.from_module(module, input_shape=(7,))
    x = _x((7,))
    ref = _reference(module, x, (7,))
    op = network_operator(net, x, budget_bytes=budget)
    assert op.shape == (5, 7) and (budget is None or op.chunk == 1)
    np.testing.assert_allclose(op.dense().numpy(), ref.numpy(), atol=ATOL)
    V, U = _x((7, 3), 4), _x((5, 2), 5)
    np.testing.assert_allclose(op.matmat(V).numpy(), (ref @ V).numpy(), atol=ATOL)
    np.testing.assert_allclose(op.rmatmat(U).numpy(), (ref.T @ U).numpy(), atol=ATOL)
    np.testing.assert_allclose(op.matvec(V[:, 0]).numpy(), (ref @ V[:, 0]).numpy(), atol=ATOL)
    np.testing.assert_allclose(op.rmatvec(U[:, 0]).numpy(), (ref.T @ U[:, 0]).numpy(), atol=ATOL)


def test_conv_net_with_a_skip_split_inside_it():
    module = SkipCNN()
    shape = (2, 4, 4)
    net = sc.Network.from_module(module, input_shape=shape)
    x = _x(shape).reshape(-1)
    ref = _reference(module, x, shape)
    ops = split_operators(net, x, "conv2")
    np.testing.assert_allclose(ops.J.dense().numpy(), ref.numpy(), atol=ATOL)
    # R: dz/dx for z = conv2's output, by autograd on the sub-network
    m64 = module.double()
    R_ref = torch.autograd.functional.jacobian(
        lambda v: m64.conv2(torch.tanh(m64.conv1(v.reshape(1, *shape)))).reshape(-1), x
    )
    module.float()
    R = ops.R.dense()
    assert R.shape == (48, 32) and ops.L.shape == (4, 48)
    np.testing.assert_allclose(R.numpy(), R_ref.numpy(), atol=ATOL)
    # the skip bypasses conv2: J = L R + B with B != 0; matrix-free products agree with dense
    B = ref - ops.L.dense() @ R
    assert float(B.abs().max()) > 1e-6
    v = _x((32,), 6)
    np.testing.assert_allclose(ops.R.matvec(v).numpy(), (R @ v).numpy(), atol=ATOL)
    outside = split_operators(net, x, "conv1")
    np.testing.assert_allclose(
        (outside.L.dense() @ outside.R.dense()).numpy(), ref.numpy(), atol=ATOL
    )


@pytest.mark.parametrize(("n_in", "n_out"), [(1, 6), (6, 1)], ids=["1-input", "1-output"])
def test_one_by_n_and_n_by_one(n_in, n_out):
    module = _mlp(n_in, n_out)
    net = sc.Network.from_module(module, input_shape=(n_in,))
    x = _x((n_in,))
    ref = _reference(module, x, (n_in,))
    op = network_operator(net, x)
    assert op.shape == (n_out, n_in)
    np.testing.assert_allclose(op.dense().numpy(), ref.numpy(), atol=ATOL)
    np.testing.assert_allclose(
        op.rmatvec(torch.ones(n_out, dtype=torch.float64)).numpy(),
        ref.sum(0).numpy(),
        atol=ATOL,
    )


def test_plain_function_operator_and_chunk_rule():
    A = _x((4, 3), 7)

    def f(v):
        return torch.sin(A @ v)

    x = _x((3,), 8)
    op = jacobian_operator(f, x)
    ref = torch.autograd.functional.jacobian(f, x)
    np.testing.assert_allclose(op.dense().numpy(), ref.numpy(), atol=ATOL)
    assert isinstance(op, JacobianOperator) and op.per_vector_bytes == 2 * 8 * (7 + 7)
    assert chunk_size(100, 1000) == 10 and chunk_size(10**9, 1) == 1
    with pytest.raises(sc.DataError, match="positive"):
        chunk_size(10, 0)
    with pytest.raises(sc.DataError, match="length 3"):
        op.matmat(torch.ones(4, 1))


def test_fixed_batch_export_packs_one_vector_per_row(tmp_path):
    module = _mlp().eval()
    ep = torch.export.export(module, (torch.randn(2, 7),))  # traced with a fixed batch of 2
    torch.export.save(ep, tmp_path / "m.pt2")
    net = sc.load_model(tmp_path / "m.pt2")
    x = _x((7,))
    ref = _reference(module, x, (7,))
    ops = split_operators(net, x, "2")
    np.testing.assert_allclose(ops.J.dense().numpy(), ref.numpy(), atol=ATOL)
    np.testing.assert_allclose((ops.L.dense() @ ops.R.dense()).numpy(), ref.numpy(), atol=ATOL)
    V = _x((7, 2), 9)  # forward mode through the exported program as well
    np.testing.assert_allclose(ops.J.matmat(V).numpy(), (ref @ V).numpy(), atol=ATOL)
    # each pass carries 2 vectors, one per row of the fixed batch; an odd count is padded
    assert ops.J.rows == ops.R.rows == ops.L.rows == 2
    V3, U3 = _x((7, 3), 10), _x((ref.shape[0], 3), 11)
    np.testing.assert_allclose(ops.J.matmat(V3).numpy(), (ref @ V3).numpy(), atol=ATOL)
    np.testing.assert_allclose(ops.J.rmatmat(U3).numpy(), (ref.T @ U3).numpy(), atol=ATOL)
    L, R = ops.L.dense(), ops.R.dense()
    Ud = _x((L.shape[0], 3), 12)
    np.testing.assert_allclose(ops.L.rmatmat(Ud).numpy(), (L.T @ Ud).numpy(), atol=ATOL)
    np.testing.assert_allclose(ops.R.matmat(V3).numpy(), (R @ V3).numpy(), atol=ATOL)
