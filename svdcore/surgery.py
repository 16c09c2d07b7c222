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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from .exceptions import DataError, ExecutionError
from .jacobian import network_inputs, network_operator, parameter_jvp, parameters64, split_operators
from .network import Network
from .spectrum import canonical_signs

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
    biases = {k: v for k, v in parameters64(net).items() if k.endswith("bias")}
    tangents = {(k[: -len(".bias")] or k): {k: v} for k, v in biases.items()}
    layer_bias = parameter_jvp(net, xb, tangents)
    total = sum(layer_bias.values()) if layer_bias else torch.zeros_like(bias)
    return LocalAffine(flat, y, J, bias, layer_bias, bias - total)


# --------------------------------------------------------------------------- surgery
@dataclass(frozen=True)
class Surgery:
    """Spectral surgery of one input at one split (see the module docstring).

    Shapes (M inputs, N outputs, d = size of z_l, r = min(d, M)): ``x`` (M,), ``y`` (N,),
    ``S`` (r,) descending, ``U`` (d, r), ``V`` (M, r) right singular vectors phi_k as
    columns, ``L`` (N, d), ``coeffs`` (r,), ``alpha`` (N, r), ``bias`` (N,), ``bypass``
    (N,) = (J - L R) x, ``layer_bias`` name -> (N,), ``remainder`` (N,).
    Invariant: alpha.sum(1) + bypass + bias == y.
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

    @property
    def reconstruction(self) -> torch.Tensor:
        """alpha.sum(1) + bypass + bias: equals ``y``."""
        return self.alpha.sum(1) + self.bypass + self.bias

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
    )

    def to_numpy(self) -> dict[str, Any]:
        """Every field as CPU numpy (float64 arrays; ``layer_bias`` a dict of them), so that
        ``Surgery.from_arrays(**s.to_numpy())`` gives the same surgery back."""
        out: dict[str, Any] = {
            k: _np64(getattr(self, k)) for k in self._ARRAYS if getattr(self, k) is not None
        }
        out["layer_bias"] = {k: _np64(v) for k, v in self.layer_bias.items()}
        out.update(split=self.split, input_shape=tuple(self.input_shape), output=self.output)
        return out

    @classmethod
    def from_arrays(
        cls,
        *,
        split: str,
        input_shape: Sequence[int],
        output: int | None = None,
        layer_bias: dict[str, Any] | None = None,
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
            **t,
        )


def _np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _split_jacobians(
    net: Network, xb: torch.Tensor, split: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """y (B, N), J (B, N, M), R (B, d, M), L (B, N, d), dense from the engine's operators."""
    parts = [split_operators(net, xs, split) for xs in xb]
    return (
        torch.stack([p.y for p in parts]),
        torch.stack([p.J.dense() for p in parts]),
        torch.stack([p.R.dense() for p in parts]),
        torch.stack([p.L.dense() for p in parts]),
    )


def spectral_surgery(
    net: Network,
    x: torch.Tensor | np.ndarray,
    *,
    split: str,
    output: int | None = None,
    bias_terms: bool = True,
) -> Surgery | list[Surgery]:
    """Spectral surgery of ``net`` at input ``x`` (one sample, or a batch -> a list).

    ``split``: the module whose output z_l splits the network (e.g. ``"fc2"``, ``"conv2"``).
    ``output``: the output index of interest (kept for the reductions; all outputs are
    decomposed). Raises ``LayerError`` for an unknown split, ``ExecutionError`` for a
    weights-only network, ``DataError`` for inputs that do not fit.
    """
    single = _is_single(net, x)
    xb = network_inputs(net, x, "spectral surgery")
    y, J, R, L = _split_jacobians(net, xb, split)
    n_out = y.shape[1]
    if output is not None and not (0 <= int(output) < n_out):
        raise DataError(f"output index {output} is out of range: the network has {n_out}.")
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
    layer_bias: list[dict[str, torch.Tensor]] = [{} for _ in range(xb.shape[0])]
    remainder: list[torch.Tensor | None] = [None] * xb.shape[0]
    if bias_terms:
        aff = local_affine(net, xb)
        for i in range(xb.shape[0]):
            layer_bias[i] = {k: v[i] for k, v in aff.layer_bias.items()}
            remainder[i] = aff.remainder[i]
    results = [
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
            layer_bias=layer_bias[i],
            remainder=remainder[i],
            output=None if output is None else int(output),
        )
        for i in range(xb.shape[0])
    ]
    return results[0] if single else results


