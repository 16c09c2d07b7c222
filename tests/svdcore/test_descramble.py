"""svdcore.descramble: exact vs iterative, streaming Gram matrices, MDS, Theorem 1."""

import numpy as np
import pytest
import torch

import svdcore as sc
from svdcore.descramble import (
    GramAccumulator,
    descramble,
    gram,
    make_stencil,
    mds_descrambler,
    phi,
    second_derivative,
    smoothness,
    trig_basis,
)
from svdcore.wiretap import principal_angles


def _rng(seed=0):
    return np.random.default_rng(seed)


def _random_orthogonal(n, rng):
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return torch.from_numpy(Q * np.sign(np.diag(R)))


# --------------------------------------------------------------------------- exact method
def _cases():
    rng = _rng(1)
    yield "square", rng.standard_normal((12, 12)) @ rng.standard_normal((12, 40))
    yield "wide signals", rng.standard_normal((10, 300))
    yield "rank-deficient", rng.standard_normal((16, 3)) @ rng.standard_normal((3, 50))
    yield "fewer signals than rows", rng.standard_normal((20, 7))
    yield (
        "smooth+noise",
        np.sin(np.outer(np.arange(15), rng.uniform(0, 2, 60)))
        + 0.1 * (rng.standard_normal((15, 60))),
    )


@pytest.mark.parametrize("kind", ["fourier", "finite"])
@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
def test_exact_objective_is_the_von_neumann_bound_and_beats_random_rotations(case, kind):
    _, Y = case
    Yt = torch.from_numpy(Y)
    res = descramble(Yt, stencil=kind)
    n = Y.shape[0]
    P = res.P.numpy()
    np.testing.assert_allclose(P.T @ P, np.eye(n), atol=1e-10)
    D = second_derivative(n, kind=kind).numpy()
    direct = np.linalg.norm(D @ P @ Y) ** 2
    assert res.objective == pytest.approx(direct, rel=1e-9)
    # the bound from the eigenvalues, computed independently in numpy
    mu = np.sort(np.linalg.eigvalsh(D.T @ D))
    s = np.sort(np.linalg.eigvalsh(Y @ Y.T))[::-1]
    assert res.bound == pytest.approx(float(mu @ np.clip(s, 0, None)), rel=1e-9, abs=1e-9)
    assert res.objective == pytest.approx(res.bound, rel=1e-9, abs=1e-8)
    rng = _rng(2)
    for _ in range(200):
        Q = _random_orthogonal(n, rng).numpy()
        assert np.linalg.norm(D @ Q @ Y) ** 2 >= res.objective * (1 - 1e-9) - 1e-9


def test_exact_is_at_most_the_iterative_result():
    rng = _rng(3)
    Y = torch.from_numpy(rng.standard_normal((10, 6)) @ rng.standard_normal((6, 200)))
    exact = descramble(Y)
    it = descramble(Y, method="iterative", steps=400, lr=3e-2)
    assert it.method == "iterative" and it.steps > 10 and len(it.history) == it.steps
    assert it.bound == pytest.approx(exact.bound)
    assert exact.objective <= it.objective * (1 + 1e-9)
    assert it.history[-1] < it.history[0]  # it does optimise
    P = it.P.numpy()
    np.testing.assert_allclose(P.T @ P, np.eye(10), atol=1e-6)
    assert np.linalg.det(P) == pytest.approx(1.0, abs=1e-6)  # Cayley: SO(n)
    # started at the exact optimum, the iterative method cannot improve it
    start = descramble(Y, det_one=True).P
    again = descramble(Y, method="iterative", steps=50, init=start)
    assert again.objective >= exact.objective * (1 - 1e-9)
    assert again.history[0] == pytest.approx(exact.objective, rel=1e-9)  # loss at the start
    assert again.history.min() >= exact.objective * (1 - 1e-9)


