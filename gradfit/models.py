"""``keras.models``'s names (``Sequential``, ``load_model``), for Keras code with one import
changed (``import gradfit as keras``); `load_model` lives here, beside the class it builds."""
from .model import Sequential
from .saving import CorruptFileError, read_archive, restore_payload


def load_model(path, compile=True):
    """Rebuild a model saved by `model.save(path)`: architecture, weights, compile settings
    and optimizer state (so training continues exactly where it stopped)."""
    meta, arrays = read_archive(path)
    if meta.get("format") != 1:
        raise CorruptFileError(f"{path}: unsupported gradfit file format {meta.get('format')!r}")
    model = Sequential.from_config(meta["config"])
    model.build()
    if compile and meta.get("compile"):
        c = meta["compile"]
        model.compile(optimizer=c["optimizer"], loss=c["loss"], metrics=c["metrics"])
        model.prepare(None)
    restore_payload(model, meta, arrays)
    return model


__all__ = ["Sequential", "load_model"]