def _is_single(net: Network, x: torch.Tensor | np.ndarray) -> bool:
    shape = tuple(np.shape(x))
    return net.input_shape is not None and shape == tuple(net.input_shape)


# --------------------------------------------------------------------------- reductions
@dataclass(frozen=True)
class Reduced:
    """Sign-reduced contributions (eq. 21) and their proportions (eq. 22).

    ``values`` all of one sign, sum equal to the input's sum; ``lead[i]`` the original
    component whose sign survived in values[i] (the larger in magnitude at each merge);
    ``groups[i]`` every original component merged into it; ``proportions`` = values / sum.
    """

    values: np.ndarray
    lead: np.ndarray
    groups: list[list[int]]
    proportions: np.ndarray
    rounds: int


def sign_reduce(alpha: torch.Tensor | np.ndarray, *, max_rounds: int = 64) -> Reduced:
    """Repeat SpecXAI eq. (21) until all terms share one sign, then normalise (eq. 22).

    Each round splits the terms into positives and negatives, each ordered by decreasing
    magnitude, adds them pairwise (the i-th positive with the i-th negative) and keeps the
    unpaired tail of the longer list. The sum is preserved exactly at every round.
    """
    a = np.asarray(alpha.detach().cpu().numpy() if isinstance(alpha, torch.Tensor) else alpha)
    a = a.astype(np.float64).reshape(-1)
    if a.size == 0 or not np.isfinite(a).all():
        raise DataError("sign_reduce needs a non-empty vector of finite contributions.")
    values = list(a)
    groups = [[i] for i in range(a.size)]
    leads = list(range(a.size))
    rounds = 0
    while any(v > 0 for v in values) and any(v < 0 for v in values):
        if rounds >= max_rounds:
            break
        pos = sorted((i for i, v in enumerate(values) if v > 0), key=lambda i: -values[i])
        neg = sorted((i for i, v in enumerate(values) if v < 0), key=lambda i: values[i])
        zero = [i for i, v in enumerate(values) if v == 0]
        new_v, new_g, new_l = [], [], []
        for p, q in zip(pos, neg, strict=False):
            new_v.append(values[p] + values[q])
            new_g.append(groups[p] + groups[q])
            new_l.append(leads[p] if values[p] >= -values[q] else leads[q])
        longer = pos if len(pos) > len(neg) else neg
        for i in longer[min(len(pos), len(neg)) :] + zero:
            new_v.append(values[i])
            new_g.append(groups[i])
            new_l.append(leads[i])
        values, groups, leads = new_v, new_g, new_l
        rounds += 1
    vals = np.asarray(values)
    order = np.argsort(-np.abs(vals), kind="stable")
    vals = vals[order]
    total = vals.sum()
    props = vals / total if total != 0 else np.zeros_like(vals)
    return Reduced(
        values=vals,
        lead=np.asarray(leads)[order],
        groups=[groups[i] for i in order],
        proportions=props,
        rounds=rounds,
    )