def test_gram_input_and_streaming_equal_signals():
    rng = _rng(4)
    Y = rng.standard_normal((9, 500))
    a = descramble(torch.from_numpy(Y))
    b = descramble(gram_matrix=torch.from_numpy(Y @ Y.T))
    acc = GramAccumulator(9)
    for start in range(0, 500, 64):
        acc.update(torch.from_numpy(Y[:, start : start + 64]))
    acc_rows = GramAccumulator(9)
    acc_rows.update(torch.from_numpy(Y.T.copy()), rows=True)
    np.testing.assert_allclose(acc.S.numpy(), Y @ Y.T, rtol=1e-12)
    np.testing.assert_allclose(acc_rows.S.numpy(), Y @ Y.T, rtol=1e-12)
    assert acc.count == 500
    c = descramble(gram_matrix=acc.S)
    assert a.objective == pytest.approx(b.objective) == pytest.approx(c.objective)
    np.testing.assert_allclose(a.P.numpy(), c.P.numpy(), atol=1e-8)
    # extra signal columns (the second-layer form) add E E^T
    E = rng.standard_normal((9, 4))
    with_extra = descramble(torch.from_numpy(Y), extra=torch.from_numpy(E))
    direct = descramble(gram_matrix=torch.from_numpy(Y @ Y.T + E @ E.T))
    assert with_extra.objective == pytest.approx(direct.objective)


