"""``keras.models``'s names, for Keras code with one import changed (``import gradfit as keras``)."""
from .model import Sequential
from .saving import load_model

__all__ = ["Sequential", "load_model"]
