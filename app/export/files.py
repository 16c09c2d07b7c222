"""Files of one exported analysis: .npz (arrays, numbers, JSON meta; no pickle), a CSV
zip, and figures drawn on the server (kaleido)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

import svdcore as sc
from app.export.analyses import AnalysisExport

__all__ = ["csv_zip", "npz_bytes", "save_npz", "static_image"]


def save_npz(result: AnalysisExport, path: Any) -> Any:
    """Write the arrays, each number as a 0-d array, and ``meta`` (JSON: analysis, model,
    layer, the numbers) into one .npz (np.load(..., allow_pickle=False) reads it); `path`
    may also be a binary file object."""
    path = Path(path) if isinstance(path, str | Path) else path
    payload: dict[str, np.ndarray] = {}
    for name, arr in result.arrays.items():
        payload[name] = np.asarray(arr)
    for name, value in result.numbers.items():
        if name in payload:
            continue
        if isinstance(value, str) or value is None:
            payload[name] = np.asarray("" if value is None else value)
        else:
            payload[name] = np.asarray(value)
    meta = {
        "analysis": result.analysis,
        "model": result.model,
        "layer": result.layer,
        "numbers": result.numbers,
        "svdscope": sc.__version__,
    }
    payload["meta"] = np.asarray(json.dumps(meta, default=str))
    np.savez(path, **payload)
    return path


def csv_zip(result: AnalysisExport) -> bytes:
    """Every array as a CSV file (2-D: rows x columns; 1-D: one column; more dimensions:
    flattened to rows of the last axis) and the numbers as numbers.csv, in one zip."""
    import csv
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, arr in result.arrays.items():
            a = np.asarray(arr)
            if a.ndim == 0:
                a = a.reshape(1, 1)
            elif a.ndim == 1:
                a = a.reshape(-1, 1)
            elif a.ndim > 2:
                a = a.reshape(-1, a.shape[-1])
            text = io.StringIO()
            fmt = "%d" if a.dtype.kind in "iub" else "%.9g"
            np.savetxt(text, a, delimiter=",", fmt=fmt)
            z.writestr(f"{name}.csv", text.getvalue())
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["name", "value"])
        for key, value in result.numbers.items():
            writer.writerow([key, value])
        z.writestr("numbers.csv", text.getvalue())
    return buffer.getvalue()


def npz_bytes(result: AnalysisExport) -> bytes:
    """`save_npz` into memory (for a download)."""
    import io

    buffer = io.BytesIO()
    save_npz(result, buffer)
    return buffer.getvalue()


# kaleido 1.5 can run its first script in the tab's blank page before its own page has
# loaded ("ReferenceError: kaleido_scopes is not defined"; seen once in a CI run under load):
# a fresh call renders; anything else is reported at once.
_KALEIDO_RACE = "kaleido_scopes is not defined"
_KALEIDO_ATTEMPTS = 3


def static_image(fig: go.Figure, *, format: str = "svg", scale: float = 1.0) -> bytes:
    """`fig` rendered on the server by kaleido (which drives a headless Chrome/Chromium);
    a clear sc.SvdscopeError when kaleido or the browser is missing."""
    import plotly.io as pio

    for attempt in range(_KALEIDO_ATTEMPTS):
        try:
            return pio.to_image(fig, format=format, scale=scale)
        except Exception as err:
            if _KALEIDO_RACE in str(err) and attempt + 1 < _KALEIDO_ATTEMPTS:
                continue  # kaleido's start-up race: its next call opens a fresh browser tab
            raise sc.SvdscopeError(
                "Static images are drawn by kaleido in a headless Chrome or Chromium, which "
                f"is not usable here ({type(err).__name__}: {err}); install chromium, or use "
                "the interactive report."
            ) from err
    raise AssertionError("unreachable")
