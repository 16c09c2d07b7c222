"""Spectral surgery (Druc et al., SpecXAI, section 4): a prediction as a sum of singular
components of the locally linear network.

At an input x, a network of pointwise-affine pieces is locally affine: y = J x + b with
J = dy/dx and b = f(x) - J x (eq. 8). Split at layer l (its output z_l): J = L R + B with
R = dz_l/dx, L = dy/dz_l (the partial derivative through z_l) and B the part of J that
bypasses z_l (skip connections around the split; zero for a chain). With R = U S V^T:

    c_k = s_k (v_k . x)                   spectral coefficients (eq. 18)
    alpha[j, k] = (L U)[j, k] c_k         contributions (eq. 20)
    y_j = sum_k alpha[j, k] + (B x)_j + b_j   exactly.

Per-layer bias terms beta_l = (dy/db_l) b_l (eq. 9) sum to b for piecewise-linear networks
(ReLU, leaky ReLU); for smooth activations the remainder b - sum beta_l is reported.

Jacobians come from the one engine, :mod:`svdcore.jacobian` (operators built from
``torch.func.jvp`` / ``vjp``, chunked with ``vmap`` in a stated memory budget), in float64
on a private copy of the module; the small dense matrices here are materialised from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from ._validate import count
from .device import check_memory, default_device
from .exceptions import DataError, ExecutionError
from .jacobian import (
    SplitOperators,
    module64,
    network_inputs,
    network_operator,
    parameter_jvp,
    parameters64,
    split_operators,
)
from .network import Network
from .randomized import DEFAULT_POWER_ITERATIONS, OperatorSVD, basis_columns, operator_svd
from .spectrum import canonical_signs
from .surgery_reduce import Pruned, Reduced, contract, normalise, prune, sign_reduce, threshold

__all__ = [
    "LocalAffine",
    "Pruned",
    "Reduced",
    "Surgery",
    "contract",
    "depth_evolution",
    "local_affine",
    "normalise",
    "prune",
    "sign_reduce",
    "singular_vector_similarity",
    "spectral_surgery",
    "threshold",
]


# --------------------------------------------------------------------------- local affine map
@dataclass(frozen=True)
class LocalAffine:
    """y = J x + b at each input of a batch (B samples, M inputs, N outputs).

    ``x`` (B, M) flattened, ``y`` (B, N), ``J`` (B, N, M), ``bias`` (B, N) = y - J x;
    ``layer_bias`` name -> (B, N) beta_l = (dy/db_l) b_l; ``remainder`` (B, N) =
    bias - sum_l beta_l (zero up to round-off for piecewise-linear networks).
    """

    x: torch.Tensor
    y: torch.Tensor
    J: torch.Tensor
    bias: torch.Tensor
    layer_bias: dict[str, torch.Tensor]
    remainder: torch.Tensor


def local_affine(net: Network, x: torch.Tensor | np.ndarray) -> LocalAffine:
    """The local affine form y = J x + b of ``net`` at every input of the batch ``x``.

    Invariant (tests): J x + b == f(x); for ReLU networks sum_l beta_l == b.
    """
    xb = network_inputs(net, x, "spectral surgery")
    ops = [network_operator(net, xs) for xs in xb]
    y = torch.stack([op.value for op in ops])
    J = torch.stack([op.dense() for op in ops])
    flat = xb.reshape(xb.shape[0], -1)
    bias = y - torch.einsum("bnm,bm->bn", J, flat)
    layer_bias, remainder = _bias_terms(net, xb, bias)
    return LocalAffine(flat, y, J, bias, layer_bias, remainder)


# --------------------------------------------------------------------------- surgery
@dataclass(frozen=True)
class Surgery:
    """Spectral surgery of one input at one split (see the module docstring).

    Shapes (M inputs, N outputs, d = size of z_l, r components): ``x`` (M,), ``y`` (N,),
    ``S`` (r,) descending, ``U`` (d, r), ``V`` (M, r) right singular vectors phi_k as
    columns, ``L`` (N, d) (empty for a top-k surgery, which never forms it), ``coeffs``
    (r,), ``alpha`` (N, r), ``bias`` (N,), ``bypass`` (N,) = (J - L R) x, ``layer_bias``
    name -> (N,), ``remainder`` (N,).

    An exact surgery has all r = min(d, M) components and ``rest`` None. A top-k surgery
    (``spectral_surgery(..., rank=k)``) has the k leading components of a randomized SVD
    of R, ``rest`` (N,) = L (R - R_k) x, the output of the rest of the spectrum (computed
    from L R x, so nothing is lost), ``residuals`` (k,) each triplet's residual norm
    (:mod:`svdcore.randomized`) and ``components`` = min(d, M), the number of components
    of the full decomposition. Invariant: alpha.sum(1) + rest + bypass + bias == y.
    """

    x: torch.Tensor
    input_shape: tuple[int, ...]
    y: torch.Tensor
    split: str
    S: torch.Tensor
    U: torch.Tensor
    V: torch.Tensor
    L: torch.Tensor
    coeffs: torch.Tensor
    alpha: torch.Tensor
    bias: torch.Tensor
    bypass: torch.Tensor
    layer_bias: dict[str, torch.Tensor] = field(default_factory=dict)
    remainder: torch.Tensor | None = None
    output: int | None = None
    rest: torch.Tensor | None = None
    residuals: torch.Tensor | None = None
    components: int | None = None

    @property
    def exact(self) -> bool:
        """True when every component is here (no rest-of-spectrum term)."""
        return self.rest is None

    @property
    def reconstruction(self) -> torch.Tensor:
        """alpha.sum(1) + rest + bypass + bias: equals ``y``."""
        total = self.alpha.sum(1) + self.bypass + self.bias
        return total if self.rest is None else total + self.rest

    _ARRAYS: ClassVar[tuple[str, ...]] = (
        "x",
        "y",
        "S",
        "U",
        "V",
        "L",
        "coeffs",
        "alpha",
        "bias",
        "bypass",
        "remainder",
        "rest",
        "residuals",
    )

    def to_numpy(self) -> dict[str, Any]:
        """Every field as CPU numpy (float64 arrays; ``layer_bias`` a dict of them), so that
        ``Surgery.from_arrays(**s.to_numpy())`` gives the same surgery back."""
        out: dict[str, Any] = {
            k: _np64(getattr(self, k)) for k in self._ARRAYS if getattr(self, k) is not None
        }
        out["layer_bias"] = {k: _np64(v) for k, v in self.layer_bias.items()}
        out.update(split=self.split, input_shape=tuple(self.input_shape), output=self.output)
        out["components"] = self.components
        return out

    @classmethod
    def from_arrays(
        cls,
        *,
        split: str,
        input_shape: Sequence[int],
        output: int | None = None,
        layer_bias: dict[str, Any] | None = None,
        components: int | None = None,
        **arrays: Any,
    ) -> Surgery:
        """A Surgery from numpy arrays (or tensors) named as the fields; ``U`` and ``L``
        may be left out (empty: the reductions and ``prune`` do not use them)."""
        missing = {"x", "y", "S", "V", "coeffs", "alpha", "bias", "bypass"} - set(arrays)
        unknown = set(arrays) - set(cls._ARRAYS)
        if missing or unknown:
            raise DataError(
                "Surgery.from_arrays needs the arrays x, y, S, V, coeffs, alpha, bias and "
                f"bypass (missing: {sorted(missing)}; not fields: {sorted(unknown)})."
            )
        t = {k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items() if v is not None}
        empty = torch.empty(0, dtype=torch.float64)
        return cls(
            split=split,
            input_shape=tuple(int(n) for n in input_shape),
            U=t.pop("U", empty),
            L=t.pop("L", empty),
            layer_bias={k: torch.as_tensor(np.asarray(v)) for k, v in (layer_bias or {}).items()},
            output=output,
            components=None if components is None else int(components),
            **t,
        )


def _np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _split_jacobians(
    net: Network, xb: torch.Tensor, split: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """y (B, N), J (B, N, M), R (B, d, M), L (B, N, d), dense from the engine's operators;
    an ``ExecutionError`` naming the memory they need when the machine lacks it."""
    parts = [split_operators(net, xs, split) for xs in xb]
    (d, m), n = parts[0].R.shape, parts[0].J.shape[0]
    r = min(d, m)
    # R, L, J and the SVD's U and V^T (the solver's workspace is about another R), float64
    check_memory(
        8 * len(parts) * (2 * d * m + n * d + n * m + d * r + r * m),
        what=f"the exact surgery at {split} (dense Jacobians: R is {d:,} x {m:,})",
        hint="Pass rank=k to compute the top k components without forming them.",
    )
    return (
        torch.stack([p.y for p in parts]),
        torch.stack([p.J.dense() for p in parts]),
        torch.stack([p.R.dense() for p in parts]),
        torch.stack([p.L.dense() for p in parts]),
    )


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _bias_terms(
    net: Network, xb: torch.Tensor, bias: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """beta_l = (dy/db_l) b_l per layer with a bias (B, N) each, and bias - sum_l beta_l.

    An eval-mode BatchNorm shifts by b - mu w / sqrt(var + eps), not b alone: that whole
    shift is its b_l (its parameter b enters additively, so the derivative along b carries
    it), and a piecewise-linear network with BatchNorm has a zero remainder too."""
    module, _ = module64(net)
    norms = {name: m for name, m in module.named_modules() if isinstance(m, _BATCH_NORMS)}
    tangents: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in parameters64(net).items():
        if not key.endswith("bias"):
            continue
        layer = key[: -len(".bias")] or key
        norm = norms.get(layer)
        if norm is not None and norm.running_mean is not None and norm.weight is not None:
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            value = value - norm.running_mean * scale
        tangents[layer] = {key: value}
    layer_bias = parameter_jvp(net, xb, tangents)
    total = sum(layer_bias.values()) if layer_bias else torch.zeros_like(bias)
    return layer_bias, bias - total


def spectral_surgery(
    net: Network,
    x: torch.Tensor | np.ndarray,
    *,
    split: str,
    output: int | None = None,
    bias_terms: bool = True,
    rank: int | None = None,
    power_iterations: int = DEFAULT_POWER_ITERATIONS,
    tol: float | None = None,
    seed: int = 0,
    budget_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: torch.device | str | None = None,
    precision: Literal["float64", "float32"] = "float64",
) -> Surgery | list[Surgery]:
    """Spectral surgery of ``net`` at input ``x`` (one sample, or a batch -> a list).

    ``split``: the module whose output z_l splits the network (e.g. ``"fc2"``, ``"conv2"``).
    ``output``: the output index of interest (kept for the reductions; all outputs are
    decomposed). ``rank`` None: the exact surgery, all min(d, M) components, from dense
    Jacobians (small splits). ``rank`` k: the k leading components from a seeded randomized
    SVD of R over the Jacobian operators (``power_iterations``, at most, with ``tol`` the
    Ritz-value stopping rule; ``seed``; :func:`svdcore.randomized.operator_svd`), never
    forming R, L or J, plus the exact
    rest-of-spectrum term (see :class:`Surgery`); ``budget_bytes`` bounds the memory of
    each batch of Jacobian products (:mod:`svdcore.jacobian`). A top-k surgery reports
    ``progress(done, total)`` after each block step of the randomized SVD (over all the
    samples) and asks ``should_stop()`` before each: True raises ``ExecutionError``
    ("cancelled"); its Jacobian products and randomized SVD run on ``device`` (None:
    :func:`svdcore.device.default_device`, a GPU when there is one), the result comes back
    on the CPU. ``precision="float32"`` (top-k only) pushes the Jacobian products through a
    float32 copy of the network (several times faster through convolutions on a CPU; the
    products and so the triplets to about 1e-7 relative) while the Krylov basis, the
    Rayleigh-Ritz step and every result stay float64: the parts still add up to y to
    round-off, y being the float32 network's output. Raises ``LayerError`` for an unknown
    split, ``ExecutionError`` for a
    weights-only network, ``DataError`` for inputs that do not fit or a bad ``rank``.
    """
    count(rank, what="rank", none=True, note=" (None: every component)")
    if precision not in ("float64", "float32"):
        raise DataError(f"precision must be 'float64' or 'float32', got {precision!r}.")
    if precision == "float32" and rank is None:
        raise DataError(
            "precision='float32' is for the top-k surgery (rank=k); the exact one is float64."
        )
    single = _is_single(net, x)
    xb = network_inputs(net, x, "spectral surgery")
    if rank is None:
        results = _exact(net, xb, split)
        _check_output(output, results[0].y.shape[0])
    else:
        where = default_device() if device is None else torch.device(device)
        dtype = torch.float32 if precision == "float32" else torch.float64
        parts = [
            split_operators(net, xs, split, budget_bytes=budget_bytes, device=where, dtype=dtype)
            for xs in xb
        ]
        _check_output(output, parts[0].y.shape[0])  # before the long part
        shape = tuple(xb.shape[1:])
        steps = power_iterations + 2 if isinstance(power_iterations, int) else 0
        results = []
        for i, p in enumerate(parts):

            def report(done: int, _total: int, i: int = i) -> None:
                if progress is not None:
                    progress(i * steps + done, len(parts) * steps)

            _check_top_k_memory(p, rank, power_iterations)
            top = operator_svd(
                p.R,
                rank,
                power_iterations=power_iterations,
                tol=tol,
                seed=seed,
                progress=report,
                should_stop=should_stop,
            )
            results.append(_top_k(p, rank, top, input_shape=shape))
    if bias_terms:
        layer_bias, remainder = _bias_terms(net, xb, torch.stack([r.bias for r in results]))
        results = [
            replace(r, layer_bias={k: v[i] for k, v in layer_bias.items()}, remainder=remainder[i])
            for i, r in enumerate(results)
        ]
    if output is not None:
        results = [replace(r, output=int(output)) for r in results]
    return results[0] if single else results


def _check_output(output: int | None, n_out: int) -> None:
    if output is not None and not (0 <= int(output) < n_out):
        raise DataError(f"output index {output} is out of range: the network has {n_out}.")


def _exact(net: Network, xb: torch.Tensor, split: str) -> list[Surgery]:
    """Every component, from the dense Jacobians of each sample of the batch."""
    y, J, R, L = _split_jacobians(net, xb, split)
    flat = xb.reshape(xb.shape[0], -1)
    U, S, Vh = torch.linalg.svd(R, full_matrices=False)
    # svdcore's sign convention, applied to the right singular vectors phi_k (the input
    # patterns shown): the largest entry of each phi_k is positive, u_k flipped with it
    for i in range(U.shape[0]):
        V_i, Ut_i = canonical_signs(Vh[i].T, U[i].T)
        U[i], Vh[i] = Ut_i.T, V_i.T
    coeffs = S * torch.einsum("brm,bm->br", Vh, flat)
    alpha = torch.einsum("bnd,bdr->bnr", L, U) * coeffs[:, None, :]
    bias = y - torch.einsum("bnm,bm->bn", J, flat)
    bypass = torch.einsum("bnm,bm->bn", J - L @ R, flat)
    return [
        Surgery(
            x=flat[i],
            input_shape=tuple(xb.shape[1:]),
            y=y[i],
            split=split,
            S=S[i],
            U=U[i],
            V=Vh[i].T,
            L=L[i],
            coeffs=coeffs[i],
            alpha=alpha[i],
            bias=bias[i],
            bypass=bypass[i],
            components=int(S.shape[1]),
        )
        for i in range(xb.shape[0])
    ]


def _check_top_k_memory(parts: SplitOperators, rank: int, power_iterations: int) -> None:
    """The Krylov basis and A^T of it, the triplets, L U, plus the products' budget."""
    (d, m), n = parts.R.shape, parts.J.shape[0]
    width = basis_columns(parts.R.shape, rank, power_iterations=power_iterations)
    check_memory(
        8 * (2 * width * (d + m) + rank * (d + m + n)) + parts.R.chunk * parts.R.per_vector_bytes,
        what=f"the top-{rank} surgery at {parts.split} (R is {d:,} x {m:,})",
        hint="Choose a smaller rank or fewer power iterations.",
        device=parts.R.device,
    )


