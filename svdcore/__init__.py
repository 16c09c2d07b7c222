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
from .inversion import (
    INVERTIBLE_ACTIVATIONS,
    ActivationInverse,
    Inversion,
    NotInvertibleError,
    activation_range,
    ideal_output,
    invert_activation,
    optimise_input,
    pseudo_inverse_input,
)
from .io import ACTIVATIONS, Dataset, load_dataset, load_model, zoo_dataset
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
from .subspaces import (
    ClassProjections,
    FourSubspaces,
    NeuronProjection,
    Projection,
    SignalVectors,
    class_projections,
    neuron_projections,
    project,
    signal_vectors,
    subspaces,
)
from .surgery import (
    LocalAffine,
    Pruned,
    Reduced,
    Surgery,
    contract,
    depth_evolution,
    local_affine,
    prune,
    sign_reduce,
    singular_vector_similarity,
    spectral_surgery,
)
from .wiretap import LayerDescrambling, descramble_layer, layer_gram, principal_angles

__all__ = [
    "ACTIVATIONS",
    "INVERTIBLE_ACTIVATIONS",
    "ActivationInverse",
    "Axis",
    "ClassProjections",
    "DataError",
    "Dataset",
    "Descrambled",
    "ExecutionError",
    "FFTView",
    "FourSubspaces",
    "GramAccumulator",
    "Inversion",
    "LayerDescrambling",
    "LayerError",
    "LayerInfo",
    "LoadError",
    "LocalAffine",
    "Network",
    "NeuronProjection",
    "NotInvertibleError",
    "Projection",
    "Pruned",
    "Reduced",
    "SVDResult",
    "SignalVectors",
    "SpectrumSummary",
    "Surgery",
    "SvdscopeError",
    "ViewInfo",
    "activation_range",
    "cache",
    "class_projections",
    "condition_number",
    "contract",
    "default_device",
    "depth_evolution",
    "descramble",
    "descramble_layer",
    "effective_rank",
    "fft2_view",
    "ideal_output",
    "invert_activation",
    "layer_gram",
    "load_dataset",
    "load_model",
    "local_affine",
    "make_stencil",
    "mds_descrambler",
    "neuron_projections",
    "numerical_rank",
    "optimise_input",
    "phi",
    "principal_angles",
    "project",
    "prune",
    "pseudo_inverse_input",
    "resolve_dtype",
    "second_derivative",
    "sign_reduce",
    "signal_vectors",
    "singular_vector_similarity",
    "spectral_surgery",
    "spectrum_summary",
    "stable_rank",
    "subspaces",
    "svd",
    "trig_basis",
    "zoo",
    "zoo_dataset",
]

__version__ = "0.1.0"