def test_streaming_a_million_signals_in_bounded_batches():
    n, total, batch = 16, 1_000_000, 50_000
    g = torch.Generator().manual_seed(0)
    acc = GramAccumulator(n)
    for _ in range(total // batch):
        acc.update(torch.randn(batch, n, generator=g, dtype=torch.float64), rows=True)
    assert acc.count == total
    # isotropic noise: S / N -> I
    np.testing.assert_allclose(acc.S.numpy() / total, np.eye(n), atol=1e-2)


def test_det_one_keeps_the_objective():
    rng = _rng(5)
    for seed in range(6):  # some of these have det(P) = -1 without the constraint
        Y = torch.from_numpy(_rng(seed).standard_normal((7, 30)))
        free = descramble(Y)
        proper = descramble(Y, det_one=True)
        assert np.linalg.det(proper.P.numpy()) == pytest.approx(1.0)
        assert proper.objective == pytest.approx(free.objective, rel=1e-10)
    del rng


# --------------------------------------------------------------------------- Theorem 1
def test_theorem_1_noise_limit_gives_the_smoothest_basis():
    rng = _rng(6)
    n, d, r = 24, 40, 7
    W = rng.standard_normal((n, r)) @ rng.standard_normal((r, d))  # rank r < n
    res = descramble(gram_matrix=torch.from_numpy(W @ W.T))  # the N -> infinity limit
    PW = res.P.numpy() @ W
    U = np.linalg.svd(PW)[0][:, :r]
    T_r = trig_basis(n).numpy()[:, :r]
    angles = principal_angles(torch.from_numpy(U), torch.from_numpy(T_r))
    assert angles.max() < 1e-6
    # and P = T_r U^T on the signal space: phi(P) = T_r^T P U_r = I (up to column signs)
    U_w = sc.svd(torch.from_numpy(W), precision="float64").U[:, :r]
    ph = phi(res.P, U_w).numpy()
    np.testing.assert_allclose(np.abs(ph), np.eye(r), atol=1e-8)


def test_theorem_1_noise_samples_converge_as_n_grows():
    """With X ~ N(0, I), P_N -> T_r U^T: phi(P_N) = T_r^T P_N U -> I (column signs aside)."""
    rng = _rng(7)
    n, d = 12, 30
    U0, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V0, _ = np.linalg.qr(rng.standard_normal((d, n)))
    W = torch.from_numpy((U0 * np.linspace(3.0, 0.5, n)) @ V0.T)  # well separated sigmas
    U_w = sc.svd(W, precision="float64").U
    errors = []
    for N in (300, 10_000, 300_000):
        acc = GramAccumulator(n)
        g = torch.Generator().manual_seed(N)
        for start in range(0, N, 50_000):
            acc.update(W @ torch.randn(d, min(50_000, N - start), generator=g, dtype=torch.float64))
        ph = phi(descramble(gram_matrix=acc.S).P, U_w)
        ph = ph * torch.sign(ph.diagonal())
        errors.append(float(torch.linalg.norm(ph - torch.eye(n, dtype=ph.dtype))))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1
    limit = phi(descramble(gram_matrix=W @ W.T).P, U_w)
    np.testing.assert_allclose(np.abs(limit.numpy()), np.eye(n), atol=1e-8)


# --------------------------------------------------------------------------- MDS and others
@pytest.mark.parametrize("shape", [(6, 6), (8, 5), (5, 8), (1, 1)])
def test_mds_is_v_u_transpose_and_attains_the_nuclear_norm(shape):
    rng = _rng(8)
    W = rng.standard_normal(shape)
    res = mds_descrambler(torch.from_numpy(W))
    P = res.P.numpy()
    m, n = shape
    k = min(m, n)
    np.testing.assert_allclose(P.T @ P, np.eye(m), atol=1e-12)
    trace = np.trace((P @ W)[:k, :k])
    A = np.zeros((m, m))
    A[:, :k] = W[:, :k]
    nuclear = np.linalg.svd(A, compute_uv=False).sum()
    assert res.objective == pytest.approx(trace) == pytest.approx(nuclear)
    assert res.bound == pytest.approx(nuclear)
    if m == n:
        U, _, Vh = np.linalg.svd(W)
        np.testing.assert_allclose(P, Vh.T @ U.T, atol=1e-10)
        assert res.note == ""
    else:
        assert "not square" in res.note
    for _ in range(100):
        Q = _random_orthogonal(m, rng).numpy()
        assert np.trace((Q @ W)[:k, :k]) <= trace + 1e-9


def test_iterative_mds_and_diagonal_norm():
    rng = _rng(9)
    W = torch.from_numpy(rng.standard_normal((6, 6)))
    closed = mds_descrambler(W)
    it = descramble(weights=W, criterion="mds", method="iterative", steps=600, lr=5e-2)
    assert it.objective <= closed.objective + 1e-9
    assert it.objective == pytest.approx(closed.objective, rel=2e-2)
    norm2 = descramble(weights=W, criterion="max_diagonal_norm", method="iterative", steps=300)
    start = float((W.diagonal() ** 2).sum())
    assert norm2.objective > start
    assert norm2.criterion == "max_diagonal_norm"
    with pytest.raises(sc.DataError, match="no closed form"):
        descramble(weights=W, criterion="max_diagonal_norm")


def test_user_criterion_progress_and_cancel():
    rng = _rng(10)
    target = _random_orthogonal(5, rng)
    if torch.linalg.det(target) < 0:
        target[:, 0] = -target[:, 0]

    def distance(P):
        return ((P - target.to(P)) ** 2).sum()

    seen = []
    res = descramble(
        weights=torch.eye(5),
        criterion=distance,
        method="iterative",
        steps=800,
        lr=5e-2,
        progress=lambda step, total, value: seen.append((step, total, value)),
    )
    assert res.criterion == "distance"
    assert res.objective < 1e-3
    assert seen[0][0] == 1 and seen[0][1] == 800 and len(seen) == res.steps
    calls = []
    stopped = descramble(
        weights=torch.eye(5),
        criterion=distance,
        method="iterative",
        steps=800,
        should_stop=lambda: len(calls.append(1) or calls) > 5,
    )
    assert stopped.cancelled and stopped.steps == 5 and "cancelled" in stopped.note


def test_lbfgs_reaches_the_exact_optimum():
    Y = torch.from_numpy(_rng(11).standard_normal((6, 80)))
    exact = descramble(Y)
    it = descramble(Y, method="iterative", optimizer="lbfgs", steps=200, lr=1.0)
    assert it.objective == pytest.approx(exact.objective, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({}, "needs signals"),
        ({"signals": torch.ones(3, 4), "gram_matrix": torch.eye(3)}, "not both"),
        ({"gram_matrix": torch.tensor([[1.0, 2.0], [0.0, 1.0]])}, "not symmetric"),
        ({"gram_matrix": torch.ones(2, 3)}, "square"),
        ({"signals": torch.tensor([[1.0, float("nan")], [0.0, 1.0], [1.0, 1.0]])}, "NaN"),
        ({"signals": torch.ones(3, 4), "stencil": torch.ones(2, 5)}, "5 columns"),
        ({"signals": torch.ones(3, 4), "criterion": "wiggliness"}, "unknown criterion"),
        ({"signals": torch.ones(3, 4), "method": "magic"}, "method"),
        ({"signals": torch.ones(3, 4), "criterion": lambda P: P.sum()}, "no closed form"),
        ({"signals": torch.ones(3, 4), "method": "iterative", "steps": 0}, "steps"),
        (
            {"signals": torch.ones(3, 4), "method": "iterative", "init": 2 * torch.eye(3)},
            "orthogonal",
        ),
        ({"criterion": "mds"}, "needs the layer's weights"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, fragment):
    with pytest.raises(sc.DataError, match=fragment):
        descramble(**kwargs)


def test_smoothness_criterion_matches_frobenius_norm():
    rng = _rng(12)
    Y = rng.standard_normal((8, 20))
    st = make_stencil("fourier", 8)
    P = _random_orthogonal(8, rng)
    value = float(smoothness(st, gram(torch.from_numpy(Y)))(P))
    assert value == pytest.approx(np.linalg.norm(st.D.numpy() @ P.numpy() @ Y) ** 2)
