"""Descramblers: orthogonal transformations of a layer's output space that make it readable.

The stencils and the trigonometric basis live in :mod:`svdcore.stencils` (re-exported here).

Smoothness descrambling (Amey et al. 2021, eq. 8; Sule et al. eq. 5) minimises

    eta(P) = ||D P Y||_F^2 = tr(M P S P^T),   M = D^T D,  S = Y Y^T,

over orthogonal P (n x n), where Y (n x N) holds N signals of a layer of width n and D is a
second-derivative stencil. By von Neumann's trace inequality the minimum is
sum_i mu_i s_i (mu ascending eigenvalues of M, s descending eigenvalues of S), reached at
P = Q_M Q_S^T: the **exact** method, two symmetric eigen-decompositions, no iterations.
Flipping the sign of a column of Q_S leaves P S P^T unchanged, so det P = +1 costs nothing.

The **iterative** method minimises any differentiable criterion over SO(n) (for criteria
without a closed form: maximum diagonal norm^2, user criteria; and to show that the exact
optimum is optimal) by Riemannian L-BFGS (:mod:`svdcore.rotations`): Cayley steps, a
backtracking line search, and for smoothness the criterion written in the eigenbasis of S
with the exact diagonal of its Riemannian Hessian as preconditioner; it reaches the closed
form to round-off (tests; ``bench/bench_descramble.py``). The first method, the Cayley
trivialisation (``torch.nn.utils.parametrizations.orthogonal``) with Adam or torch's
L-BFGS, is ``optimizer="adam"`` / ``"lbfgs"``; after 500 Adam steps it stopped 1.4-2.9x
above the optimum on the bench problems.

Maximum diagonal sum (MDS): argmax_P tr(P W) = V U^T for W = U S V^T (Sule et al., SI).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ._validate import as_matrix
from .device import default_device
from .exceptions import DataError
from .rotations import (
    Brockett,
    RotationFit,
    brockett,
    minimize_on_rotations,
    minimize_trivialised,
)
from .spectrum import canonical_signs
from .stencils import Stencil, StencilKind, make_stencil, second_derivative, trig_basis

__all__ = [
    "CRITERIA",
    "OPTIMIZERS",
    "Descrambled",
    "GramAccumulator",
    "Stencil",
    "StencilKind",
    "descramble",
    "gram",
    "make_stencil",
    "max_diagonal_norm",
    "mds_descrambler",
    "phi",
    "second_derivative",
    "smoothness",
    "trig_basis",
]

Criterion = Callable[[torch.Tensor], torch.Tensor]
Progress = Callable[[int, int, float], None] | None
CRITERIA = ("smoothness", "max_diagonal_norm", "mds")
OPTIMIZERS = ("riemannian", "adam", "lbfgs")


# --------------------------------------------------------------------------- Gram matrices
class GramAccumulator:
    """Streams S = sum_b Y_b Y_b^T over batches of signals in float64, in O(n^2) memory.

    ``update(Y)`` takes a batch (n, N_b) with signals as columns (``rows=False``) or (N_b, n)
    with signals as rows (``rows=True``, the layout of captured activations).
    """

    def __init__(self, n: int, *, device: torch.device | str = "cpu"):
        self.n = int(n)
        self.S = torch.zeros(self.n, self.n, dtype=torch.float64, device=device)
        self.count = 0

    def update(self, Y: torch.Tensor | np.ndarray, *, rows: bool = False) -> GramAccumulator:
        A = as_matrix(
            Y, what="signal batch", dtype=torch.float64, device=self.S.device, check_finite=False
        )
        if rows:
            A = A.T
        if A.shape[0] != self.n:
            raise DataError(
                f"signal batch has {A.shape[0]} rows; the accumulator expects {self.n}."
            )
        G = A @ A.T
        if not bool(torch.isfinite(G).all()):  # NaN/Inf in Y always reach G: scan Y only then
            as_matrix(Y, what="signal batch")
        self.S += G
        self.count += int(A.shape[1])
        return self


def gram(
    Y: torch.Tensor | np.ndarray, *, extra: torch.Tensor | np.ndarray | None = None
) -> torch.Tensor:
    """S = Y Y^T (+ E E^T for extra signal columns E), float64; Y is (n, N)."""
    A = as_matrix(Y, what="signals", dtype=torch.float64, check_finite=False)
    S = A @ A.T
    if not bool(torch.isfinite(S).all()):  # NaN/Inf in Y always reach S: scan Y only then
        as_matrix(Y, what="signals")
    if extra is not None:
        E = as_matrix(extra, what="extra signals", dtype=torch.float64)
        if E.shape[0] != A.shape[0]:
            raise DataError(f"extra signals have {E.shape[0]} rows, the signals {A.shape[0]}.")
        S = S + E @ E.T
    return S


def _check_gram(S: torch.Tensor | np.ndarray) -> torch.Tensor:
    G = as_matrix(S, what="Gram matrix", dtype=torch.float64)
    if G.shape[0] != G.shape[1]:
        raise DataError(f"a Gram matrix must be square, got {tuple(G.shape)}.")
    if not torch.allclose(G, G.T, rtol=1e-6, atol=1e-9 * float(G.abs().max().clamp_min(1))):
        raise DataError("the Gram matrix is not symmetric; pass S = Y Y^T or the signals Y.")
    return (G + G.T) / 2


# --------------------------------------------------------------------------- criteria
def smoothness(st: Stencil, S: torch.Tensor) -> Criterion:
    """eta(P) = tr(M P S P^T) = ||D P Y||_F^2 with M = D^T D (Amey eq. 8)."""
    M = st.M

    def eta(P: torch.Tensor) -> torch.Tensor:
        Mt, St = M.to(P), S.to(P)
        return ((Mt @ P) * (P @ St)).sum()

    return eta


def max_diagonal_norm(W: torch.Tensor) -> Criterion:
    """-sum_i (P W)_ii^2 over the leading min(m, n) diagonal (Amey's maximum diagonal norm^2,
    to be minimised)."""
    k = min(W.shape)

    def crit(P: torch.Tensor) -> torch.Tensor:
        return -((P[:k] @ W.to(P)[:, :k]).diagonal() ** 2).sum()

    return crit


def _mds_criterion(W: torch.Tensor) -> Criterion:
    k = min(W.shape)

    def crit(P: torch.Tensor) -> torch.Tensor:
        return -(P[:k] @ W.to(P)[:, :k]).diagonal().sum()

    return crit


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Descrambled:
    """A descrambler P (n x n, orthogonal) and how good it is.

    ``objective``: the criterion at P (for smoothness: ||D P Y||_F^2; for MDS: tr(P W);
    for max-diagonal-norm: sum (P W)_ii^2). ``bound``: the closed-form optimum when one
    exists (von Neumann lower bound for smoothness, sum of singular values for MDS).
    ``history``: objective after each iterative step (empty for exact methods).
    """

    P: torch.Tensor
    objective: float
    bound: float | None
    method: str
    criterion: str
    history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    steps: int = 0
    converged: bool = True
    cancelled: bool = False
    note: str = ""

    @property
    def gap(self) -> float | None:
        """(objective - bound) / |bound|: 0 for the exact method, > 0 above the optimum."""
        if self.bound is None or self.bound == 0:
            return None
        return (self.objective - self.bound) / abs(self.bound)


# --------------------------------------------------------------------------- exact
def _eigh(S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh`` on svdcore's default device (a GPU when there is one), the
    result back on ``S``'s device."""
    device = default_device()
    if device == S.device:
        return torch.linalg.eigh(S)
    w, Q = torch.linalg.eigh(S.to(device))
    return w.to(S.device), Q.to(S.device)


