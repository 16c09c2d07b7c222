"""Riemannian L-BFGS on the rotation group SO(n): the iterative descrambler's optimiser.

The descramblers minimise a smooth criterion f(P) over orthogonal P (n x n). On SO(n) with
the metric <A, B> = tr(A^T B), a tangent vector at P is P A with A skew-symmetric, so every
quantity lives in the Lie algebra so(n) (the body frame):

    Riemannian gradient   g(P) = skew(P^T G),   G = df/dP (autograd), skew(A) = (A - A^T)/2
    step (Cayley)         P <- P cay(t d),  cay(A) = (I - A/2)^-1 (I + A/2),  d in so(n)
    slope at t = 0        d/dt f(P cay(t d)) = <g(P), d>

L-BFGS (Nocedal & Wright, Algorithm 7.4; Huang, Absil & Gallivan 2018 for the Riemannian
form) keeps the last ``memory`` pairs s = t d, y = g_new - g_old in the body frame: left
translation is an isometric vector transport on SO(n), so the two-loop recursion applies as
written. A backtracking line search with the Armijo condition (and cubic interpolation)
takes each step; a pair is kept only when s^T y > 0, which keeps the inverse-Hessian
approximation positive definite. P is re-orthonormalised by a QR step every few iterations
(products of Cayley factors drift from SO(n) at round-off speed). The Cayley map is a
retraction (it agrees with exp to first order) at the cost of one linear solve, 4x cheaper
than ``matrix_exp`` at n = 1024.

The initial inverse Hessian H0 of the two-loop recursion is gamma I (Nocedal & Wright eq.
7.20), or a caller's ``preconditioner``. :func:`brockett` gives the one of the smoothness
criterion: written in the eigenbasis of S, eta(P) = tr(M R L R^T) with R = P V, S = V L V^T
(Brockett's cost function), whose Riemannian Hessian has the diagonal
2 (s_i - s_j)(a_j - a_i), a = diag(R^T M R), in the basis E_ij - E_ji of so(n). Dividing by
its magnitude (Jacobi preconditioning), damped by a fraction of its largest entry that
decays from 1e-3 by 0.95 per step, turns the millions-to-one spread of curvatures of
real layers' Gram matrices into a problem L-BFGS solves to round-off in a few hundred
steps.

This replaces the Cayley-map trivialisation with Adam (kept as ``optimizer="adam"`` in
:func:`svdcore.descramble.descramble`), which stopped 1.4-2.9x above the closed-form
optimum after 500 steps on the bench problems; Amey et al. (2021) used a quasi-Newton
method, as here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

__all__ = [
    "Brockett",
    "RotationFit",
    "brockett",
    "cayley",
    "minimize_on_rotations",
    "minimize_trivialised",
    "skew",
]

Criterion = Callable[[torch.Tensor], torch.Tensor]
# given the current point and the step number, the map q -> H0 q of the two-loop recursion
Preconditioner = Callable[[torch.Tensor, int], Callable[[torch.Tensor], torch.Tensor]]
REORTHONORMALISE_EVERY = 20
WINDOW = 10  # steps over which the relative change of the criterion is judged
ARMIJO = 1e-4  # sufficient-decrease constant c1
MAX_BACKTRACKS = 40


@dataclass(frozen=True)
class RotationFit:
    """The result of :func:`minimize_on_rotations`.

    ``P`` (n, n) in SO(n); ``history`` the criterion after each accepted step;
    ``grad_norms`` ||g|| (Frobenius) at each of those points; ``converged``: a stopping rule
    was met (``reason`` says which), False when the step budget ran out; ``cancelled``:
    ``should_stop()`` returned True.
    """

    P: torch.Tensor
    history: np.ndarray
    grad_norms: np.ndarray
    converged: bool
    cancelled: bool
    reason: str

    @property
    def steps(self) -> int:
        return int(self.history.size)


def skew(A: torch.Tensor) -> torch.Tensor:
    """(A - A^T) / 2: the projection onto the skew-symmetric matrices so(n)."""
    return (A - A.mT) / 2


def _value_and_gradient(crit: Criterion, P: torch.Tensor) -> tuple[float, torch.Tensor]:
    """f(P) and the Riemannian gradient skew(P^T df/dP) in the body frame."""
    leaf = P.detach().requires_grad_(True)
    with torch.enable_grad():
        value = crit(leaf)
        (G,) = torch.autograd.grad(value, leaf)
    return float(value.detach()), skew(P.mT @ G)


def _settled(history: list[float], tol: float) -> str:
    """The stopping reason once the criterion changed by at most ``tol`` (relative) over
    the last WINDOW steps, else ""."""
    if len(history) <= WINDOW:
        return ""
    old = history[-WINDOW - 1]
    if abs(old - history[-1]) <= tol * max(abs(old), 1e-30):
        return f"the criterion changed by <= {tol:g} (relative) over {WINDOW} steps"
    return ""


def _inner(A: torch.Tensor, B: torch.Tensor) -> float:
    return float((A * B).sum())


def cayley(A: torch.Tensor) -> torch.Tensor:
    """(I - A/2)^-1 (I + A/2): orthogonal for skew-symmetric A, det +1."""
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    return torch.linalg.solve(eye - A / 2, eye + A / 2)


def _direction(
    g: torch.Tensor,
    pairs: deque[tuple[torch.Tensor, torch.Tensor, float]],
    h0: Callable[[torch.Tensor], torch.Tensor] | None,
) -> torch.Tensor:
    """-H g by the L-BFGS two-loop recursion over the stored (s, y, 1/s^T y)."""
    q = g.clone()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * _inner(s, q)
        alphas.append(a)
        q -= a * y
    s, y, _ = pairs[-1]
    if h0 is None:
        q *= _inner(s, y) / _inner(y, y)  # H0 = gamma I (Nocedal & Wright eq. 7.20)
    else:
        q = h0(q)
    for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
        b = rho * _inner(y, q)
        q += (a - b) * s
    return -q


def _reorthonormalise(P: torch.Tensor) -> torch.Tensor:
    """The orthogonal factor of P's QR with R's diagonal made positive (det unchanged)."""
    Q, R = torch.linalg.qr(P)
    return Q * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, 1.0)


def minimize_on_rotations(
    crit: Criterion,
    start: torch.Tensor,
    *,
    steps: int = 500,
    memory: int = 10,
    first_step: float = 3e-2,
    tol: float = 1e-7,
    gtol: float = 1e-9,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    preconditioner: Preconditioner | None = None,
) -> RotationFit:
    """Minimise ``crit`` (P -> scalar tensor, differentiable) over SO(n) from ``start``.

    ``steps``: the most L-BFGS iterations; ``memory``: the stored (s, y) pairs;
    ``first_step``: the length ||t d||_F (radians) of the first, steepest-descent step
    (later steps start from t = 1, the quasi-Newton scale). Stops when the criterion
    changes by at most ``tol`` (relative) over 10 steps, when ||g|| falls to ``gtol`` times
    its starting value, when no step along a descent direction lowers the criterion
    (round-off level), or when ``should_stop()`` returns True (checked before each step).
    ``progress(step, steps, value)`` after each accepted step. ``preconditioner(P, step)``
    returns H0 (q -> H0 q, symmetric positive definite on so(n)) for the step from P
    (default gamma I). P stays in the connected component of ``start`` (the caller checks
    that it is orthogonal); the computation runs in ``start``'s dtype and device.
    """
    P = start.detach().clone()
    f, g = _value_and_gradient(crit, P)
    g0 = math.sqrt(_inner(g, g))
    pairs: deque[tuple[torch.Tensor, torch.Tensor, float]] = deque(maxlen=max(1, int(memory)))
    history: list[float] = []
    norms: list[float] = []
    reason, cancelled = "", False
    if not math.isfinite(f):
        reason = "the criterion is not finite at the start"
    elif g0 == 0.0:
        reason = "the gradient is zero at the start"
    for step in range(int(steps) if not reason else 0):
        if should_stop is not None and should_stop():
            cancelled, reason = True, "cancelled"
            break
        h0 = None if preconditioner is None else preconditioner(P, step)
        d = _direction(g, pairs, h0) if pairs else -g
        slope = _inner(g, d)
        if not pairs or slope >= 0 or not math.isfinite(slope):
            pairs.clear()  # restart from (preconditioned) steepest descent
            d = -g if h0 is None else -h0(g)
            d = d * (first_step / math.sqrt(_inner(d, d)))
            slope = _inner(g, d)
        t, f_new, g_new, P_new = _line_search(crit, P, d, f, slope)
        if P_new is None:
            reason = "no step lowers the criterion (converged to round-off)"
            break
        s, y = t * d, g_new - g
        sy = _inner(s, y)
        if sy > 1e-12 * math.sqrt(_inner(s, s) * _inner(y, y)):
            pairs.append((s, y, 1.0 / sy))
        if (step + 1) % REORTHONORMALISE_EVERY == 0:
            P_new = _reorthonormalise(P_new)
        P, f, g = P_new, f_new, g_new
        history.append(f)
        norms.append(math.sqrt(_inner(g, g)))
        if progress is not None:
            progress(step + 1, int(steps), f)
        if norms[-1] <= gtol * g0:
            reason = f"||grad|| fell below {gtol:g} of its start"
            break
        reason = _settled(history, tol)
        if reason:
            break
    converged = bool(reason) and not cancelled
    return RotationFit(
        _reorthonormalise(P), np.asarray(history), np.asarray(norms), converged, cancelled, reason
    )


def _line_search(
    crit: Criterion, P: torch.Tensor, d: torch.Tensor, f0: float, slope: float
) -> tuple[float, float, torch.Tensor, torch.Tensor | None]:
    """Backtracking from t = 1 along P cay(t d) until the Armijo condition holds, each new
    trial from the cubic (first: quadratic) interpolant of the values seen, kept within
    [0.1 t, 0.5 t]. Returns (t, f, g, P) at the accepted point, P None when none is found."""
    t, prev = 1.0, None
    for _ in range(MAX_BACKTRACKS):
        P_t = P @ cayley(t * d)
        f_t, g_t = _value_and_gradient(crit, P_t)
        if math.isfinite(f_t) and f_t <= f0 + ARMIJO * t * slope:
            return t, f_t, g_t, P_t
        if not math.isfinite(f_t):
            t_next = 0.1 * t
        elif prev is None:
            t_next = -slope * t * t / (2 * (f_t - f0 - slope * t))  # quadratic minimiser
        else:
            t_next = _cubic(f0, slope, t, f_t, *prev)
        prev = (t, f_t)
        t = min(max(t_next, 0.1 * t), 0.5 * t) if math.isfinite(t_next) else 0.5 * t
    return 0.0, f0, torch.zeros_like(d), None


def _cubic(f0: float, slope: float, t1: float, f1: float, t2: float, f2: float) -> float:
    """The minimiser of the cubic through (0, f0) with slope ``slope``, (t1, f1), (t2, f2)
    (Nocedal & Wright eq. 3.59); NaN when it has none."""
    r1 = f1 - f0 - slope * t1
    r2 = f2 - f0 - slope * t2
    den = t1 * t1 * t2 * t2 * (t1 - t2)
    if den == 0:
        return math.nan
    a = (t2 * t2 * r1 - t1 * t1 * r2) / den
    b = (-(t2**3) * r1 + t1**3 * r2) / den
    if a == 0:
        return -slope / (2 * b) if b != 0 else math.nan
    disc = b * b - 3 * a * slope
    if disc < 0:
        return math.nan
    return (-b + math.sqrt(disc)) / (3 * a)


@dataclass(frozen=True)
class Brockett:
    """The smoothness criterion tr(M P S P^T) in the eigenbasis of S = V diag(s) V^T:
    ``criterion(R)`` = tr(M R diag(s) R^T) for R = P V, and its Jacobi ``preconditioner``.
    ``to_basis(P)`` = P V, ``from_basis(R)`` = R V^T."""

    M: torch.Tensor
    s: torch.Tensor
    V: torch.Tensor
    damping: float = 1e-3
    decay: float = 0.95
    floor: float = 1e-10

    def criterion(self, R: torch.Tensor) -> torch.Tensor:
        M, s = self.M.to(R), self.s.to(R)
        return ((M @ R) * (R * s)).sum()

    def preconditioner(self, R: torch.Tensor, step: int) -> Callable[[torch.Tensor], torch.Tensor]:
        a = ((self.M.to(R) @ R) * R).sum(0)  # diag(R^T M R)
        s = self.s.to(R)
        D = ((s[:, None] - s[None, :]) * (a[:, None] - a[None, :])).abs()
        D = D + max(self.floor, self.damping * self.decay**step) * D.max().clamp_min(1e-300)
        return lambda q: q / D

    def to_basis(self, P: torch.Tensor) -> torch.Tensor:
        return P @ self.V.to(P)

    def from_basis(self, R: torch.Tensor) -> torch.Tensor:
        return R @ self.V.to(R).T


def brockett(M: torch.Tensor, S: torch.Tensor) -> Brockett:
    """:class:`Brockett` for tr(M P S P^T), M and S symmetric (one ``eigh`` of S)."""
    s, V = torch.linalg.eigh(S)
    return Brockett(M, s, V)


# --------------------------------------------------------------------------- trivialised
class _Rotation(nn.Module):
    def __init__(self, init: torch.Tensor):
        super().__init__()
        n = init.shape[0]
        self.weight = nn.Parameter(torch.eye(n, dtype=init.dtype))
        orthogonal(self, "weight", orthogonal_map="cayley")
        with torch.no_grad():
            self.weight = init  # right_inverse: the trivialization's base becomes `init`

    def forward(self) -> torch.Tensor:
        return self.weight


def minimize_trivialised(
    crit: Criterion,
    start: torch.Tensor,
    *,
    optimizer: str = "adam",
    steps: int = 500,
    lr: float = 3e-2,
    tol: float = 1e-7,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RotationFit:
    """Minimise ``crit`` over SO(n) through the Cayley map of
    ``torch.nn.utils.parametrizations.orthogonal`` with Adam (``lr``) or torch's L-BFGS
    (``"lbfgs"``, strong Wolfe line search): the descrambler's first optimiser, kept for
    comparison. ``start`` in SO(n); same stopping rules as :func:`minimize_on_rotations`
    but the gradient norm."""
    rot = _Rotation(start)
    params = list(rot.parameters())
    history: list[float] = []
    reason = ""
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=lr, max_iter=1, line_search_fn="strong_wolfe")
    else:
        raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}.")
    for step in range(steps):
        if should_stop is not None and should_stop():
            reason = "cancelled"
            break

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = crit(rot())
            loss.backward()
            return loss

        value = float(opt.step(closure).detach())
        history.append(value)
        if progress is not None:
            progress(step + 1, steps, value)
        reason = _settled(history, tol)
        if reason:
            break
    with torch.no_grad():
        P = rot().detach().clone()
    cancelled = reason == "cancelled"
    return RotationFit(
        P, np.asarray(history), np.zeros(0), bool(reason) and not cancelled, cancelled, reason
    )
