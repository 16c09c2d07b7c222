"""A fine-tune against its base, layer by layer: ΔW's spectrum and ranks, the overlap of
the top-k subspaces, equal to dense numpy float64 on the same matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import svdcore as sc
from svdcore.finetune import FINETUNE_COLUMNS, finetune_table, layer_delta, layer_deltas
from svdcore.sources import DictSource


def _pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    base = {
        "enc.weight": rng.standard_normal((60, 40)),
        "dec.weight": rng.standard_normal((40, 60)),
        "head.weight": rng.standard_normal((10, 40)),
        "bias_only": rng.standard_normal(40),
    }
    low_rank = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 40)) * 0.05
    tuned = {
        "enc.weight": base["enc.weight"] + low_rank,
        "dec.weight": base["dec.weight"] + 0.01 * rng.standard_normal((40, 60)),
        "head.weight": rng.standard_normal((12, 40)),  # a new head: shape changed
        "extra.weight": rng.standard_normal((5, 5)),
    }
    net = lambda t, name: sc.Network(  # noqa: E731
        DictSource({k: torch.from_numpy(v) for k, v in t.items()}), name=name
    )
    return net(base, "base"), net(tuned, "tuned"), base, tuned, low_rank


def test_layer_delta_equals_dense_float64():
    _, _, base, tuned, low_rank = _pair()
    A, B = base["enc.weight"], tuned["enc.weight"]
    d = layer_delta(A, B, k=5, name="enc")
    assert d.rel_change == pytest.approx(np.linalg.norm(B - A) / np.linalg.norm(A), rel=1e-12)
    dense = np.linalg.svd(low_rank, compute_uv=False)
    np.testing.assert_allclose(d.delta_singular_values[:3], dense[:3], rtol=1e-9)
    assert np.all(d.delta_singular_values[3:] < 1e-6 * dense[0])  # a rank-3 update
    assert d.delta_rank90 <= 3
    assert d.delta_stable_rank == pytest.approx(np.sum(dense**2) / dense[0] ** 2, rel=1e-9)
    Ua = np.linalg.svd(A)[0][:, :5]
    Ub = np.linalg.svd(B)[0][:, :5]
    assert d.left_overlap == pytest.approx(np.sum((Ua.T @ Ub) ** 2) / 5, abs=1e-9)
    cos = np.linalg.svd(Ua.T @ Ub, compute_uv=False)
    assert np.degrees(d.left_angles.max()) == pytest.approx(
        np.degrees(np.arccos(np.clip(cos.min(), -1, 1))), abs=1e-5
    )


def test_a_model_against_itself_has_not_moved():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((30, 20))
    d = layer_delta(W, W.copy(), k=4)
    assert d.rel_change == 0 and d.delta_fro == 0 and d.delta_rank90 == 0
    assert d.left_overlap == pytest.approx(1.0) and d.right_overlap == pytest.approx(1.0)
    assert np.all(d.left_angles < 1e-7)


@pytest.mark.parametrize("shape", [(1, 9), (9, 1)])
def test_vectors_and_edge_shapes(shape):
    rng = np.random.default_rng(1)
    A = rng.standard_normal(shape)
    d = layer_delta(A, 2 * A, k=3)
    assert d.k == 1 and d.rel_change == pytest.approx(1.0, rel=1e-12)
    assert d.left_overlap == pytest.approx(1.0) and d.delta_rank90 == 1


def test_bad_pairs_are_named():
    with pytest.raises(sc.DataError, match=r"the base is \(3, 4\), the fine-tune \(4, 3\)"):
        layer_delta(np.ones((3, 4)), np.ones((4, 3)), name="x")
    with pytest.raises(sc.DataError, match=r"NaN|finite"):
        layer_delta(np.ones((3, 4)), np.full((3, 4), np.nan))


def test_whole_checkpoints_and_the_table():
    net_a, net_b, base, tuned, _ = _pair()
    seen = []
    rows, notes = layer_deltas(net_a, net_b, k=4, progress=lambda i, n, name: seen.append(name))
    assert [r.name for r in rows] == ["enc", "dec"] == seen
    assert notes == {
        "head": "shape changed: (10, 40) -> (12, 40)",
        "extra": "only in tuned",
    }
    table = finetune_table(net_a, net_b, k=4)
    assert list(table.columns) == list(FINETUNE_COLUMNS) and len(table) == 4
    dec = table.set_index("name").loc["dec"]
    A, B = base["dec.weight"], tuned["dec.weight"]
    assert dec["rel_change"] == pytest.approx(np.linalg.norm(B - A) / np.linalg.norm(A))
    assert dec["delta_rank90"] > 20  # a dense perturbation is not low-rank
    # stopping early keeps the rows done
    done: list[str] = []
    stopped, _ = layer_deltas(
        net_a,
        net_b,
        k=4,
        progress=lambda i, n, name: done.append(name),
        should_stop=lambda: bool(done),
    )
    assert [r.name for r in stopped] == ["enc"]
    with pytest.raises(sc.LayerError, match="nope"):
        layer_deltas(net_a, net_b, names=["nope"])