def _top_k(
    parts: SplitOperators, rank: int, top: OperatorSVD, *, input_shape: tuple[int, ...]
) -> Surgery:
    """The ``rank`` leading components of one sample (``top``: the SVD of its R) and the
    rest term, matrix-free."""
    x, y = parts.x.double(), parts.y.double()  # products in the operators' dtype, the rest
    coeffs = top.S * (top.V.mT @ x)  # in float64
    alpha = parts.L.matmat(top.U).double() * coeffs  # (L u_k) c_k: k products through L
    jx = parts.J.matvec(x).double()
    lrx = parts.L.matvec(parts.R.matvec(x)).double()
    cpu = {  # computed where the operators live, returned on the CPU
        "x": x,
        "y": y,
        "S": top.S,
        "U": top.U,
        "V": top.V,
        "coeffs": coeffs,
        "alpha": alpha,
        "bias": y - jx,
        "bypass": jx - lrx,
        "rest": lrx - alpha.sum(1),
        "residuals": top.residuals,
    }
    return Surgery(
        input_shape=input_shape,
        split=parts.split,
        L=torch.empty(0, dtype=torch.float64),
        components=min(parts.R.shape),
        **{k: v.cpu() for k, v in cpu.items()},
    )


def _is_single(net: Network, x: torch.Tensor | np.ndarray) -> bool:
    shape = tuple(np.shape(x))
    return net.input_shape is not None and shape == tuple(net.input_shape)