def normalise(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """Eq. (22): values / sum(values); for same-sign values these are proportions summing to 1."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    total = v.sum()
    if total == 0:
        raise DataError("the contributions sum to zero: there are no proportions to take.")
    return v / total


def threshold(
    alpha: torch.Tensor | np.ndarray,
    *,
    magnitude: float | None = None,
    quantile: float | None = None,
) -> np.ndarray:
    """Mask of the components kept: |alpha| >= magnitude, or >= that quantile of |alpha|."""
    a = np.abs(np.asarray(alpha, dtype=np.float64).reshape(-1))
    if (magnitude is None) == (quantile is None):
        raise DataError("give exactly one of magnitude= or quantile=.")
    if quantile is not None:
        if not 0 <= quantile <= 1:
            raise DataError(f"quantile must lie in [0, 1], got {quantile}.")
        return a >= np.quantile(a, quantile)
    return a >= float(magnitude)


@dataclass(frozen=True)
class Pruned:
    """The output with only the top-k components (by |alpha[output, k]|) kept."""

    kept: np.ndarray
    y: np.ndarray
    y_pruned: np.ndarray
    change: np.ndarray
    relative_change: float


def prune(surgery: Surgery, k: int, *, output: int | None = None) -> Pruned:
    """Keep the k components contributing most to ``output`` (|alpha[output, :]|), drop the rest.

    y_pruned = sum_{kept} alpha[:, k] + bypass + bias; reports y - y_pruned and
    ||y - y_pruned|| / ||y||. Invariant: k = r reproduces y.
    """
    j = surgery.output if output is None else output
    r = surgery.alpha.shape[1]
    if j is None:
        raise DataError("prune needs the output index (output=j) to rank the components.")
    if not 0 <= int(k) <= r:
        raise DataError(f"k must lie in [0, {r}], got {k}.")
    alpha = surgery.alpha.detach().cpu().numpy()
    order = np.argsort(-np.abs(alpha[int(j)]), kind="stable")
    kept = np.sort(order[: int(k)])
    y = surgery.y.detach().cpu().numpy()
    rest = (surgery.bypass + surgery.bias).detach().cpu().numpy()
    y_pruned = alpha[:, kept].sum(1) + rest
    change = y - y_pruned
    norm = float(np.linalg.norm(y))
    return Pruned(kept, y, y_pruned, change, float(np.linalg.norm(change)) / norm if norm else 0.0)


def contract(
    vectors: torch.Tensor | np.ndarray, x: torch.Tensor | np.ndarray, *, input_shape: Sequence[int]
) -> np.ndarray:
    """Feature-wise contraction (eq. 23): c^k_hw = sum_c phi^k_chw x_chw.

    ``vectors`` (M, K) columns phi^k (or one vector (M,)); ``x`` (M,) or of ``input_shape``
    (C, *spatial), channels first as in torch. Returns (K, *spatial); for inputs without a
    channel axis (1-D signals or (H, W) images) the elementwise product phi ⊙ x.
    """
    shape = tuple(int(s) for s in input_shape)
    V = np.asarray(vectors, dtype=np.float64)
    if V.ndim == 1:
        V = V[:, None]
    xv = np.asarray(x, dtype=np.float64).reshape(-1)
    m = int(np.prod(shape))
    if V.shape[0] != m or xv.size != m:
        raise DataError(
            f"contract needs vectors with {m} rows (input shape {shape}) and an input of {m} "
            f"values; got {V.shape[0]} and {xv.size}."
        )
    prod = V.T * xv[None, :]  # (K, M)
    if len(shape) >= 3:
        return prod.reshape(-1, *shape).sum(axis=1)
    return prod.reshape(-1, *shape)


# --------------------------------------------------------------------------- across a dataset
def singular_vector_similarity(
    net: Network,
    x: torch.Tensor | np.ndarray,
    *,
    split: str,
    k: int = 0,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Cosine similarity <phi_k(x_i), phi_k(x_j)> of the k-th right singular vector between
    every pair of samples (SpecXAI Fig. 5); (N, N), ones on the diagonal. Signs follow the
    deterministic convention (largest entry positive)."""
    xb = network_inputs(net, x, "spectral surgery")
    vecs = []
    for start in range(0, xb.shape[0], batch_size):
        if should_stop is not None and should_stop():
            raise ExecutionError("cancelled")
        part = xb[start : start + batch_size]
        results = spectral_surgery(net, part, split=split, bias_terms=False)
        results = results if isinstance(results, list) else [results]
        if k >= results[0].V.shape[1]:
            raise DataError(f"k = {k} exceeds the {results[0].V.shape[1]} singular vectors.")
        vecs.extend(r.V[:, k] for r in results)
        if progress is not None:
            progress(min(start + batch_size, xb.shape[0]), xb.shape[0])
    Vm = torch.stack(vecs)
    return (Vm @ Vm.T).numpy()


def depth_evolution(
    net: Network, x: torch.Tensor | np.ndarray, *, splits: Sequence[str]
) -> list[Surgery]:
    """Surgery of one input at each split in ``splits`` (SpecXAI Fig. 6: the top singular
    vector and the spectrum at each depth)."""
    if not splits:
        raise DataError("depth_evolution needs at least one split layer.")
    out = []
    for s in splits:
        res = spectral_surgery(net, x, split=s, bias_terms=False)
        out.append(res[0] if isinstance(res, list) else res)
    return out
