"""svdscope's per-layer spectral table vs. WeightWatcher's analyze() on one BERT-base-sized
checkpoint, in one process: wall time of each, their ratio, and how well the alphas agree.

    python bench/bench_weightwatcher.py [--threads 1] [--repeat 3] [--layers 12] [--embeddings]
                                        [--seed 0] [--csv per_layer.csv] [--model bert|llama]

--model llama writes one Llama-7B-shaped decoder block instead (q/k/v/o_proj 4096x4096,
gate/up_proj 11008x4096, down_proj 4096x11008, bfloat16, as model.layers.0.*) and prints the
time for it and its extrapolation to the 32 blocks of Llama-7B. Both tools' peak resident
memory above the process's start of each run is printed (sampled every 50 ms).

Writes a random checkpoint with BERT-base's tensors and names (bert.encoder.layer.{i}.
attention.self.{query,key,value}, attention.output.dense 768x768, intermediate.dense
3072x768, output.dense 768x3072, each with its bias and LayerNorm vectors; the pooler;
position 512x768 and token-type 2x768 embeddings) as model.safetensors in a temporary folder
(the file name WeightWatcher looks for in a folder: model*safetensors). Weights are seeded
Gaussians times a per-column Pareto scale (tail index 2-8 per matrix), so each ESD has a
power-law tail (alpha about 1 + index / 2) over a Marchenko-Pastur bulk.

The word embeddings (30522x768) are left out unless --embeddings: by default the two tools
do not treat them alike. WeightWatcher reads every 2-D "*.weight" of a state dict as a
dense layer and fits it (N = 30522 < its max_N = 50000); here svdscope's table is passed
max_elements = 2^24 entries (23.4M here), which leaves them out with a note (its default
is no limit). --embeddings adds them and passes max_elements=None, so both fit the same
layers.

Times (a) `svdcore.spectral_table(svdcore.layer_spectra(svdcore.load_model(file)))` and
(b) `weightwatcher.WeightWatcher(model=folder).analyze()` (its defaults: no plots, no MP
fit), --repeat times each, alternating, after the file is written (both read it from the
page cache); prints the median and the fastest run of each and the ratio of the medians.
--threads sets torch's threads and OMP/MKL/OPENBLAS_NUM_THREADS (scipy's LAPACK, which
WeightWatcher uses on a CPU) to the same number before either library is imported. The
default is 1: with 2 threads on this 2-core machine, any other busy process makes a parallel
SVD 10-30x slower for a while (shared/recipes/performance-facts.md), which swamps the
comparison. The CPU pressure of the machine (Linux PSI, /proc/pressure/cpu) is printed
before and after, to tell a quiet run from a contended one.

Then compares alpha layer by layer on the layers both fitted: median and max |difference|
per kind of layer and overall, and the same for svdcore's fit_powerlaw run on float64
eigenvalues (torch.linalg.svdvals of the float64 matrix, outside the timings), which
separates the effect of the eigenvalues' precision (svdscope: float32 SVD; WeightWatcher:
float64 scipy SVD) from that of the fitting code.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_pressure

HIDDEN, FFN, LAYERS, VOCAB, POSITIONS = 768, 3072, 12, 30522, 512


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS/LAPACK threads of both")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each tool")
    p.add_argument("--layers", type=int, default=LAYERS, help="encoder layers (BERT-base: 12)")
    p.add_argument("--embeddings", action="store_true", help="add the 30522x768 word embeddings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", type=Path, default=None, help="write the per-layer table here")
    p.add_argument("--worst", type=int, default=5, help="list the layers that differ most")
    p.add_argument(
        "--model",
        choices=("bert", "llama"),
        default="bert",
        help="bert: the BERT-base-sized checkpoint; llama: one Llama-7B-shaped decoder block "
        "(q/k/v/o 4096x4096, gate/up 11008x4096, down 4096x11008, bfloat16)",
    )
    p.add_argument(
        "--no-f64", action="store_true", help="skip the float64 svdvals check (llama: skipped)"
    )
    return p.parse_args()


def _llama_block(seed: int) -> dict:
    """One Llama-7B decoder block's tensors (bfloat16), heavy-tailed as _checkpoint_tensors."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    d, ffn = 4096, 11008

    def matrix(rows: int, cols: int) -> torch.Tensor:
        index = 2.0 + 6.0 * float(torch.rand((), generator=gen))
        u = torch.rand(cols, generator=gen, dtype=torch.float64)
        scale = (1.0 - u) ** (-1.0 / index)
        scale = (scale / scale.square().mean().sqrt()).float()
        W = 0.02 * torch.randn(rows, cols, generator=gen) * scale
        return W.to(torch.bfloat16).contiguous()

    pre = "model.layers.0"
    t = {f"{pre}.self_attn.{n}_proj.weight": matrix(d, d) for n in "qkvo"}
    t[f"{pre}.mlp.gate_proj.weight"] = matrix(ffn, d)
    t[f"{pre}.mlp.up_proj.weight"] = matrix(ffn, d)
    t[f"{pre}.mlp.down_proj.weight"] = matrix(d, ffn)
    for norm in ("input_layernorm", "post_attention_layernorm"):
        t[f"{pre}.{norm}.weight"] = torch.ones(d, dtype=torch.bfloat16)
    return t


