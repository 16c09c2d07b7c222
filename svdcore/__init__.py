"""svdcore: the numerical engine of svdscope (no dash, flask or plotly imports here).

import svdcore as sc
net = sc.load_model("model.safetensors")
W = net.matrix(net.layers[0].name)
U, S, Vh = sc.svd(W)
"""

from . import cache, zoo
from .descramble import (
    Descrambled,
    GramAccumulator,
    descramble,
    make_stencil,
    mds_descrambler,
    phi,
    second_derivative,
    trig_basis,
)
from .device import default_device, resolve_dtype
from .exceptions import DataError, ExecutionError, LayerError, LoadError, SvdscopeError
from .fourier import FFTView, fft2_view
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
from .wiretap import LayerDescrambling, descramble_layer, layer_gram, principal_angles

__all__ = [
    "ACTIVATIONS",
    "Axis",
    "DataError",
    "Descrambled",
    "ExecutionError",
    "FFTView",
    "GramAccumulator",
    "LayerDescrambling",
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
    "descramble",
    "descramble_layer",
    "effective_rank",
    "fft2_view",
    "layer_gram",
    "load_model",
    "make_stencil",
    "mds_descrambler",
    "numerical_rank",
    "phi",
    "principal_angles",
    "resolve_dtype",
    "second_derivative",
    "spectrum_summary",
    "stable_rank",
    "svd",
    "trig_basis",
    "zoo",
]

__version__ = "0.1.0"
