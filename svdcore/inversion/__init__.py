"""Inputs that produce a target output (Pattichis & Pattichis, section 2.4).

One module per job:

- :mod:`.activations`: element-wise activations and their inverses;
- :mod:`.chains`: networks read as chains of Linear layers and activations (float64);
- :mod:`.pseudo_inverse`: layer-by-layer inversion (eq. 5) refined by Gauss-Newton steps;
- :mod:`.targets`: the ideal output and the training-based starts;
- :mod:`.optimise`: Adam on the input from such a start;
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
from .optimise import optimise_input
from .pseudo_inverse import pseudo_inverse_input
from .result import Inversion
from .targets import START_METHODS, ideal_output

__all__ = [
    "INVERTIBLE_ACTIVATIONS",
    "START_METHODS",
    "ActivationInverse",
    "Inversion",
    "NotInvertibleError",
    "activation_range",
    "ideal_output",
    "invert_activation",
    "optimise_input",
    "pseudo_inverse_input",
]
