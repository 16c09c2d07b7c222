"""The ``svdscope`` command line.

    svdscope serve [--host H] [--port P] [--data FILE] [MODEL ...]
                                                       dashboard (MODEL: a file/folder or zoo name)
    svdscope layers MODEL [--activation A] [--format table|csv|markdown] [--randomize]
                                                       print a model's layer table
    svdscope heads MODEL [--config config.json] [--format table|csv|markdown]
                                                       each attention head's W_QK / W_OV norms
    svdscope finetune BASE TUNED [--k K] [--format table|csv|markdown]
                                                       each layer's change from BASE to TUNED
                                                       (TUNED: a model, or a PEFT adapter folder)
    svdscope export MODEL --layer L --analysis A --out OUT.npz|OUT.html
                                                       an analysis, headless (app/cli/export.py)
    svdscope zoo list                                  the example networks
    svdscope zoo train NAME [--seed S] [--out FILE]    retrain an example network on this CPU
    svdscope worker [--concurrency N] [--ping]         Celery worker for background jobs
                                                       (needs SVDSCOPE_REDIS_URL)

Errors that svdscope raises on purpose print one line (``svdscope: error: ...``) and exit 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _default_cache_dir() -> Path:
    from app.config import default_cache_dir

    return default_cache_dir()


def _check_models(models: Sequence[str]) -> list[str]:
    """Each MODEL as the page's registry will open it: a zoo name, or an absolute path (the
    one rule of svdcore.model_ref; a bad reference raises its LoadError)."""
    import svdcore as sc

    return [sc.model_ref(ref).spec for ref in models]


def _deploy_env() -> dict[str, str]:
    """The environment without the variables `svdscope serve` takes from its own options
    (models, upload and cache folders)."""
    own = ("SVDSCOPE_MODELS", "SVDSCOPE_UPLOAD_DIR", "SVDSCOPE_CACHE_DIR")
    return {k: v for k, v in os.environ.items() if k not in own}


def _cmd_serve(args: argparse.Namespace) -> int:
    import torch

    from app.config import AppConfig
    from app.main import create_app, get_celery

    # the command line over the deployment settings of the environment (SVDSCOPE_REDIS_URL,
    # SVDSCOPE_BASIC_AUTH, ...): all of it parsed by AppConfig.from_env
    options: dict = {"cache_dir": None if args.no_disk_cache else Path(args.cache_dir)}
    if args.models:
        options["models"] = _check_models(args.models)
    if args.upload_dir:
        options["upload_dir"] = Path(args.upload_dir)
    if args.data:
        options["datasets"] = [_dataset_spec(d) for d in args.data]
    # Set up torch's thread pool before any worker forks (shared/recipes/browser-tests.md).
    torch.ones(2, 2) @ torch.ones(2, 2)
    app = create_app(AppConfig.from_env(_deploy_env(), **options))
    if get_celery(app) is not None:
        print(
            "svdscope: background jobs go to Celery workers on SVDSCOPE_REDIS_URL; "
            "start one with `svdscope worker`",
            flush=True,
        )
    print(f"svdscope: serving on http://{args.host}:{args.port}", flush=True)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


def _dataset_spec(spec: str) -> str:
    """--data PATH[::LABELS] -> the same with an absolute path; a missing file: LoadError."""
    import svdcore as sc

    path, sep, labels = spec.partition("::")
    if not Path(path).is_file():
        raise sc.LoadError(f"no such dataset file: {path}")
    return str(Path(path).resolve()) + (sep + labels if sep else "")


def _progress_line(total: int) -> Callable[[int, int, str], None]:
    """A progress report on stderr (stdout stays the table): "layers: 3/7 (q_proj), 4.2 s"
    at most every second and at the end, with the time left estimated from the rate, once
    the table has taken a second."""
    start = time.monotonic()
    last = [0.0]

    def report(done: int, _total: int, name: str) -> None:
        now = time.monotonic()
        if now - start < 1.0 or (done < total and now - last[0] < 1.0):
            return  # a quick table prints no progress at all
        last[0] = now
        elapsed = now - start
        left = elapsed / done * (total - done) if done else 0.0
        tail = f", about {left:.0f} s left" if done < total else ""
        sys.stderr.write(f"layers: {done}/{total} ({name}), {elapsed:.1f} s{tail}\n")

    return report


def _cmd_layers(args: argparse.Namespace) -> int:
    import svdcore as sc
    from app.formatting import fmt_g

    def number(x: float) -> str:
        return fmt_g(x, missing="-", infinite="inf")

    net = sc.open_model_ref(args.model, activation=args.activation)
    report = _progress_line(len(net.layers))
    if args.format != "table":  # the Overview's spectral table (norms, ranks, ESD alpha)
        from app.cli.export import format_layer_table
        from svdcore.esd import layer_spectra, spectral_table

        rows = layer_spectra(
            net, max_elements=args.max_elements, randomize=args.randomize, progress=report
        )
        sys.stdout.write(format_layer_table(spectral_table(rows), args.format))
        return 0
    kind = "executable" if net.executable else "weights only"
    print(f"{net.name}: {len(net.layers)} layers, {kind}")
    header = (
        f"{'layer':<48} {'kind':<12} {'shape':<20} {'dtype':<14} {'matrix':<14} "
        f"{'cond':>9} {'eff.rank':>9}"
    )
    print(header)
    print("-" * len(header))
    done = iter(range(1, len(net.layers) + 1))

    def summary(info: Any, compute: bool) -> Any:
        result = sc.spectrum_summary(net.matrix(info.name)) if compute else None
        report(next(done), len(net.layers), info.name)
        return result

    # the page's Layers table's rows (svdcore/layer_table.py)
    rows = sc.layer_rows(net, summary=summary, max_elements=args.max_elements)
    for row in rows:
        layer = row.info
        start = f"{layer.name:<48} {layer.kind:<12} {layer.shape!s:<20} {layer.dtype:<14}"
        if layer.matrix_shape is None:
            print(f"{start} {layer.note}")
            continue
        matrix = "x".join(map(str, layer.matrix_shape))
        if row.error is not None:  # one unusable layer (NaN/Inf weights ...) is named
            print(f"{start} {matrix:<14} {row.error}")
            continue
        cond = row.summary.condition_number if row.summary else math.nan
        erank = row.summary.effective_rank if row.summary else math.nan
        flag = f"  {layer.note}" if layer.note else ""  # e.g. fp8 stored without its scale
        print(f"{start} {matrix:<14} {number(cond):>9} {number(erank):>9}{flag}")
    return 0


def _write_table(table: Any, fmt: str) -> None:
    """A pandas table on stdout: aligned text ("table"), CSV or Markdown."""
    from app.cli.export import format_layer_table

    if fmt == "table":
        sys.stdout.write(table.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n")
    else:
        sys.stdout.write(format_layer_table(table, fmt))


def _cmd_heads(args: argparse.Namespace) -> int:
    import svdcore as sc

    net = sc.open_model_ref(args.model)
    if args.config:
        config = sc.read_transformer_config(args.config)
        if config is None:
            raise sc.LoadError(f"{args.config} names no attention heads (num_attention_heads).")
        sc.attach_attention(net, config)
    blocks = sc.attention_blocks(net)
    if not blocks:
        raise sc.DataError(
            f"{net.name}: no attention projections matching a config.json were found (open "
            "a Hugging Face folder with its config.json, or give --config FILE)."
        )
    table = sc.head_table(net, blocks)
    _write_table(table, args.format)
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    import svdcore as sc

    base = sc.open_model_ref(args.base)
    tuned = sc.open_model_ref(args.tuned)
    adapter = sc.adapter_of(tuned)
    if adapter is not None:
        tuned = sc.apply_lora(base, adapter)  # the adapter merged into its base
    report = _progress_line(sum(layer.viewable for layer in base.layers))
    rows, notes = sc.layer_deltas(base, tuned, k=args.k, progress=report)
    table = sc.finetune_table(rows, notes=notes)
    _write_table(table, args.format)
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    import svdcore as sc

    if args.zoo_cmd == "list":
        for name in sc.zoo.names():
            entry = sc.zoo.get(name)
            print(f"{name:<16} {entry.title}")
        return 0
    out = Path(args.out) if args.out else None
    report = sc.zoo.train(args.name, out=out, seed=args.seed, progress=print)
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in report.metrics.items())
    print(f"svdscope: trained {report.name} in {report.seconds:.1f} s -> {report.path} ({metrics})")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from app.config import DeploymentError

    if not os.environ.get("SVDSCOPE_REDIS_URL", "").strip():
        raise DeploymentError(
            "svdscope worker runs background jobs from Redis: set SVDSCOPE_REDIS_URL to the "
            "Redis that the web app uses (and the same SVDSCOPE_MODELS / SVDSCOPE_UPLOAD_DIR)."
        )
    if args.ping:
        return _ping_worker(args.timeout)
    # Before anything imports torch: one BLAS thread per job process (performance-facts.md).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from app.web.deploy import CELERY_NODE
    from app.worker import celery_app  # builds the app; refuses to start without its Redis

    argv = [
        "worker",
        f"--concurrency={args.concurrency}",
        f"--loglevel={args.loglevel}",
        f"--hostname={CELERY_NODE}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    celery_app.worker_main(argv)
    return 0


def _ping_worker(timeout: float) -> int:
    """Exit 0 when this host's worker (svdscope@<hostname>) answers a Celery ping."""
    import socket

    from app.web.deploy import CELERY_NODE, make_celery

    node = f"{CELERY_NODE}@{socket.gethostname()}"
    replies = make_celery(os.environ["SVDSCOPE_REDIS_URL"]).control.ping(
        destination=[node], timeout=timeout
    )
    if any(node in reply for reply in replies or []):
        print(f"svdscope: {node} answered", flush=True)
        return 0
    print(f"svdscope: error: no answer from {node} within {timeout:g} s", file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="svdscope", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    serve = sub.add_parser("serve", help="start the dashboard")
    serve.add_argument(
        "models", nargs="*", metavar="MODEL", help="model files/folders or zoo names"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8050)
    serve.add_argument("--cache-dir", default=str(_default_cache_dir()))
    serve.add_argument("--no-disk-cache", action="store_true", help="keep results in memory")
    serve.add_argument("--upload-dir", default=None)
    serve.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FILE[::LABELS]",
        help="a dataset file offered to every session (repeatable; ::LABELS names the label "
        "column of a .csv or array of a .npz)",
    )
    serve.add_argument("--debug", action="store_true")
    serve.set_defaults(func=_cmd_serve)

    layers = sub.add_parser("layers", help="print a model's layers")
    layers.add_argument("model", metavar="MODEL")
    layers.add_argument("--activation", default=None, help="make a Linear chain executable")
    layers.add_argument(
        "--max-elements",
        type=int,
        default=None,
        help="skip spectra of matrices with more entries (default: none skipped)",
    )
    layers.add_argument(
        "--format",
        choices=("table", "csv", "markdown"),
        default="table",
        help="table: aligned text; csv / markdown: the Overview's spectral table",
    )
    layers.add_argument(
        "--randomize",
        action="store_true",
        help="csv / markdown: also each layer's element-shuffled copy (correlation traps: "
        "rand_distance, n_traps); one more eigendecomposition per layer",
    )
    layers.set_defaults(func=_cmd_layers)

    heads = sub.add_parser("heads", help="each attention head's circuits (W_QK, W_OV)")
    heads.add_argument("model", metavar="MODEL")
    heads.add_argument("--config", default=None, help="a config.json naming the heads")
    heads.add_argument("--format", choices=("table", "csv", "markdown"), default="table")
    heads.set_defaults(func=_cmd_heads)

    finetune = sub.add_parser("finetune", help="each layer's change from a base model")
    finetune.add_argument("base", metavar="BASE")
    finetune.add_argument("tuned", metavar="TUNED", help="the fine-tune, or a PEFT adapter folder")
    finetune.add_argument("--k", type=int, default=8, help="top-k subspaces compared (8)")
    finetune.add_argument("--format", choices=("table", "csv", "markdown"), default="table")
    finetune.set_defaults(func=_cmd_finetune)

    from app.cli.export import add_export_parser

    add_export_parser(sub, _default_cache_dir())

    zoo = sub.add_parser("zoo", help="the example networks")
    zsub = zoo.add_subparsers(dest="zoo_cmd", required=True)
    zsub.add_parser("list")
    train = zsub.add_parser("train", help="retrain an example network")
    train.add_argument("name")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="weights file (default: the shipped one)")
    zoo.set_defaults(func=_cmd_zoo)

    worker = sub.add_parser(
        "worker",
        help="run background jobs (Celery worker on SVDSCOPE_REDIS_URL)",
        description="A Celery worker that runs the dashboard's background jobs. It builds "
        "the app from the same environment as the web server (SVDSCOPE_REDIS_URL, "
        "SVDSCOPE_MODELS, SVDSCOPE_UPLOAD_DIR, ...).",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="job processes (default: CPU cores, at most 4)",
    )
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument(
        "--ping", action="store_true", help="exit 0 if this host's worker answers (healthcheck)"
    )
    worker.add_argument("--timeout", type=float, default=5.0, help="--ping: seconds to wait")
    worker.set_defaults(func=_cmd_worker)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``svdscope`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    from svdcore.exceptions import SvdscopeError

    try:
        return args.func(args)
    except SvdscopeError as exc:
        print(f"svdscope: error: {exc}", file=sys.stderr)
        return 2