def _exact_smoothness(st: Stencil, S: torch.Tensor, *, det_one: bool) -> Descrambled:
    s, Q_S = _eigh(S)  # ascending
    s, Q_S = s.flip(0), canonical_signs(Q_S.flip(1))[0]  # descending
    s = s.clamp_min(0)  # a Gram matrix is PSD; round-off may dip below 0
    P = st.eigenvectors @ Q_S.T
    note = ""
    if det_one and float(torch.linalg.det(P)) < 0:
        Q_S[:, -1] = -Q_S[:, -1]  # the least-energy direction: P S P^T is unchanged
        P = st.eigenvectors @ Q_S.T
        note = "det P = +1 enforced by flipping the least-energy eigenvector of S."
    bound = float((st.eigenvalues * s).sum())
    objective = float(smoothness(st, S)(P))
    return Descrambled(P, objective, bound, "exact", "smoothness", note=note)


# --------------------------------------------------------------------------- iterative
def _start(init: torch.Tensor | None, n: int, *, dtype: torch.dtype, special: bool) -> torch.Tensor:
    """The starting point: I, or ``init`` checked orthogonal (and det +1 if ``special``)."""
    start = torch.eye(n, dtype=dtype) if init is None else init.to(dtype)
    if init is not None:
        if tuple(start.shape) != (n, n):
            raise DataError(f"init must be {n} x {n}, got {tuple(start.shape)}.")
        err = float((start.T @ start - torch.eye(n, dtype=dtype)).abs().max())
        if err > 1e-4:
            raise DataError(f"init must be orthogonal (max |P^T P - I| = {err:.2e}).")
        if special and float(torch.linalg.det(start)) < 0:
            raise DataError("init has det -1; the Cayley map covers SO(n) only.")
    return start


