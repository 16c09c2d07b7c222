"""svdcore: the numerical engine of svdscope (no dash, flask or plotly imports here).

import svdcore as sc
net = sc.load_model("model.safetensors")
W = net.matrix(net.layers[0].name)
U, S, Vh = sc.svd(W)
"""

from . import cache, zoo
from .device import default_device, resolve_dtype
from .exceptions import DataError, ExecutionError, LayerError, LoadError, SvdscopeError
from .io import ACTIVATIONS, load_model
from .network import Axis, LayerInfo, Network, ViewInfo
from .spectrum import (
    SpectrumSummary,
    SVDResult,
    condition_number,
    effective_rank,
    numerical_rank,
    spectrum_summary,
    stable_rank,
    svd,
)

__all__ = [
    "ACTIVATIONS",
    "Axis",
    "DataError",
    "ExecutionError",
    "LayerError",
    "LayerInfo",
    "LoadError",
    "Network",
    "SVDResult",
    "SpectrumSummary",
    "SvdscopeError",
    "ViewInfo",
    "cache",
    "condition_number",
    "default_device",
    "effective_rank",
    "load_model",
    "numerical_rank",
    "resolve_dtype",
    "spectrum_summary",
    "stable_rank",
    "svd",
    "zoo",
]

__version__ = "0.1.0"