# --------------------------------------------------------------------------- across a dataset
def singular_vector_similarity(
    net: Network,
    x: torch.Tensor | np.ndarray,
    *,
    split: str,
    k: int = 0,
    batch_size: int = 64,
    rank: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Cosine similarity <phi_k(x_i), phi_k(x_j)> of the k-th right singular vector between
    every pair of samples (SpecXAI Fig. 5); (N, N), ones on the diagonal. Signs follow the
    deterministic convention (largest entry positive). ``rank``: as in
    :func:`spectral_surgery` (None: exact; an int: the top ``rank`` vectors, matrix-free,
    which must include the k-th)."""
    xb = network_inputs(net, x, "spectral surgery")
    vecs = []
    for start in range(0, xb.shape[0], batch_size):
        if should_stop is not None and should_stop():
            raise ExecutionError("cancelled")
        part = xb[start : start + batch_size]
        results = spectral_surgery(net, part, split=split, bias_terms=False, rank=rank)
        results = results if isinstance(results, list) else [results]
        if k >= results[0].V.shape[1]:
            raise DataError(f"k = {k} exceeds the {results[0].V.shape[1]} singular vectors.")
        vecs.extend(r.V[:, k] for r in results)
        if progress is not None:
            progress(min(start + batch_size, xb.shape[0]), xb.shape[0])
    Vm = torch.stack(vecs)
    return (Vm @ Vm.T).numpy()


def depth_evolution(
    net: Network, x: torch.Tensor | np.ndarray, *, splits: Sequence[str], rank: int | None = None
) -> list[Surgery]:
    """Surgery of one input at each split in ``splits`` (SpecXAI Fig. 6: the top singular
    vector and the spectrum at each depth); ``rank`` as in :func:`spectral_surgery`."""
    if not splits:
        raise DataError("depth_evolution needs at least one split layer.")
    out = []
    for s in splits:
        res = spectral_surgery(net, x, split=s, bias_terms=False, rank=rank)
        out.append(res[0] if isinstance(res, list) else res)
    return out