class _PeakRss:
    """The largest resident set size of this process while the block runs (sampled)."""

    def __enter__(self) -> _PeakRss:
        import threading

        import psutil

        self._proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self.start = self._proc.memory_info().rss

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, self._proc.memory_info().rss)
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _checkpoint_tensors(n_layers: int, embeddings: bool, seed: int) -> dict:
    """BERT-base's tensor names and shapes, heavy-tailed random weights (float32)."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def matrix(rows: int, cols: int, gen: torch.Generator = gen) -> torch.Tensor:
        index = 2.0 + 6.0 * float(torch.rand((), generator=gen))  # column-scale tail index
        u = torch.rand(cols, generator=gen, dtype=torch.float64)
        scale = (1.0 - u) ** (-1.0 / index)  # Pareto(index) >= 1
        scale = (scale / scale.square().mean().sqrt()).float()
        return (0.02 * torch.randn(rows, cols, generator=gen) * scale).contiguous()

    def vector(n: int, value: float | None = None) -> torch.Tensor:
        if value is not None:
            return torch.full((n,), value)
        return 0.02 * torch.randn(n, generator=gen)

    t: dict[str, torch.Tensor] = {}
    emb = "bert.embeddings"
    if embeddings:  # its own stream: the other tensors are the same with or without it
        word = torch.Generator().manual_seed(seed + 1)
        t[f"{emb}.word_embeddings.weight"] = matrix(VOCAB, HIDDEN, word)
    t[f"{emb}.position_embeddings.weight"] = matrix(POSITIONS, HIDDEN)
    t[f"{emb}.token_type_embeddings.weight"] = matrix(2, HIDDEN)
    t[f"{emb}.LayerNorm.weight"] = vector(HIDDEN, 1.0)
    t[f"{emb}.LayerNorm.bias"] = vector(HIDDEN, 0.0)
    for i in range(n_layers):
        pre = f"bert.encoder.layer.{i}"
        dense = {
            "attention.self.query": (HIDDEN, HIDDEN),
            "attention.self.key": (HIDDEN, HIDDEN),
            "attention.self.value": (HIDDEN, HIDDEN),
            "attention.output.dense": (HIDDEN, HIDDEN),
            "intermediate.dense": (FFN, HIDDEN),
            "output.dense": (HIDDEN, FFN),
        }
        for name, (rows, cols) in dense.items():
            t[f"{pre}.{name}.weight"] = matrix(rows, cols)
            t[f"{pre}.{name}.bias"] = vector(rows)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[f"{pre}.{norm}.weight"] = vector(HIDDEN, 1.0)
            t[f"{pre}.{norm}.bias"] = vector(HIDDEN, 0.0)
    t["bert.pooler.dense.weight"] = matrix(HIDDEN, HIDDEN)
    t["bert.pooler.dense.bias"] = vector(HIDDEN)
    return t


def _kind(name: str) -> str:
    """A layer's role, with the encoder-layer index dropped (for the grouped table)."""
    return re.sub(r"^(bert\.(encoder\.layer\.\d+\.)?|model\.layers\.\d+\.)", "", name)


