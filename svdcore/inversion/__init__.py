"""Inputs that produce a target output (Pattichis & Pattichis, section 2.4).

One module per job:

- :mod:`.activations`: element-wise activations and their inverses;
- :mod:`.chains`: networks read as chains of Linear layers and activations (float64), and
  :func:`chain_refusal`, which says whether (and why not) a network is such a chain;
- :mod:`.pseudo_inverse`: layer-by-layer inversion (eq. 5) refined by Gauss-Newton steps;
- :mod:`.targets`: the ideal output, the training-based starts, and the training outputs
  (:func:`training_outputs`, through the engine in memory-bounded chunks);
- :mod:`.optimise`: Adam on the input from such a start, for any differentiable network
  (CNNs, residual networks, torch.export archives at any fixed batch);
- :mod:`.result`: the :class:`Inversion` record.

Jacobians (Gauss-Newton steps, the objective's gradient) come from :mod:`svdcore.jacobian`.
"""

from .activations import (
    INVERTIBLE_ACTIVATIONS,
    ActivationInverse,
    NotInvertibleError,
    activation_range,
    invert_activation,
)
from .chains import chain_refusal
from .optimise import optimise_input
from .pseudo_inverse import pseudo_inverse_input
from .result import Inversion
from .targets import START_METHODS, ideal_output, training_outputs

__all__ = [
    "INVERTIBLE_ACTIVATIONS",
    "START_METHODS",
    "ActivationInverse",
    "Inversion",
    "NotInvertibleError",
    "activation_range",
    "chain_refusal",
    "ideal_output",
    "invert_activation",
    "optimise_input",
    "pseudo_inverse_input",
    "training_outputs",
]
