"""View callbacks over HTTP, uncached vs. cached, and their payloads, in one run.

    python bench/bench_views.py [--side 4096] [--repeat 5] [--threads T]

Builds the dashboard (Flask test client: server time only, no network, no browser) on the
zoo's DEERNet and on a synthetic checkpoint with one side x side float32 layer, then calls
each view's callback the way the browser does: the first call computes (uncached: the SVD,
the randomized top spectrum of a large layer, the pooling), the next ones hit the result
cache. Prints the seconds of each, their ratio and the response size. The first view of the
large layer is its Weights tab (the default tab) and, when opened, its Spectrum tab.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dash_calls

from app.config import AppConfig
from app.main import create_app

VIEWS = ("weights", "spectrum", "vectors", "overview")


def _post(client, body: bytes) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    res = client.post("/_dash-update-component", data=body, content_type="application/json")
    return time.perf_counter() - t0, res.status_code, len(res.data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="svdscope-bench-"))
    gen = torch.Generator().manual_seed(0)
    side = args.side
    decay = torch.logspace(0, -3, side)  # a decaying spectrum, like trained weights
    W = (torch.randn(side, side, generator=gen) * decay) @ torch.linalg.qr(
        torch.randn(side, side, generator=gen)
    ).Q
    path = tmp / "large.safetensors"
    save_file({"proj.weight": W.contiguous()}, str(path))
    app = create_app(AppConfig(models=["deernet", str(path)], upload_dir=tmp / "up"))
    client = app.server.test_client()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    head = f"{'model':>9} {'layer':>6} {'view':>9} {'uncached s':>10} {'cached s':>9} "
    print(head + f"{'ratio':>7} {'payload MB':>10}")
    for model, layer in (("deernet", "fc1"), ("large", "proj")):
        for view in VIEWS:
            body = dash_calls.body(app, view, model, layer)
            first, status, size = _post(client, body)
            if status != 200:
                raise SystemExit(f"{model}/{layer} {view}: HTTP {status}")
            again = statistics.median(_post(client, body)[0] for _ in range(args.repeat))
            print(
                f"{model:>9} {layer:>6} {view:>9} {first:>10.3f} {again:>9.4f} "
                f"{first / again:>7.1f} {size / 1e6:>10.3f}"
            )


if __name__ == "__main__":
    main()
