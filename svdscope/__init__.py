"""svdscope in a notebook: the dashboard inline, and svdcore's results as figures.

    import svdscope
    svdscope.show("deernet")                        # the dashboard in the notebook
    svdscope.show("model.safetensors", dataset="x.npz", labels="y")
    svdscope.show(my_module, example_input=torch.randn(1, 64))   # an nn.Module, executable

    import svdcore as sc
    svdscope.figure(sc.spectrum_summary(W))         # the Spectrum tab's figure
    svdscope.figure(sc.svd(W), k=8)                 # the singular-vector gallery
    svdscope.figure(sc.fft2_view(W, symmetrize=True, log=True))
    svdscope.figure(sc.compare_layers(W_a, W_b))    # subspace overlaps and angles
    svdscope.figure(W)                              # a weight heatmap

`show` builds the same Dash app as `svdscope serve` and runs it with Dash's Jupyter
integration (``jupyter_mode="inline"`` by default: an iframe in the cell's output). Figures
are plotly figures: a notebook renders them as they are.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["figure", "show"]

_KEEP: list[Any] = []  # temporary folders of models given as modules, kept for the kernel's life


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model_spec(model: Any, example_input: Any) -> str:
    """A zoo name / path as it is; an nn.Module written where svdcore can open it: a
    torch.export archive (executable) with `example_input`, else its weights (safetensors)."""
    if isinstance(model, str | Path):
        return str(model)
    import torch
    from torch import nn

    import svdcore as sc

    if not isinstance(model, nn.Module):
        raise sc.DataError(
            f"show() takes a zoo name, a model file or folder, or a torch nn.Module, not "
            f"{type(model).__name__}."
        )
    folder = tempfile.TemporaryDirectory(prefix="svdscope-show-")
    _KEEP.append(folder)
    name = type(model).__name__
    if example_input is not None:
        path = Path(folder.name) / f"{name}.pt2"
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        torch.export.save(torch.export.export(model.eval(), args), str(path))
        return str(path)
    from safetensors.torch import save_file

    path = Path(folder.name) / f"{name}.safetensors"
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(path))
    return str(path)


def _dataset_spec(dataset: Any, labels: str | None) -> str:
    """A dataset file as it is (with ::labels); arrays written to a temporary .npz."""
    if isinstance(dataset, str | Path):
        return f"{dataset}::{labels}" if labels else str(dataset)
    import numpy as np

    folder = tempfile.TemporaryDirectory(prefix="svdscope-show-")
    _KEEP.append(folder)
    path = Path(folder.name) / "data.npz"
    if isinstance(dataset, tuple) and len(dataset) == 2:
        x, y = dataset
        np.savez(path, x=np.asarray(x), y=np.asarray(y))
        return f"{path}::y"
    np.savez(path, x=np.asarray(dataset))
    return str(path)


def show(
    model: Any,
    dataset: Any = None,
    *,
    labels: str | None = None,
    example_input: Any = None,
    mode: str = "inline",
    height: int = 900,
    port: int | None = None,
    **config: Any,
) -> Any:
    """Open the dashboard on `model` (and `dataset`) in the notebook; returns the Dash app.

    model: a zoo name, a model file or folder, a list of them, or a torch ``nn.Module``
    (executable when ``example_input`` is given, through torch.export; else its weights).
    dataset: a dataset file (``labels``: its label column or array), an array of inputs, or
    an ``(x, y)`` pair; it is offered beside the model's own data. mode: Dash's
    ``jupyter_mode`` ("inline", "external", "tab" or "jupyterlab"). Other keywords go to
    `AppConfig` (e.g. ``cache_dir``).
    """
    from app.config import AppConfig
    from app.main import create_app

    models = model if isinstance(model, list) else [model]
    specs = [_model_spec(m, example_input) for m in models]
    datasets = [] if dataset is None else [_dataset_spec(dataset, labels)]
    app = create_app(AppConfig(models=specs, datasets=datasets, **config))
    app.run(
        jupyter_mode=mode,
        jupyter_height=height,
        port=port or _free_port(),
        host="127.0.0.1",
    )
    return app


def figure(result: Any, **options: Any) -> Any:
    """A plotly figure of an svdcore result, drawn as the dashboard draws it.

    SpectrumSummary -> singular values and energy; TopSpectrum -> the first view of a large
    layer; SVDResult -> the right singular vectors (``k``, ``side="left"``); FFTView -> the
    2-D FFT; LayerComparison -> subspace overlaps and principal angles; a 2-D array or
    tensor -> a weight heatmap. ``options`` go to the figure builder (e.g. ``title``).
    """
    import numpy as np
    import torch

    import svdcore as sc
    from app import figures as figs
    from app.figures.compare import overlap_figure
    from app.figures.spectrum import first_view_figure

    if isinstance(result, sc.SpectrumSummary):
        s = result.singular_values
        return figs.spectrum_figure(
            s,
            result.cumulative_energy,
            tolerance=float(result.rtol) * float(s[0]) if len(s) else None,
            numerical_rank=int(result.numerical_rank),
            **options,
        )
    if isinstance(result, sc.TopSpectrum):
        return first_view_figure(result, **options)
    if isinstance(result, sc.SVDResult):
        k = int(options.pop("k", 8))
        left = options.pop("side", "right") == "left"
        S = result.S.detach().cpu().numpy()[:k]
        vectors = result.U[:, :k].mT if left else result.Vh[:k]
        return figs.vector_gallery(
            vectors.detach().cpu().numpy(), S, symbol="u" if left else "v", **options
        )
    if isinstance(result, sc.FFTView):
        return figs.fft_heatmap(
            result.magnitude,
            result.row_freq,
            result.col_freq,
            log=result.log,
            symmetrized=result.symmetrized,
            **{"title": "2-D FFT", **options},
        )
    if isinstance(result, sc.LayerComparison):
        return overlap_figure(
            result.left_overlap,
            result.right_overlap,
            result.left_angles,
            result.right_angles,
            **options,
        )
    if isinstance(result, torch.Tensor | np.ndarray) and np.ndim(result) == 2:
        if isinstance(result, torch.Tensor):
            result = result.detach().cpu().float().numpy()
        return figs.weights_heatmap(np.asarray(result, dtype=np.float32), **options)
    raise sc.DataError(
        f"svdscope.figure draws SpectrumSummary, TopSpectrum, SVDResult, FFTView, "
        f"LayerComparison and 2-D matrices, not {type(result).__name__}."
    )
