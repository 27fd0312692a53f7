"""Layers: forward/backward pairs of pure maths over views of the flat buffers."""
from .activations import Activation
from .base import Layer
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .input import Input

LAYERS = {"Dense": Dense, "Dropout": Dropout, "Activation": Activation, "Flatten": Flatten}

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Input", "Layer", "LAYERS"]
