"""Readers for models (and, later, datasets)."""

from .chain import ACTIVATIONS, build_chain, chain_order
from .models import FORMATS, detect_format, load_model

__all__ = ["ACTIVATIONS", "FORMATS", "build_chain", "chain_order", "detect_format", "load_model"]