def _check_steps(steps: int, lr: float) -> None:
    if steps < 1:
        raise DataError(f"steps must be >= 1, got {steps}.")
    if not (lr > 0 and math.isfinite(lr)):
        raise DataError(f"the learning rate must be a positive number, got {lr!r}.")


def _optimise(
    crit: Criterion,
    n: int,
    *,
    optimizer: str,
    problem: Brockett | None,
    init: torch.Tensor | None,
    dtype: torch.dtype,
    **options: Any,
) -> RotationFit:
    """Riemannian L-BFGS (:mod:`svdcore.rotations`; smoothness in S's eigenbasis with the
    Jacobi preconditioner of ``problem``), or Adam / L-BFGS through the Cayley map."""
    if optimizer != "riemannian":
        start = _start(init, n, dtype=dtype, special=True)
        return minimize_trivialised(crit, start, optimizer=optimizer, **options)
    start = _start(init, n, dtype=dtype, special=False)
    lr = options.pop("lr")
    if problem is None:
        return minimize_on_rotations(crit, start, first_step=lr, **options)
    fit = minimize_on_rotations(
        problem.criterion,
        problem.to_basis(start),
        first_step=lr,
        preconditioner=problem.preconditioner,
        **options,
    )
    return dataclasses.replace(fit, P=problem.from_basis(fit.P))


# --------------------------------------------------------------------------- public entry
def descramble(
    signals: torch.Tensor | np.ndarray | None = None,
    *,
    gram_matrix: torch.Tensor | np.ndarray | None = None,
    stencil: StencilKind | torch.Tensor | np.ndarray | Stencil = "fourier",
    method: Literal["exact", "iterative"] = "exact",
    criterion: Literal["smoothness", "max_diagonal_norm", "mds"] | Criterion = "smoothness",
    weights: torch.Tensor | np.ndarray | None = None,
    extra: torch.Tensor | np.ndarray | None = None,
    det_one: bool = False,
    steps: int = 500,
    lr: float = 3e-2,
    optimizer: Literal["riemannian", "adam", "lbfgs"] = "riemannian",
    tol: float = 1e-7,
    init: torch.Tensor | None = None,
    progress: Progress = None,
    should_stop: Callable[[], bool] | None = None,
    precision: Literal["float32", "float64"] = "float64",
) -> Descrambled:
    """Find an orthogonal descrambler P (n x n) of a layer's n-dimensional output space.

    Signals: ``signals`` Y (n, N), signals as columns (captured activations are (N, n):
    pass ``acts.T``), or ``gram_matrix`` S = Y Y^T (n, n) directly (stream large N with
    :class:`GramAccumulator`). ``extra`` (n, q) adds signal columns (Amey's second-layer form
    [c W_{k+1}^T, sigma(W_k X)]): S = Y Y^T + E E^T.

    Criteria: ``"smoothness"`` (||D P Y||_F^2 with ``stencil`` D: "fourier", "finite", or a
    matrix), exact (closed form, von Neumann) or iterative; ``"max_diagonal_norm"``
    (maximise sum (P W)_ii^2 of ``weights`` W, iterative); ``"mds"`` (maximise tr(P W):
    use :func:`mds_descrambler` for the closed form); or any callable P -> scalar tensor to
    minimise (iterative). Iterative runs start at ``init`` (default I) and stay in its
    component of O(n) (SO(n) for I); ``optimizer`` "riemannian" (Riemannian L-BFGS;
    ``lr`` is the length of its first step, in radians), or "adam" / "lbfgs" through the
    Cayley map (``init`` in SO(n); ``lr`` the learning rate). They report
    ``progress(step, steps, objective)``, stop when ``should_stop()`` returns True or the
    objective changes by less than ``tol`` (relative) over 10 steps.

    Invariant (tests): for smoothness, the exact objective equals the returned bound and
    is <= the objective of any orthogonal P, the iterative result included.
    """
    dtype = torch.float64 if precision == "float64" else torch.float32
    name = criterion if isinstance(criterion, str) else getattr(criterion, "__name__", "custom")
    if isinstance(criterion, str) and criterion not in CRITERIA:
        raise DataError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}.")
    if method not in ("exact", "iterative"):
        raise DataError(f"method must be 'exact' or 'iterative', got {method!r}.")

    S = None
    if signals is not None and gram_matrix is not None:
        raise DataError("pass either signals Y or gram_matrix S, not both.")
    if signals is not None:
        S = gram(signals, extra=extra)
    elif gram_matrix is not None:
        S = _check_gram(gram_matrix)
        if extra is not None:
            S = S + gram(extra)
    W = None if weights is None else as_matrix(weights, what="weights", dtype=torch.float64)

    if name == "smoothness":
        if S is None:
            raise DataError("smoothness descrambling needs signals Y or a Gram matrix S.")
        st = make_stencil(stencil, int(S.shape[0]))
        if method == "exact":
            return _exact_smoothness(st, S, det_one=det_one)
        crit = smoothness(st, S)
        bound = _exact_smoothness(st, S, det_one=False).bound
    elif name in ("max_diagonal_norm", "mds"):
        if W is None:
            raise DataError(f"the {name} criterion needs the layer's weights (weights=W).")
        if method == "exact":
            if name == "mds":
                return mds_descrambler(W)
            raise DataError("maximum diagonal norm^2 has no closed form; use method='iterative'.")
        crit = max_diagonal_norm(W) if name == "max_diagonal_norm" else _mds_criterion(W)
        bound = -float(_leading_square(W)[1].sum()) if name == "mds" else None
        S = torch.zeros(W.shape[0], W.shape[0], dtype=torch.float64)
    else:
        if method == "exact":
            raise DataError("a user criterion has no closed form; use method='iterative'.")
        n = int(S.shape[0]) if S is not None else (int(W.shape[0]) if W is not None else None)
        if n is None:
            raise DataError("a user criterion needs signals, a Gram matrix or weights for n.")
        crit, bound = criterion, None
        S = torch.zeros(n, n, dtype=torch.float64)
    _check_steps(int(steps), float(lr))
    if optimizer not in OPTIMIZERS:
        raise DataError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}.")
    fit = _optimise(
        crit,
        int(S.shape[0]),
        optimizer=optimizer,
        problem=brockett(st.M, S) if name == "smoothness" and optimizer == "riemannian" else None,
        init=init,
        dtype=dtype,
        steps=int(steps),
        lr=float(lr),
        tol=float(tol),
        progress=progress,
        should_stop=should_stop,
    )
    P, history = fit.P, fit.history
    P64 = P.double()
    objective = float(crit(P64))
    if name in ("max_diagonal_norm", "mds"):  # report maximised quantities as positive
        objective, history = -objective, -history
        bound = None if bound is None else -bound
    return Descrambled(
        P64,
        objective,
        bound,
        "iterative",
        name,
        history=history,
        steps=len(history),
        converged=fit.converged,
        cancelled=fit.cancelled,
        note="cancelled before convergence" if fit.cancelled else "",
    )


