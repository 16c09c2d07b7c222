"""Jacobians as matrix-free linear operators (the operator half of :mod:`svdcore.jacobian`).

A :class:`JacobianOperator` is the Jacobian A = df/dx (n_out x n_in) of a function of one
flat vector at a point x0. It never forms A: ``matvec`` / ``matmat`` are forward-mode
products A v (``torch.func.jvp``), ``rmatvec`` / ``rmatmat`` reverse-mode products A^T u
(``torch.func.vjp``), a block of vectors being pushed through in chunks with ``vmap``.
``dense()`` materialises A (chunked; forward mode when n_in < n_out, else reverse mode)
for the small cases that need the full matrix.

**Memory.** One vector pushed through a function costs about ``2 * itemsize * (n_in + n_out
+ width)`` bytes (primal and tangent of every intermediate; ``width`` the number of
intermediate values of one forward pass, measured with hooks on the leaf modules for a
network). A chunk holds ``chunk = max(1, budget_bytes // that)`` vectors, so the peak extra
memory of any product is about ``budget_bytes`` (default :data:`DEFAULT_BUDGET_BYTES`,
256 MiB), whatever the number of vectors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch.func import jvp, vjp, vmap

from .exceptions import DataError

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "JacobianOperator",
    "chunk_size",
    "jacobian_operator",
    "value_and_pullback",
]

DEFAULT_BUDGET_BYTES = 256 * 2**20


def chunk_size(per_vector_bytes: int, budget_bytes: int | None = None) -> int:
    """How many vectors of ``per_vector_bytes`` each fit in ``budget_bytes`` (at least 1)."""
    budget = DEFAULT_BUDGET_BYTES if budget_bytes is None else int(budget_bytes)
    if budget < 1:
        raise DataError(f"the memory budget must be a positive number of bytes, got {budget}.")
    return max(1, budget // max(1, int(per_vector_bytes)))


# --------------------------------------------------------------------------- the operator
class JacobianOperator:
    """The Jacobian A (``shape`` = (n_out, n_in)) of ``f`` at ``x0``, matrix-free.

    ``f`` maps a flat (n_in,) tensor to a flat (n_out,) tensor; ``value`` = f(x0).
    ``context`` (optional) is entered around every evaluation of ``f`` (locks, hooks).
    ``chunk`` vectors are pushed through at once (see the module docstring for the memory
    rule). ``rows`` (B > 1, with ``f_rows``): ``f_rows`` maps (B, n_in) -> (B, n_out) row by
    row independently, and each pass through it carries B vectors, one per row, at the point
    x0 repeated (a fixed-batch program). Invariant (tests): ``dense()`` equals
    ``torch.autograd.functional.jacobian``.
    """

    def __init__(
        self,
        f: Callable[[torch.Tensor], torch.Tensor],
        x0: torch.Tensor,
        *,
        value: torch.Tensor | None = None,
        context: Callable[[], contextlib.AbstractContextManager] | None = None,
        width: int | None = None,
        budget_bytes: int | None = None,
        f_rows: Callable[[torch.Tensor], torch.Tensor] | None = None,
        rows: int = 1,
    ):
        self._f = f
        self._f_rows = f_rows if rows > 1 else None
        self.rows = int(rows) if f_rows is not None else 1
        self._context = context or contextlib.nullcontext
        self.x0 = x0.detach().reshape(-1)
        if value is None:
            with self._context(), torch.no_grad():
                value = f(self.x0)
        self.value = value.detach().reshape(-1)
        self.shape = (int(self.value.numel()), int(self.x0.numel()))
        self.dtype = self.x0.dtype
        self.device = self.x0.device
        item = self.x0.element_size()
        inner = sum(self.shape) if width is None else int(width)
        self.per_vector_bytes = 2 * item * (sum(self.shape) + inner)
        self.chunk = chunk_size(self.per_vector_bytes, budget_bytes)
        if self.rows > 1:  # a pass holds B vectors' worth of values whatever it carries
            self.chunk = self.rows * max(1, self.chunk // self.rows)

    def __repr__(self) -> str:
        return f"JacobianOperator(shape={self.shape}, dtype={self.dtype}, chunk={self.chunk})"

    def _blocks(self, V: torch.Tensor) -> Iterator[torch.Tensor]:
        yield from torch.split(V, self.chunk, dim=1)

    def _packed(self, block: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The columns of ``block`` as (groups, B, n) row packs, zero-padded; and their count."""
        n, c = block.shape
        groups = -(-c // self.rows)
        pad = block.new_zeros(n, groups * self.rows - c)
        return torch.cat([block, pad], dim=1).T.reshape(groups, self.rows, n), c

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """A V for V (n_in, k) -> (n_out, k), forward mode (k jvps, ``chunk`` at a time)."""
        V = self._check(V, 1)
        x0 = self.x0
        rows = x0.expand(self.rows, -1).contiguous()

        def push(v: torch.Tensor) -> torch.Tensor:
            return jvp(self._f, (x0,), (v,))[1]

        def push_rows(vs: torch.Tensor) -> torch.Tensor:  # (B, n_in) -> (B, n_out)
            return jvp(self._f_rows, (rows,), (vs,))[1]

        out = []
        with self._context(), torch.no_grad():  # the transforms ignore an outer no_grad
            for block in self._blocks(V):
                if self._f_rows is None:
                    out.append(vmap(push)(block.T).T.detach())
                else:
                    packs, c = self._packed(block)
                    done = vmap(push_rows)(packs).reshape(-1, self.shape[0])[:c]
                    out.append(done.T.detach())
        return torch.cat(out, dim=1) if out else V.new_zeros(self.shape[0], 0)

    def rmatmat(self, U: torch.Tensor) -> torch.Tensor:
        """A^T U for U (n_out, k) -> (n_in, k), reverse mode (one forward per chunk)."""
        U = self._check(U, 0)
        out = []
        with self._context(), torch.no_grad():
            for block in self._blocks(U):
                if self._f_rows is None:
                    _, pull = vjp(self._f, self.x0)
                    out.append(vmap(lambda u, pull=pull: pull(u)[0])(block.T).T.detach())
                else:
                    _, pull = vjp(self._f_rows, self.x0.expand(self.rows, -1).contiguous())
                    packs, c = self._packed(block)
                    done = vmap(lambda us, pull=pull: pull(us)[0])(packs)
                    out.append(done.reshape(-1, self.shape[1])[:c].T.detach())
        return torch.cat(out, dim=1) if out else U.new_zeros(self.shape[1], 0)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """A v for v (n_in,) -> (n_out,)."""
        return self.matmat(v.reshape(-1, 1))[:, 0]

    def rmatvec(self, u: torch.Tensor) -> torch.Tensor:
        """A^T u for u (n_out,) -> (n_in,): one forward and one backward pass."""
        return self.rmatmat(u.reshape(-1, 1))[:, 0]

    def dense(self) -> torch.Tensor:
        """A itself (n_out, n_in): identity columns pushed forward when n_in < n_out, rows
        pulled back otherwise (the cheaper number of passes), ``chunk`` at a time."""
        n_out, n_in = self.shape
        if n_in < n_out:
            return self.matmat(torch.eye(n_in, dtype=self.dtype, device=self.x0.device))
        return self.rmatmat(torch.eye(n_out, dtype=self.dtype, device=self.x0.device)).T

    def _check(self, V: torch.Tensor, axis: int) -> torch.Tensor:
        n = self.shape[axis]
        if V.ndim != 2 or V.shape[0] != n:
            raise DataError(
                f"expected vectors of length {n} as columns, got shape {tuple(V.shape)}."
            )
        return V.to(dtype=self.dtype, device=self.x0.device)


def jacobian_operator(
    f: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    budget_bytes: int | None = None,
) -> JacobianOperator:
    """The Jacobian of ``f`` (flat (n_in,) -> flat (n_out,)) at ``x0`` as an operator."""
    return JacobianOperator(f, x0, budget_bytes=budget_bytes)


def value_and_pullback(
    f: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    cotangent: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x0), J^T u)`` with ``u = cotangent(f(x0))``, in one forward and one backward pass
    (``torch.func.vjp``): the gradient of an objective of the output, e.g. ``u = 2 (y - t)``
    for ``||y - t||^2``. Shapes are those of ``f``'s input and output (not flattened)."""
    with torch.no_grad():
        value, pull = vjp(f, x0.detach())
        return value.detach(), pull(cotangent(value.detach()))[0].detach()
