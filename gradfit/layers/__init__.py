"""Layers: forward/backward pairs of pure maths over views of the flat buffers."""
from .activations import Activation
from .base import Layer
from .dense import Dense
from .dropout import Dropout
from .input import Input

LAYERS = {"Dense": Dense, "Dropout": Dropout, "Activation": Activation}

__all__ = ["Activation", "Dense", "Dropout", "Input", "Layer", "LAYERS"]
