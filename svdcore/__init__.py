"""svdcore: the numerical engine of svdscope (no dash, flask or plotly imports here).

import svdcore as sc
net = sc.load_model("model.safetensors")
W = net.matrix(net.layers[0].name)
U, S, Vh = sc.svd(W)
"""

from . import cache, zoo
from .compare import (
    LayerComparison,
    NetworkComparison,
    compare_layers,
    compare_networks,
    subspace_angles,
)
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
from .esd import (
    LayerSpectrum,
    PowerLawFit,
    esd_eigenvalues,
    fit_powerlaw,
    layer_spectra,
    spectral_table,
)
from .exceptions import DataError, ExecutionError, LayerError, LoadError, SvdscopeError
from .fourier import FFTView, fft2_view
from .hill import HillEstimate, hill_estimator
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
from .io import ACTIVATIONS, Dataset, load_dataset, load_model
from .jacobian import (
    JacobianOperator,
    SplitOperators,
    jacobian_operator,
    network_operator,
    split_operators,
)
from .layer_table import LayerRow, layer_rows
from .network import Axis, LayerInfo, Network, ViewInfo
from .projections import (
    ClassProjections,
    NeuronProjection,
    SignalVectors,
    class_projections,
    neuron_projections,
    signal_vectors,
)
from .randomized import OperatorSVD, operator_svd
from .refs import ModelRef, model_ref, open_model_ref
from .rmt import (
    MarchenkoPasturFit,
    ShuffledSpectrum,
    esd_distance,
    fit_marchenko_pastur,
    marchenko_pastur_cdf,
    marchenko_pastur_density,
    shuffled_spectrum,
)
from .signal_models import (
    FAMILIES as FIT_FAMILIES,
)
from .signal_models import (
    Fit,
    fit_biexponential,
    fit_chebyshev,
    fit_trig,
    fit_vector,
)
from .spectrum import (
    SpectrumSummary,
    SVDResult,
    TopSpectrum,
    canonical_signs,
    condition_number,
    effective_rank,
    numerical_rank,
    singular_values,
    spectrum_summary,
    stable_rank,
    svd,
    top_spectrum,
)
from .subspaces import FourSubspaces, Projection, project, subspaces
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
from .ties import TieGroup, near_ties
from .wiretap import LayerDescrambling, descramble_layer, layer_gram, principal_angles

__all__ = [
    "ACTIVATIONS",
    "FIT_FAMILIES",
    "INVERTIBLE_ACTIVATIONS",
    "ActivationInverse",
    "Axis",
    "ClassProjections",
    "DataError",
    "Dataset",
    "Descrambled",
    "ExecutionError",
    "FFTView",
    "Fit",
    "FourSubspaces",
    "GramAccumulator",
    "HillEstimate",
    "Inversion",
    "JacobianOperator",
    "LayerComparison",
    "LayerDescrambling",
    "LayerError",
    "LayerInfo",
    "LayerRow",
    "LayerSpectrum",
    "LoadError",
    "LocalAffine",
    "MarchenkoPasturFit",
    "ModelRef",
    "Network",
    "NetworkComparison",
    "NeuronProjection",
    "NotInvertibleError",
    "OperatorSVD",
    "PowerLawFit",
    "Projection",
    "Pruned",
    "Reduced",
    "SVDResult",
    "ShuffledSpectrum",
    "SignalVectors",
    "SpectrumSummary",
    "SplitOperators",
    "Surgery",
    "SvdscopeError",
    "TieGroup",
    "TopSpectrum",
    "ViewInfo",
    "activation_range",
    "cache",
    "canonical_signs",
    "class_projections",
    "compare_layers",
    "compare_networks",
    "condition_number",
    "contract",
    "default_device",
    "depth_evolution",
    "descramble",
    "descramble_layer",
    "effective_rank",
    "esd_distance",
    "esd_eigenvalues",
    "fft2_view",
    "fit_biexponential",
    "fit_chebyshev",
    "fit_marchenko_pastur",
    "fit_powerlaw",
    "fit_trig",
    "fit_vector",
    "hill_estimator",
    "ideal_output",
    "invert_activation",
    "jacobian_operator",
    "layer_gram",
    "layer_rows",
    "layer_spectra",
    "load_dataset",
    "load_model",
    "local_affine",
    "make_stencil",
    "marchenko_pastur_cdf",
    "marchenko_pastur_density",
    "mds_descrambler",
    "model_ref",
    "near_ties",
    "network_operator",
    "neuron_projections",
    "numerical_rank",
    "open_model_ref",
    "operator_svd",
    "optimise_input",
    "phi",
    "principal_angles",
    "project",
    "prune",
    "pseudo_inverse_input",
    "resolve_dtype",
    "second_derivative",
    "shuffled_spectrum",
    "sign_reduce",
    "signal_vectors",
    "singular_values",
    "singular_vector_similarity",
    "spectral_surgery",
    "spectral_table",
    "spectrum_summary",
    "split_operators",
    "stable_rank",
    "subspace_angles",
    "subspaces",
    "svd",
    "top_spectrum",
    "trig_basis",
    "zoo",
]

__version__ = "0.1.0"