def main() -> None:
    args = _parse()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy / scipy / torch load their BLAS

    import logging

    import numpy as np
    import pandas as pd
    import scipy
    import torch
    from safetensors.torch import save_file

    import svdcore as sc

    torch.set_num_threads(args.threads)
    import weightwatcher as ww

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.WARNING)  # its import sets the root logger to INFO
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            sorted({f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info()})
        )
    except ImportError:
        blas = "threadpoolctl not installed"

    folder = Path(tempfile.mkdtemp(prefix="svdscope-ww-"))
    atexit.register(shutil.rmtree, folder, True)  # the checkpoint is 344 MB: never leave it
    path = folder / "model.safetensors"
    llama = args.model == "llama"
    if llama:
        tensors = _llama_block(args.seed)
    else:
        tensors = _checkpoint_tensors(args.layers, args.embeddings, args.seed)
    save_file(tensors, str(path), metadata={"format": "pt"})
    n_mats = sum(1 for v in tensors.values() if v.ndim == 2)
    n_params = sum(v.numel() for v in tensors.values())
    print(
        f"checkpoint: {len(tensors)} tensors, {n_mats} matrices, {n_params / 1e6:.1f}M "
        f"parameters, {path.stat().st_size / 1e6:.0f} MB "
        + ("bfloat16 (one Llama-7B block)" if llama else "float32")
        + ("" if llama else " (with" if args.embeddings else " (no")
        + ("" if llama else " word embeddings)")
    )
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), scipy "
        f"{scipy.__version__}, numpy {np.__version__}, weightwatcher {ww.__version__}; "
        f"BLAS pools: {blas}"
    )
    max_elements = None if args.embeddings or llama else 1 << 24

    def run_ours() -> pd.DataFrame:
        net = sc.load_model(path)
        return sc.spectral_table(sc.layer_spectra(net, max_elements=max_elements))

    def run_ww() -> pd.DataFrame:
        return ww.WeightWatcher(model=str(folder)).analyze()

    print(f"CPU pressure before: {cpu_pressure()}")
    times: dict[str, list[float]] = {"svdscope": [], "weightwatcher": []}
    peaks: dict[str, int] = {"svdscope": 0, "weightwatcher": 0}
    for _ in range(args.repeat):
        for tool, fn in (("svdscope", run_ours), ("weightwatcher", run_ww)):
            with _PeakRss() as rss:
                t0 = time.perf_counter()
                result = fn()
                times[tool].append(time.perf_counter() - t0)
            peaks[tool] = max(peaks[tool], rss.peak - rss.start)
            if tool == "svdscope":
                ours = result
            else:
                details = result
    print(f"CPU pressure after:  {cpu_pressure()}")

    fitted = ours[ours["alpha"].notna()].set_index("name")
    theirs = details[details["alpha"] > 0].set_index("name")
    med = {tool: float(np.median(t)) for tool, t in times.items()}
    head = f"{'tool':>14} {'median s':>8} {'fastest s':>9} {'runs':>4} "
    print(head + f"{'layers fitted':>13} {'ratio':>6} {'peak RSS +MB':>12}")
    for tool, n_fit in (("svdscope", len(fitted)), ("weightwatcher", len(theirs))):
        print(
            f"{tool:>14} {med[tool]:>8.2f} {min(times[tool]):>9.2f} {len(times[tool]):>4d} "
            f"{n_fit:>13d} {med[tool] / med['svdscope']:>6.2f} {peaks[tool] / 1e6:>12.0f}"
        )
    if llama:
        print(
            f"one Llama-7B block: svdscope {med['svdscope']:.1f} s; 32 blocks (the whole "
            f"model's decoder) about {32 * med['svdscope'] / 60:.1f} min at this thread count"
        )
    only_ours = sorted(set(fitted.index) - set(theirs.index))
    only_theirs = sorted(set(theirs.index) - set(fitted.index))
    if only_ours or only_theirs:
        print(f"fitted by svdscope only: {only_ours}; by WeightWatcher only: {only_theirs}")
    skipped = ours[ours["alpha"].isna() & ours["rows"].notna()]
    for name, note in zip(skipped["name"], skipped["note"], strict=True):
        print(f"  svdscope did not fit {name}: {note}")

    # Outside the timings: float64 eigenvalues of the same matrices, fitted by svdcore.
    common = [n for n in fitted.index if n in theirs.index]
    rows = []
    for name in common:
        W = tensors[f"{name}.weight"].double()
        if args.no_f64 or llama:  # 4096-sized float64 SVDs: minutes, outside the question
            fit64 = None
        else:
            fit64 = sc.fit_powerlaw(np.sort(torch.linalg.svdvals(W).numpy() ** 2))
        rows.append(
            {
                "name": name,
                "kind": _kind(name),
                "shape": f"{W.shape[0]}x{W.shape[1]}",
                "alpha_svdscope": fitted.at[name, "alpha"],
                "alpha_ww": float(theirs.at[name, "alpha"]),
                "alpha_svdscope_f64": fit64.alpha if fit64 else np.nan,
                "xmin_svdscope": fitted.at[name, "xmin"],
                "xmin_ww": float(theirs.at[name, "xmin"]),
                "n_tail_svdscope": int(fitted.at[name, "n_tail"]),
                "n_tail_ww": int(theirs.at[name, "num_pl_spikes"]),
                "D_svdscope": fitted.at[name, "D"],
                "D_ww": float(theirs.at[name, "D"]),
            }
        )
    cmp = pd.DataFrame(rows)
    cmp["diff"] = (cmp["alpha_svdscope"] - cmp["alpha_ww"]).abs()
    cmp["diff_f64"] = (cmp["alpha_svdscope_f64"] - cmp["alpha_ww"]).abs()
    cmp["same_xmin"] = cmp["n_tail_svdscope"] == cmp["n_tail_ww"]
    if args.csv:
        cmp.to_csv(args.csv, index=False)

    head = f"{'layer kind':>28} {'n':>3} {'median a':>8} {'med |d|':>9} {'max |d|':>9} "
    print(head + f"{'same xmin':>9} {'f64 med |d|':>11} {'f64 max |d|':>11}")
    groups = [(k, g) for k, g in cmp.groupby("kind", sort=False)] + [("all layers", cmp)]
    for kind, g in groups:
        print(
            f"{kind:>28} {len(g):>3d} {g['alpha_ww'].median():>8.3f} {g['diff'].median():>9.2e} "
            f"{g['diff'].max():>9.2e} {int(g['same_xmin'].sum()):>5d}/{len(g):<3d} "
            f"{g['diff_f64'].median():>11.2e} {g['diff_f64'].max():>11.2e}"
        )
    if args.worst:
        print(f"the {args.worst} layers whose alphas differ most:")
        cols = ["name", "alpha_svdscope", "alpha_ww", "alpha_svdscope_f64"]
        cols += ["n_tail_svdscope", "n_tail_ww", "D_svdscope", "D_ww"]
        worst = cmp.nlargest(args.worst, "diff")[cols]
        with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
            print(worst.to_string(index=False))


if __name__ == "__main__":
    main()
