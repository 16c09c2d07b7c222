"""``svdscope export`` and the table formats of ``svdscope layers``.

    svdscope export MODEL --layer NAME --analysis svd [--analysis fft ...] --out OUT.npz|OUT.html
                    [--data FILE [--labels COL]] [--view V] [--k K] [--source S] [--samples N]
                    [--stencil S] [--position P] [--rtol R] [--sample I] [--split NAME]
                    [--compare MODEL_B [--compare-layer NAME]]
                    [--cache-dir DIR | --no-disk-cache]

MODEL is a model file/folder or a zoo name. The analyses run through the dashboard's own
`Services` (with the same filesystem result cache by default, so what the page computed is
reused and the other way round), with a progress bar on stderr; `.npz` takes one analysis
(arrays, numbers, a JSON `meta`), `.html` any number (a self-contained report).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_export_parser", "format_layer_table", "run_export"]


def add_export_parser(sub: Any, default_cache_dir: Path) -> None:
    from app.export import ANALYSES

    p = sub.add_parser(
        "export",
        help="run an analysis headless and write arrays (.npz) or a report (.html)",
        description="Run analyses of one layer through the dashboard's cached engine and "
        "write their arrays (.npz, one analysis) or an HTML report (.html, any number).",
    )
    p.add_argument("model", metavar="MODEL", help="a model file/folder or a zoo name")
    p.add_argument("--layer", required=True, help="layer name (see `svdscope layers MODEL`)")
    p.add_argument(
        "--analysis",
        action="append",
        choices=ANALYSES,
        required=True,
        help="repeat for several (an .html report)",
    )
    p.add_argument("--out", required=True, help="OUT.npz (one analysis) or OUT.html")
    p.add_argument("--data", default=None, help="a dataset file (.npy .npz .csv .pt .zip)")
    p.add_argument("--labels", default=None, help="label column (.csv) or array name")
    p.add_argument("--view", default="default", help="matrix view (e.g. kernels)")
    p.add_argument("--k", type=int, default=16, help="singular vectors kept (svd)")
    p.add_argument("--source", default="limit", help="descrambler data source")
    p.add_argument("--samples", type=int, default=10_000, help="descrambler samples")
    p.add_argument("--stencil", default="fourier", help="descrambler stencil")
    p.add_argument("--position", default="linear", help="descrambler wiretap position")
    p.add_argument("--rtol", type=float, default=None, help="rank tolerance (subspaces)")
    p.add_argument("--sample", type=int, default=0, help="dataset sample (surgery)")
    p.add_argument("--split", default=None, help="split module (surgery)")
    p.add_argument(
        "--components",
        choices=("auto", "exact", "top"),
        default="auto",
        help="surgery components: all (exact), the top k, or auto (exact up to 1,024)",
    )
    p.add_argument("--top-k", type=int, default=64, help="k of a top-k surgery")
    p.add_argument(
        "--precision",
        choices=("float64", "float32"),
        default="float64",
        help="Jacobian products of a top-k surgery (float32: faster, values to about 1e-7)",
    )
    p.add_argument("--compare", default=None, metavar="MODEL_B", help="second model (compare)")
    p.add_argument("--compare-layer", default=None, help="its layer (default: --layer)")
    p.add_argument("--cache-dir", default=str(default_cache_dir))
    p.add_argument("--no-disk-cache", action="store_true", help="keep results in memory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--static",
        action="store_true",
        help="an .html report with SVG drawings made by kaleido (no JavaScript)",
    )
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    import svdcore as sc
    from app.config import AppConfig
    from app.export import ExportOptions, export_analysis, html_report, save_npz
    from app.services import Services
    from app.services.datasets import DATASET_FILE_PREFIX

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".npz", ".html"):
        raise sc.DataError(f"--out must end in .npz or .html, got {out.name!r}.")
    analyses = list(dict.fromkeys(args.analysis))
    if suffix == ".npz" and len(analyses) > 1:
        raise sc.DataError(
            "an .npz file holds one analysis; give one --analysis, or write an .html report."
        )
    model = sc.model_ref(args.model).spec
    other = sc.model_ref(args.compare).spec if args.compare else None
    datasets = []
    if args.data:  # offered as a dataset given at start ("file-0"), as `serve --data` does
        data_path = Path(args.data)
        if not data_path.is_file():
            raise sc.LoadError(f"no such dataset file: {data_path}")
        datasets.append(str(data_path.resolve()) + (f"::{args.labels}" if args.labels else ""))
    scratch = tempfile.TemporaryDirectory(prefix="svdscope-export-")
    config = AppConfig(
        models=[model] + ([other] if other and other != model else []),
        upload_dir=Path(scratch.name) / "uploads",
        cache_dir=None if args.no_disk_cache else Path(args.cache_dir),
        datasets=datasets,
    )
    services = Services(config)
    entries = services.registry.models(None)
    model_id = entries[0].id
    other_id = None if other is None else (entries[1].id if len(entries) > 1 else model_id)
    session, dataset = None, (f"{DATASET_FILE_PREFIX}0" if datasets else None)
    options = ExportOptions(
        k=args.k,
        source=args.source,
        samples=args.samples,
        stencil=args.stencil,
        position=args.position,
        rtol=args.rtol,
        sample=args.sample,
        split=args.split,
        components=args.components,
        top_k=args.top_k,
        precision=args.precision,
        compare_model=other_id,
        compare_layer=args.compare_layer,
    )
    bar = _progress_bar(len(analyses), quiet=args.quiet)
    results = []
    try:
        with services.registry.request_scope():  # the model is resolved once for the run
            for analysis in analyses:
                bar.set_description(analysis)
                results.append(
                    export_analysis(
                        services,
                        model_id,
                        args.layer,
                        analysis,
                        view=args.view,
                        session=session,
                        dataset=dataset,
                        options=options,
                        progress=_step_reporter(bar),
                    )
                )
                bar.update(1)
    finally:
        bar.close()
        scratch.cleanup()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        save_npz(results[0], out)
        what = f"{len(results[0].arrays)} arrays, {len(results[0].numbers)} numbers"
    else:
        out.write_text(html_report(results, static=args.static), encoding="utf-8")
        what = f"{sum(len(r.figures) for r in results)} figures"
    print(f"svdscope: wrote {out} ({what})", flush=True)
    return 0


def _progress_bar(total: int, *, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="analysis", file=sys.stderr, disable=quiet, leave=False)


def _step_reporter(bar: Any) -> Any:
    def report(step: int, total: int, what: str) -> None:
        if total > 1:
            bar.set_postfix_str(f"{what} {step:,}/{total:,}", refresh=True)

    return report


def format_layer_table(table: Any, fmt: str) -> str:
    """svdcore's per-layer spectral table as CSV or a Markdown table."""
    if fmt == "csv":
        return table.to_csv(index=False)
    columns = list(table.columns)

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