# --------------------------------------------------------------------------- MDS and phi
def _leading_square(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    m, n = W.shape
    A = torch.zeros(m, m, dtype=W.dtype)
    k = min(m, n)
    A[:, :k] = W[:, :k]
    U, s, Vh = torch.linalg.svd(A)
    return U, s, Vh


def mds_descrambler(W: torch.Tensor | np.ndarray) -> Descrambled:
    """Maximum diagonal sum: argmax over orthogonal P (m x m) of tr(P W) = V U^T.

    For square W = U S V^T, tr(P W) <= sum(S) with equality at P = V U^T (Sule et al., SI,
    Proposition). For W (m x n) not square, the criterion sums the first min(m, n) diagonal
    entries of P W; that equals tr(P A) for A = the leading m x min(m, n) block of W padded
    with zero columns to m x m, so P = V_A U_A^T, optimum = sum of A's singular values
    (``note`` says so). Invariant: ``objective == bound``.
    """
    A = as_matrix(W, what="weights", dtype=torch.float64)
    m, n = A.shape
    U, s, Vh = _leading_square(A)
    P = Vh.T @ U.T
    k = min(m, n)
    trace = float((P[:k] @ A[:, :k]).diagonal().sum())
    note = ""
    if m != n:
        note = (
            f"W is {m}x{n}, not square: P maximises the sum of the first {k} diagonal "
            f"entries of P W (the leading {m}x{k} block)."
        )
    return Descrambled(P, trace, float(s.sum()), "exact", "mds", note=note)


def phi(P: torch.Tensor | np.ndarray, U_r: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Sule et al. eq. (17): phi(P) = T_r^T P U_r, shape (r, r).

    ``U_r`` (n, r): the layer's leading r left singular vectors; T_r the first r (smoothest)
    columns of :func:`trig_basis` (n). In the noise-only limit P -> T_r U_r^T (Theorem 1),
    so phi(P) -> I; its distance from I shows how far the data move P from that limit.
    """
    P64 = as_matrix(P, what="P", dtype=torch.float64)
    U64 = as_matrix(U_r, what="U_r", dtype=torch.float64)
    n = P64.shape[0]
    if P64.shape != (n, n) or U64.shape[0] != n:
        raise DataError(
            f"phi needs P (n x n) and U_r (n x r); got {tuple(P64.shape)} and {tuple(U64.shape)}."
        )
    T_r = trig_basis(n)[:, : U64.shape[1]]
    return T_r.T @ P64 @ U64
