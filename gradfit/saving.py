"""One-file model format, written atomically and checksummed.

Layout of a `.gfm` file (any name works)::

    8 bytes   magic  b"GRADFIT1"
    8 bytes   payload length, little-endian unsigned
    32 bytes  SHA-256 of the payload
    payload   an uncompressed .npz: "__meta__" (UTF-8 JSON as uint8) + named arrays

The JSON holds the architecture (`Sequential.get_config`), the compile settings (loss,
metrics, optimizer config) and free-form sections (training progress); the arrays hold the
flat parameter buffer and the optimizer state's arrays.  A second-order method's state also
holds plain numbers (LM's mu, L-BFGS's ring position, BFGS's previous loss or None): those
go into the JSON (``"optimizer_values"``), which keeps a float's every bit (``repr``).

Files are written to a temporary file in the same folder, flushed and fsynced, then renamed
over the target, so a crash never leaves a half-written file under the real name; a truncated
or corrupted file fails the length or checksum test and raises `CorruptFileError` instead of
loading garbage.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile

import numpy as np

from . import optimizers
from .backend import to_numpy, xp

MAGIC = b"GRADFIT1"
_HEADER = struct.Struct("<8sQ32s")


class CorruptFileError(ValueError):
    """A gradfit file failed its magic, length or checksum test."""


def write_archive(path, meta: dict, arrays: dict) -> None:
    """Atomically write `meta` (JSON-able) and `arrays` (name -> array) to `path`."""
    buf = io.BytesIO()
    payload_arrays = {k: to_numpy(v) for k, v in arrays.items()}
    payload_arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buf, **payload_arrays)
    payload = buf.getvalue()
    header = _HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest())
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".gfm", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600 files; give the usual mode
            f.write(header)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_archive(path) -> tuple[dict, dict]:
    """(meta, arrays) from a file written by `write_archive`; CorruptFileError if damaged."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such gradfit file: {path}")
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < _HEADER.size or blob[:8] != MAGIC:
        raise CorruptFileError(f"{path} is not a gradfit file (bad magic bytes); "
                               "was it written by model.save()?")
    _, length, digest = _HEADER.unpack(blob[:_HEADER.size])
    payload = blob[_HEADER.size:]
    if len(payload) != length:
        raise CorruptFileError(f"{path} is truncated or padded: payload has {len(payload)} bytes, "
                               f"header says {length}; restore it from a backup or save again")
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptFileError(f"{path} is corrupted: SHA-256 checksum mismatch; "
                               "restore it from a backup or save again")
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    return meta, arrays


def model_payload(model, include_optimizer=True) -> tuple[dict, dict]:
    """(meta, arrays) describing a model: config, compile settings, weights, optimizer state."""
    model._ensure_built()
    meta = {"format": 1, "config": model.get_config(), "compile": None, "optimizer_step": None}
    arrays = {"params": model.params}
    if model.loss is not None:
        meta["compile"] = {
            "loss": model.loss.get_config(),
            "metrics": [m if isinstance(m, str) else m.name for m in model._metric_ids],
            "optimizer": optimizers.serialize(model.optimizer),
        }
        opt_state = model.train_state.opt
        if include_optimizer and opt_state is not None:
            meta["optimizer_step"] = int(opt_state["step"])
            values = {}
            for k, v in opt_state.items():
                if k == "step":
                    continue
                if _is_array(v):
                    arrays[f"opt/{k}"] = v
                else:          # a number or None (second-order methods)
                    values[k] = v.item() if isinstance(v, np.generic) else v
            if values:
                meta["optimizer_values"] = values
    return meta, arrays


def restore_payload(model, meta, arrays) -> None:
    """Load weights and optimizer state of `meta`/`arrays` into a model built from its config."""
    params = arrays["params"]
    if params.shape != (model.count_params(),):
        raise CorruptFileError(f"parameter buffer has shape {params.shape}, the architecture needs "
                               f"({model.count_params()},)")
    model.params[...] = xp().asarray(params.astype(model.dtype))
    if meta.get("optimizer_step") is not None and model.optimizer is not None:
        # init() gives the expected slots and also hands the optimizer the per-variable
        # segments (per-variable clipnorm), which a bare state dict would leave unset.
        state = model.optimizer.init(model.params, segments=model.flat.segments)
        saved = {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}
        values = meta.get("optimizer_values", {})
        expected = sorted(k for k in state if k != "step" and _is_array(state[k]))
        expected_values = sorted(k for k in state if k != "step" and not _is_array(state[k]))
        if sorted(saved) != expected or sorted(values) != expected_values:
            raise CorruptFileError(f"optimizer state holds {sorted(saved) + sorted(values)}, "
                                   f"{type(model.optimizer).__name__} needs "
                                   f"{expected + expected_values}")
        state.update(values)
        for k, v in saved.items():
            if v.shape != state[k].shape:
                raise CorruptFileError(f"optimizer state {k!r} has shape {v.shape}, "
                                       f"expected {state[k].shape}")
            state[k] = xp().asarray(v.astype(model.dtype))
        state["step"] = int(meta["optimizer_step"])
        model.train_state.opt = state


def _is_array(v) -> bool:
    return hasattr(v, "shape") and getattr(v, "ndim", 0) > 0


def save_model(model, path, include_optimizer=True) -> None:
    meta, arrays = model_payload(model, include_optimizer)
    write_archive(path, meta, arrays)
