"""Wiretapping a layer: the signals a descrambler is judged on, and descrambling a layer.

A layer maps h (d) to W h + b (n). Its output space is descrambled by an orthogonal P
(n x n): P W is the descrambled layer and W_{k+1} P^T the next one (wiretapping inserts
P^T P between the layer's output signals and W_{k+1}, so the network is unchanged; the
signals themselves are read as P y). The signals Y (n x N) enter only through S.

Positions (``position``):
- ``"linear"``: Y = W h, after the linear map (the bias, a constant shift, is left out);
- ``"activation"``: Y = sigma(W h + b), after the layer's activation (executable networks);
- ``"second"``: Amey et al.'s second-layer form, signals [c W_{k+1}^T, sigma(W_k X)] side by
  side with c = ||sigma(W_k X)||_2 / ||W_{k+1}^T||_2 (spectral norms), so
  S = sigma sigma^T + c^2 W_{k+1}^T W_{k+1}; gives both P W_k and W_{k+1} P^T.

Sources (``source``):
- ``"dataset"``: inputs ``x`` (N, *input_shape) propagated through the network;
- ``"noise"``: h ~ N(0, I_d) at the layer's input, N = ``n_noise`` (Sule et al., Theorem 1);
- ``"limit"``: the exact N -> infinity limit of the noise source, S = W W^T (linear only);
- ``"jacobian"``: the network linearised at the data mean (Sule et al., eq. 10):
  y_i ~ f(x_bar) + J (x_i - x_bar), so S = N f(x_bar) f(x_bar)^T + J C J^T with C the
  centred scatter matrix of ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal, get_args

import numpy as np
import torch

from ._taps import apply_on_layer_input, capture, check_inputs, layer_module, next_leaf
from .compare import subspace_angles
from .descramble import (
    CRITERIA,
    OPTIMIZERS,
    Descrambled,
    GramAccumulator,
    StencilKind,
    descramble,
    make_stencil,
    mds_descrambler,
    phi,
)
from .exceptions import DataError, LayerError
from .jacobian import split_operators
from .network import Network
from .spectrum import default_rtol, svd

__all__ = [
    "CRITERIA",
    "METHODS",
    "OPTIMIZERS",
    "POSITIONS",
    "SOURCES",
    "STENCILS",
    "DescrambleOptions",
    "LayerDescrambling",
    "WiretapGram",
    "descramble_layer",
    "layer_gram",
    "principal_angles",
]

Position = Literal["linear", "activation", "second"]
Source = Literal["dataset", "noise", "limit", "jacobian"]
POSITIONS: tuple[str, ...] = ("linear", "activation", "second")
SOURCES: tuple[str, ...] = ("dataset", "noise", "limit", "jacobian")
STENCILS: tuple[str, ...] = get_args(StencilKind)
METHODS: tuple[str, ...] = ("exact", "iterative")
_BATCH = 2048


@dataclass(frozen=True)
class WiretapGram:
    """S = (1/N) Y Y^T (n x n, float64), the mean Gram of the wiretapped signals (for the
    limit source, E[y y^T] = W W^T), and how it was made. ``c``: Amey's second-layer scale
    for the un-normalised signals."""

    S: torch.Tensor
    n_signals: int
    position: str
    source: str
    next_layer: str | None = None
    c: float | None = None


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> np.ndarray:
    """Principal angles (radians, ascending) between span(A) and span(B), A, B with n rows.

    The same as :func:`svdcore.compare.subspace_angles` (accurate near 0).
    """
    return subspace_angles(A, B)


def _jacobian_gram(net: Network, layer: str, x: torch.Tensor, position: str) -> torch.Tensor:
    """S = sum_p [N f_p(x_bar) f_p(x_bar)^T + J_p C J_p^T] for the network linearised at the
    data mean; p runs over the spatial positions of a convolution's output (one for a
    Linear layer), each position's n channels being one signal, as in :func:`as_rows`.

    J = dz/dx at x_bar is the engine's operator R of a split at the wiretapped module
    (:func:`svdcore.jacobian.split_operators`); J C J^T is formed from J (x_i - x_bar),
    pushed forward matrix-free when there are fewer samples than J has columns."""
    xb = net._batch(x).double()
    x_bar = xb.mean(dim=0)
    act = next_leaf(net, layer) if position != "linear" else None
    ops = split_operators(net, x_bar, act or layer)
    n = net.layer(layer).matrix_shape[0]
    f_bar = ops.z.reshape(n, -1)  # (n, positions), channels first
    if position == "linear":  # the signal is W h: the bias, a constant, is left out
        bias = net.bias(layer)
        if bias is not None:
            f_bar = f_bar - bias.double()[:, None]
    centred = (xb - x_bar).reshape(xb.shape[0], -1).T  # (M, N)
    R = ops.R
    JC = R.matmat(centred) if centred.shape[1] < min(R.shape) else R.dense() @ centred
    JC = JC.reshape(n, f_bar.shape[1], -1)  # (n, positions, N)
    return xb.shape[0] * (f_bar @ f_bar.T) + torch.einsum("npk,mpk->nm", JC, JC)


def _next_layer(net: Network, layer: str) -> str:
    names = [info.name for info in net.layers if info.viewable]
    n = net.layer(layer).matrix_shape[0]
    for name in names[names.index(layer) + 1 :]:
        if net.layer(name).matrix_shape[1] == n:
            return name
    raise LayerError(
        f"the second-layer wiretap needs a layer after {layer!r} that takes its {n} outputs "
        "as inputs; none was found."
    )


# --------------------------------------------------------------------------- Gram of a layer
def layer_gram(
    net: Network,
    layer: str,
    *,
    position: Position = "linear",
    source: Source = "limit",
    x: torch.Tensor | np.ndarray | None = None,
    n_noise: int = 10_000,
    seed: int = 0,
    batch_size: int = _BATCH,
) -> WiretapGram:
    """S = Y Y^T of the signals wiretapped at ``layer`` (see the module docstring).

    Streams batches of ``batch_size`` signals into a float64 accumulator: memory is
    O(n^2 + batch), whatever N is. Invariant: S is symmetric positive semi-definite.
    """
    if position not in POSITIONS:
        raise DataError(f"unknown position {position!r}; choose one of {', '.join(POSITIONS)}.")
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}.")
    info = net.layer(layer)
    if not info.viewable:
        raise LayerError(f"layer {layer!r} cannot be descrambled: {info.note}.")
    W = net.matrix(layer).double()
    n, d = W.shape
    inner = "activation" if position == "second" else position
    acc = GramAccumulator(n)
    if source == "limit":
        if inner != "linear":
            raise DataError(
                "the exact limit S = W W^T exists for the 'linear' position only; "
                "use source='noise' with a large N for the activation."
            )
        acc.S = W @ W.T
        acc.count = math.inf  # type: ignore[assignment]
    elif source == "noise":
        if n_noise < 1:
            raise DataError(f"n_noise must be >= 1, got {n_noise}.")
        g = torch.Generator().manual_seed(seed)
        done = 0
        while done < n_noise:
            b = min(batch_size, n_noise - done)
            h = torch.randn(b, d, generator=g, dtype=torch.float64)
            acc.update(apply_on_layer_input(net, layer, h, inner), rows=True)
            done += b
    elif source == "dataset":
        xt = check_inputs(net, x, "dataset")
        layer_module(net, layer)
        for start in range(0, xt.shape[0], batch_size):
            acc.update(capture(net, xt[start : start + batch_size], layer, inner), rows=True)
    else:  # jacobian
        xt = check_inputs(net, x, "jacobian")
        layer_module(net, layer)
        acc.S = _jacobian_gram(net, layer, xt, inner)
        acc.count = int(xt.shape[0])
    # the mean Gram (1/N) sum y y^T: P does not change, and objectives of different N (and
    # of the exact limit) compare directly
    S = acc.S if source == "limit" else acc.S / acc.count
    next_layer, c = None, None
    if position == "second":
        next_layer = _next_layer(net, layer)
        W2 = net.matrix(next_layer).double()
        sig_norm = math.sqrt(max(float(torch.linalg.eigvalsh(S)[-1]), 0.0))
        w_norm = float(torch.linalg.matrix_norm(W2, ord=2))
        c_mean = sig_norm / w_norm if w_norm > 0 else 0.0
        S = S + c_mean**2 * (W2.T @ W2)
        # Amey et al.'s c scales the un-normalised signals: ||sigma(W X)||_2 grows as sqrt(N)
        c = c_mean * math.sqrt(acc.count)
    return WiretapGram(S, acc.count, position, source, next_layer, c)


# --------------------------------------------------------------------------- descramble a layer
@dataclass(frozen=True)
class LayerDescrambling:
    """A descrambled layer: P, P W, (W_{k+1} P^T), phi(P), and the Theorem 1 check.

    ``W`` (n, d) raw and ``PW`` descrambled; ``W_next`` / ``W_next_Pt`` (m2, n) for the
    second-layer position; ``U_r`` (n, r) left singular vectors of ``PW``; ``basis_r``
    (n, r) the r smoothest stencil eigenvectors (the trigonometric basis T_r for the Fourier
    stencil); ``angles`` the principal angles between their spans (~0 in the noise limit);
    ``phi`` = T_r^T P U_r(W) (Sule eq. 17), ~I in the noise limit.
    """

    layer: str
    position: str
    source: str
    result: Descrambled
    W: torch.Tensor
    PW: torch.Tensor
    U_r: torch.Tensor
    sigma_r: torch.Tensor
    basis_r: torch.Tensor
    angles: np.ndarray
    phi: torch.Tensor
    n_signals: float
    next_layer: str | None = None
    W_next: torch.Tensor | None = None
    W_next_Pt: torch.Tensor | None = None
    c: float | None = None

    @property
    def rank(self) -> int:
        """r, the number of singular vectors / basis columns compared."""
        return int(self.U_r.shape[1])

    @property
    def det_sign(self) -> float:
        """sign(det P): +1 for a rotation, -1 for a reflection (from slogdet, in float64)."""
        return float(torch.linalg.slogdet(self.result.P.double())[0])

    @property
    def max_angle_deg(self) -> float:
        """The largest principal angle (degrees) between span(U_r) and span(basis_r)."""
        angles = np.asarray(self.angles, dtype=np.float64)
        return float(np.degrees(angles.max())) if angles.size else 0.0

    @property
    def phi_distance(self) -> float:
        """||phi - I||_F / sqrt(r): 0 when phi(P) = I (Sule, Theorem 1, noise limit)."""
        p = self.phi.double()
        eye = torch.eye(p.shape[0], p.shape[1], dtype=p.dtype)
        return float(torch.linalg.matrix_norm(p - eye)) / math.sqrt(max(self.rank, 1))


def _aligned(A: torch.Tensor, dots: torch.Tensor) -> torch.Tensor:
    """``A`` with column k negated where ``dots[k] < 0`` (a zero keeps its sign).

    This aligns vectors to a *reference* (their dot products with it made >= 0); it is not
    svdcore's intrinsic sign convention :func:`svdcore.canonical_signs`, which the SVDs
    here use first, and it is used only where the page overlays vectors on a reference.
    """
    signs = torch.sign(dots)
    signs[signs == 0] = 1
    return A * signs


def _phi_aligned(P: torch.Tensor, U_r: torch.Tensor) -> torch.Tensor:
    """phi(P) = T_r^T P U_r with U_r's column signs chosen so that diag(phi) >= 0.

    Singular vectors have no intrinsic sign; without this choice, sign conventions alone
    would make phi differ from I in the noise limit.
    """
    raw = phi(P, U_r)
    return _aligned(raw, raw.diagonal())


def descramble_layer(
    net: Network,
    layer: str,
    *,
    position: Position = "linear",
    source: Source = "limit",
    x: torch.Tensor | np.ndarray | None = None,
    n_noise: int = 10_000,
    stencil: StencilKind = "fourier",
    method: Literal["exact", "iterative"] = "exact",
    criterion: Literal["smoothness", "max_diagonal_norm", "mds"] = "smoothness",
    det_one: bool = False,
    steps: int = 500,
    lr: float = 3e-2,
    optimizer: Literal["riemannian", "adam", "lbfgs"] = "riemannian",
    rank: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    seed: int = 0,
) -> LayerDescrambling:
    """Descramble the output space of ``layer`` and return everything the view shows.

    ``rank``: how many left singular vectors / basis columns to compare (default: the
    numerical rank of W, at most n). Raises ``DataError`` / ``LayerError`` /
    ``ExecutionError`` with a sentence for impossible combinations.
    """
    W = net.matrix(layer).double()
    n = W.shape[0]
    run = partial(
        descramble,
        method=method,
        steps=steps,
        lr=lr,
        optimizer=optimizer,
        progress=progress,
        should_stop=should_stop,
    )
    if criterion == "smoothness":
        wg = layer_gram(
            net, layer, position=position, source=source, x=x, n_noise=n_noise, seed=seed
        )
        res = run(gram_matrix=wg.S, stencil=stencil, det_one=det_one)
        n_signals, next_layer, c = wg.n_signals, wg.next_layer, wg.c
    else:
        if criterion == "mds" and method == "exact":
            res = mds_descrambler(W)
        else:
            res = run(weights=W, criterion=criterion)
        n_signals, next_layer, c = 0, None, None
        if position == "second":
            next_layer = _next_layer(net, layer)
    P = res.P
    PW = P @ W
    U_w, s_w, _ = svd(W)  # deterministic signs, as the descrambler's eigenvectors
    # the numerical rank of the stored (float32) weights: svdcore's one rank tolerance
    tol = default_rtol(tuple(W.shape), torch.float32) * float(s_w[0]) if s_w.numel() else 0.0
    r = int((s_w > tol).sum()) if rank is None else max(1, min(int(rank), n))
    U_pw, s_pw, _ = svd(PW)
    st = make_stencil(stencil, n)
    basis_r = st.eigenvectors[:, :r]
    U_r = _aligned(U_pw[:, :r], (U_pw[:, :r] * basis_r).sum(0))  # overlaid on the basis
    W_next = W_next_Pt = None
    if next_layer is not None:
        W_next = net.matrix(next_layer).double()
        W_next_Pt = W_next @ P.T
    return LayerDescrambling(
        layer=layer,
        position=position,
        source=source if criterion == "smoothness" else "weights",
        result=res,
        W=W,
        PW=PW,
        U_r=U_r,
        sigma_r=s_pw[:r],
        basis_r=basis_r,
        angles=principal_angles(U_r, basis_r) if r < n else np.zeros(r),
        phi=_phi_aligned(P, U_w[:, :r]),
        n_signals=n_signals,
        next_layer=next_layer,
        W_next=W_next,
        W_next_Pt=W_next_Pt,
        c=c,
    )


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class DescrambleOptions:
    """The options of :func:`descramble_layer` as one record that knows which of them
    change the result.

    ``samples``: N for the noise source, and the number of inputs the caller passes for
    the dataset and Jacobian sources; ``seed`` seeds the noise. :meth:`normalized` resets
    every option that cannot change the result (so equivalent requests are equal), and
    :meth:`cache_key` is exactly the options that do. Criteria judged on the weights alone
    ("mds", "max_diagonal_norm") have the source "weights".
    """

    source: str = "limit"
    samples: int = 10_000
    stencil: str = "fourier"
    method: str = "exact"
    criterion: str = "smoothness"
    position: str = "linear"
    det_one: bool = False
    steps: int = 500
    lr: float = 3e-2
    seed: int = 0
    optimizer: str = "riemannian"

    def validate(self) -> None:
        """Raise ``DataError`` with a sentence for an unknown or impossible option."""
        self.check_choices()
        if self.uses_samples and self.samples < 1:
            raise DataError("N must be at least 1 for this data source.")
        if self.method == "iterative":
            if self.steps < 1:
                raise DataError("The number of steps must be at least 1.")
            if not (math.isfinite(self.lr) and self.lr > 0):
                raise DataError("The learning rate must be a positive number.")

    def check_choices(self) -> None:
        """Raise ``DataError`` naming the choices for an unknown source, stencil, method,
        criterion or position."""
        for name, value, allowed in (
            ("data source", self.source, SOURCES),
            ("stencil", self.stencil, STENCILS),
            ("method", self.method, METHODS),
            ("criterion", self.criterion, CRITERIA),
            ("wiretap position", self.position, POSITIONS),
            ("optimizer", self.optimizer, OPTIMIZERS),
        ):
            if value not in allowed:
                raise DataError(f"Unknown {name} {value!r}; choose one of {', '.join(allowed)}.")

    @property
    def uses_samples(self) -> bool:
        """True when ``samples`` enters the result (signals from noise or data)."""
        return self.criterion == "smoothness" and self.source != "limit"

    @property
    def uses_data(self) -> bool:
        """True when the result needs the caller's inputs ``x`` (dataset, Jacobian)."""
        return self.criterion == "smoothness" and self.source in ("dataset", "jacobian")

    def normalized(self) -> DescrambleOptions:
        """These options with every setting that cannot change the result reset."""
        o = self
        if o.criterion != "smoothness":  # judged on the weights alone: no signals, no det
            position = "second" if o.position == "second" else "linear"
            o = replace(o, source="weights", samples=0, det_one=False, position=position)
        elif o.source == "limit":
            o = replace(o, samples=0)
        if o.source != "noise":
            o = replace(o, seed=0)
        if o.method == "exact":
            o = replace(o, steps=0, lr=0.0, optimizer="riemannian")
        return o

    def cache_key(self) -> tuple[Any, ...]:
        """The normalised options that change the result, as a hashable tuple (the data,
        network and layer are the caller's part of a key)."""
        o = self.normalized()
        return (
            "descramble-options",
            o.source,
            o.samples,
            o.stencil,
            o.method,
            o.criterion,
            o.position,
            o.det_one,
            o.steps,
            o.lr,
            o.seed,
            o.optimizer,
        )

    @property
    def needs_network(self) -> bool:
        """True when more than the layer's own W enters the result (other layers, data)."""
        o = self.normalized()
        if o.criterion != "smoothness":
            return o.position == "second"
        return o.position != "linear" or o.source in ("dataset", "jacobian")

    def run(
        self,
        net: Network,
        layer: str,
        *,
        x: torch.Tensor | np.ndarray | None = None,
        progress: Callable[[int, int, float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> LayerDescrambling:
        """:func:`descramble_layer` with these (normalised) options."""
        o = self.normalized()
        return descramble_layer(
            net,
            layer,
            position=o.position,  # type: ignore[arg-type]
            source="limit" if o.source == "weights" else o.source,  # type: ignore[arg-type]
            x=x,
            n_noise=max(o.samples, 1),
            stencil=o.stencil,  # type: ignore[arg-type]
            method=o.method,  # type: ignore[arg-type]
            criterion=o.criterion,  # type: ignore[arg-type]
            det_one=o.det_one,
            steps=max(o.steps, 1),
            lr=o.lr or 3e-2,
            optimizer=o.optimizer,  # type: ignore[arg-type]
            progress=progress,
            should_stop=should_stop,
            seed=o.seed,
        )
