"""Readers for models and datasets."""

from .chain import ACTIVATIONS, build_chain, chain_order
from .datasets import DATASET_SUFFIXES, Dataset, load_dataset, make_dataset
from .models import FORMATS, detect_format, load_model

__all__ = [
    "ACTIVATIONS",
    "DATASET_SUFFIXES",
    "FORMATS",
    "Dataset",
    "build_chain",
    "chain_order",
    "detect_format",
    "load_dataset",
    "load_model",
    "make_dataset",
]
