"""`Sequential`: lays layers over the flat buffer; Keras's compile / fit / evaluate / predict."""
from __future__ import annotations

import math

import numpy as np

from . import layers as layers_mod
from . import losses, metrics as metrics_mod
from . import optimizers
from .backend import to_numpy, xp
from .layers import Flatten, Input, Layer
from .params import FlatParams
from .parallel import get_comm
from .saving import save_model
from .train.evaluation import evaluate as evaluate_source, predict as predict_source
from .train.loop import fit as fit_source
from .train.state import TrainState
from .train.step import train_step
from .checks import ArgumentError
from .utils import check_finite, rng

DTYPES = ("float32", "float64")


class Sequential:
    """A stack of layers, ``Sequential([Input(shape=(100,)), Dense(500, activation="relu"), ...])``.

    All parameters live in ``self.params`` (ONE flat array) and all gradients in
    ``self.grads``; each layer holds reshaped views into them (see `gradfit.params`).
    `dtype` is "float32" (default) or "float64" for the whole model.
    """

    def __init__(self, layers=None, name=None, dtype="float32"):
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            pass
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.name = name or "sequential"
        self.dtype = np.dtype(dtype)
        self.layers: list[Layer] = []
        self.input_dim = None     # width of the (flattened) input vectors
        self.input_shape = None   # per-example shape, e.g. (28, 28) before a Flatten
        self.flat = None
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.train_state = None   # created by compile: the optimizer state and the run's position
        self.stop_training = False
        self._heads_ready = False
        self._fused = False
        self.history = None
        self.comm = get_comm()
        for layer in layers or []:
            self.add(layer)

    # -- structure --------------------------------------------------------------------------
    def add(self, layer) -> None:
        if self.built:
            raise RuntimeError("cannot add layers to a model that is already built")
        if isinstance(layer, Input):
            if self.layers or self.input_dim is not None:
                raise ValueError("Input(...) must be the first element of a Sequential model")
            self._set_input_shape(layer.shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes gradfit layers, got {layer!r}")
        if not self.layers:
            if self.input_shape is None:
                shape = getattr(layer, "declared_input_shape", None)
                dim = getattr(layer, "declared_input_dim", None)
                if shape is not None or dim is not None:
                    self._set_input_shape(shape if shape is not None else (dim,))
            if self.input_shape is not None and len(self.input_shape) > 1 \
                    and not isinstance(layer, Flatten):
                raise ValueError(
                    f"inputs of shape {self.input_shape} need Flatten() first: Dense layers take "
                    f"vectors, e.g. Sequential([Input(shape={self.input_shape}), Flatten(), ...])")
        self.layers.append(layer)

    def _set_input_shape(self, shape) -> None:
        self.input_shape = tuple(int(s) for s in shape)
        self.input_dim = math.prod(self.input_shape)

    def _flattens_first(self) -> bool:
        return bool(self.layers) and isinstance(self.layers[0], Flatten)

    @property
    def built(self) -> bool:
        return self.flat is not None

    def build(self, input_shape=None) -> None:
        """Fix shapes, allocate the flat buffers and draw initial weights (float64 -> dtype)."""
        if input_shape is not None:  # (batch, *example shape), as Keras's build
            if isinstance(input_shape, (tuple, list)) and len(input_shape) > 2:
                self._set_input_shape(input_shape[1:])
            elif self.input_shape is None or len(self.input_shape) == 1:
                dim = input_shape[-1] if isinstance(input_shape, (tuple, list)) else input_shape
                self._set_input_shape((int(dim),))
        if self.input_dim is None:
            raise ValueError("the input width is unknown: start the model with gradfit.Input(shape=(n,)) "
                             "or pass input_shape=(n,) to the first layer")
        if not self.layers:
            raise ValueError("the model has no layers")
        dim = self.input_dim
        for layer in self.layers:
            layer.dtype = self.dtype
            dim = layer.build(dim)
        self.output_dim = dim
        self.flat = FlatParams(self.layers, self.dtype)
        seen_params = False
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = seen_params
            seen_params = seen_params or bool(layer.param_shapes())
            layer.bind(*self.flat.views(i))
            for name, value in layer.initial_values(rng()).items():
                layer.params[name][...] = xp().asarray(value.astype(self.dtype))
        # data-parallel: every rank starts from rank 0's weights
        self.comm.bcast_(self.flat.data)

    @property
    def params(self):
        """The ONE flat parameter buffer."""
        self._ensure_built()
        return self.flat.data

    @property
    def grads(self):
        """The ONE flat gradient buffer (same layout as `params`)."""
        self._ensure_built()
        return self.flat.grad

    def _ensure_built(self, x=None):
        if not self.built:
            self.build(None if x is None else x.shape)

    def count_params(self) -> int:
        self._ensure_built()
        return self.flat.size

    def summary(self, print_fn=print) -> None:
        """Print each layer's output shape and parameter count, and the total."""
        self._ensure_built()
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self.layers:
            rows.append((f"{layer.name} ({type(layer).__name__})", f"(None, {layer.output_dim})",
                         f"{layer.count_params():,}"))
        w = [max(len(r[i]) for r in rows) + 3 for i in range(3)]
        line = "-" * sum(w)
        what = (f"input width {self.input_dim}" if self.input_shape is None or
                len(self.input_shape) == 1 else f"input shape {self.input_shape}")
        print_fn(f'Model: "{self.name}"  ({what}, {self.dtype})')
        print_fn(line)
        for i, r in enumerate(rows):
            print_fn(f"{r[0]:<{w[0]}}{r[1]:<{w[1]}}{r[2]:>{w[2]}}")
            if i == 0:
                print_fn("=" * sum(w))
        print_fn(line)
        n = self.count_params()
        print_fn(f"Total params: {n:,} ({n * self.dtype.itemsize / 1e6:.2f} MB)")

    # -- weights ------------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter, in Keras's order (kernel, bias per Dense layer)."""
        self._ensure_built()
        return [to_numpy(self.flat.data[e.start:e.stop]).reshape(e.shape).copy() for e in self.flat.entries]

    def set_weights(self, weights) -> None:
        self._ensure_built()
        entries = self.flat.entries
        if len(weights) != len(entries):
            raise ValueError(f"set_weights got {len(weights)} arrays, the model has {len(entries)} "
                             f"(shapes {[e.shape for e in entries]})")
        for i, (w, e) in enumerate(zip(weights, entries)):
            w = np.asarray(w)
            if w.shape != e.shape:
                raise ValueError(f"weight {i} ({self.layers[e.layer].name}/{e.name}) has shape {w.shape}, "
                                 f"expected {e.shape}")
            check_finite(f"weight {i}", w)
        for w, e in zip(weights, entries):
            self.flat.data[e.start:e.stop] = xp().asarray(np.asarray(w, dtype=self.dtype).reshape(-1))

    # -- maths over a batch -------------------------------------------------------------------
    def check_inputs(self, x, name="x"):
        """Validate inputs (rank, width, finiteness) and return them as a model-dtype array."""
        x = np.asarray(to_numpy(x)) if not isinstance(x, np.ndarray) else x
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
        x = x.reshape(self.check_input_shape(x.shape, name))
        check_finite(name, x)
        return np.ascontiguousarray(x, dtype=self.dtype)

    def check_input_shape(self, shape, name="x") -> tuple[int, int]:
        """``(n, input width)``: inputs of ``shape`` ``(n, *example shape)`` as the Dense layers
        take them, or a ValueError saying how to fix the shape. Examples with several axes need
        a model that starts with `Flatten`; an unbuilt one takes its input shape from them."""
        shape = tuple(int(s) for s in shape)
        if len(shape) > 2:  # examples with several axes: only a model that starts with Flatten
            example = shape[1:]
            if not self._flattens_first():
                raise ValueError(f"{name} has shape {shape}: examples of shape {example}; Dense "
                                 f"layers take vectors: start the model with "
                                 f"Flatten(input_shape={example}) or pass x.reshape(len(x), -1)")
            if self.input_shape is None and not self.built:
                self._set_input_shape(example)
            if example != self.input_shape:
                raise ValueError(f"{name} has examples of shape {example}, the model expects "
                                 f"{self.input_shape}")
            shape = (shape[0], math.prod(example))
        if len(shape) != 2:
            raise ValueError(f"{name} must have shape (n, features), got shape {shape}; "
                             "flatten images with x.reshape(len(x), -1)")
        if self.input_dim is not None and shape[1] != self.input_dim:
            raise ValueError(f"{name} has {shape[1]} features per example, the model expects "
                             f"{self.input_dim}")
        return shape

    def check_targets(self, y, n, name="y"):
        y = np.asarray(to_numpy(y))
        if y.ndim == 0:
            raise ValueError(f"{name} must be an array of {n} targets, got the scalar {y.item()!r}")
        if len(y) != n:
            raise ValueError(f"x and {name} have different lengths: {n} and {len(y)}")
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be numeric, got dtype {y.dtype}")
        check_finite(name, y)
        y = self.loss.check_targets(y, self.output_dim)
        return y if self.loss.sparse else np.ascontiguousarray(y, dtype=self.dtype)

    def forward(self, x, training=False):
        """Output of the network for a batch x (B, input_dim); a layer-owned buffer."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _output_logits(self):
        return self.layers[-1].logits

    def batch_loss(self, y_pred, y, denom=None, out=None):
        """(loss, dL/d(output or logits)) of a batch whose forward pass just ran."""
        if out is None:
            out = self.layers[-1]._buffer("dloss", y_pred.shape)
        if self._fused:
            return self.loss.value_and_grad_from_logits(self._output_logits(), y, out, denom, probs=y_pred)
        return self.loss.value_and_grad(y_pred, y, out, denom)

    def compute_gradients(self, x, y, denom=None, mark=None):
        """Forward and backward over one batch: fills `self.grads`, returns (loss, y_pred).

        loss = sum_i l_i / denom (denom = len(x) by default, see `gradfit.losses`).
        ``mark(name)``, when given, is called after each layer's forward and backward and after
        the loss (the profiler's clock; `gradfit.bench.profile`).
        """
        if not self._heads_ready:
            self._ensure_built(x)
            self._setup_heads()
        y_pred = x
        for i, layer in enumerate(self.layers):
            y_pred = layer.forward(y_pred, training=True)
            if mark is not None:
                mark(f"forward  {type(layer).__name__} {i} ({layer.input_dim}->{layer.output_dim})")
        value, dy = self.batch_loss(y_pred, y, denom)
        if mark is not None:
            mark("loss value + gradient")
        skip = self._fused
        for i in reversed(range(len(self.layers))):
            dy = self.layers[i].backward(dy, skip_activation=skip)
            skip = False
            if mark is not None:
                mark(f"backward {type(self.layers[i]).__name__} {i}")
            if dy is None:
                break
        return value, y_pred

    @property
    def regularized(self) -> bool:
        """Whether any layer adds a weight penalty (``kernel_regularizer`` / ``bias_regularizer``)."""
        return any(layer.regularized for layer in self.layers)

    def regularization(self, add_gradients=False) -> float:
        """The layers' weight penalties, summed (0.0 without regularizers).  With
        ``add_gradients`` their gradients are added to ``self.grads``: call it once per step,
        after the data gradient is complete (after the Allreduce in data-parallel training)."""
        return sum(layer.penalty(add_gradients) for layer in self.layers if layer.regularized)

    def set_shard(self, offset, global_batch):
        """Tell dropout layers which rows of the global batch this rank holds, so that their
        masks are drawn for the whole global batch and data-parallel training equals one
        process exactly, dropout included (`global_batch=None`: no sharding)."""
        for layer in self.layers:
            if hasattr(layer, "shard"):
                layer.shard = None if global_batch is None else (offset, global_batch)

    def layer_io(self):
        """[(x, dz)] of each Dense layer for the last batch (dz: gradient of the batch-mean loss)."""
        return [layer.io() for layer in self.layers if hasattr(layer, "io")]

    # -- Keras surface --------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose optimizer (name, config or instance), loss and metrics, as Keras.

        A new compile starts a new `TrainState` (``model.train_state``): fresh optimizer state."""
        if loss is None:
            raise ValueError(f"compile needs a loss; valid: {', '.join(sorted(losses.LOSSES))}")
        self.loss = losses.get(loss)
        self.optimizer = optimizers.get(optimizer)
        self._metric_ids = [metrics] if isinstance(metrics, str) else list(metrics or [])
        self.train_state = TrainState()
        self._heads_ready = False
        if self.built:
            self._setup_heads()

    def _setup_heads(self):
        """Resolve metrics and the fused output activation once the output width is known."""
        if self.loss is None:
            raise RuntimeError("the model is not compiled: call model.compile(optimizer, loss, metrics) first")
        self.metrics = [metrics_mod.get(m, self.loss, self.output_dim) for m in self._metric_ids]
        last = self.layers[-1]
        act = getattr(last, "activation", None)
        self._fused = act is not None and act.name == self.loss.fuses_with
        if hasattr(last, "keep_logits"):
            last.keep_logits = self._fused
            last.release_buffers()
        self._heads_ready = True

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            drop_remainder=True, steps_per_epoch=None, validation_steps=None):
        """Train on arrays, a memmap or ``.npy`` path, a packed directory, a PyDataset or a
        generator; see `gradfit.train.loop.fit` for the procedure. Returns a `History`."""
        return fit_source(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                          callbacks=callbacks, validation_split=validation_split,
                          validation_data=validation_data, shuffle=shuffle,
                          initial_epoch=initial_epoch, drop_remainder=drop_remainder,
                          steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, return_dict=False, steps=None):
        """Loss and metrics over ``x`` (and ``y``; any input ``fit`` takes): a float without
        metrics, else [loss, *metrics] (or a dict with `return_dict=True`), exactly averaged
        over every example (``steps`` batches of a generator, else all of them)."""
        return _logs_result(evaluate_source(self, x, y, _batch_size(batch_size, x), steps=steps),
                            return_dict)

    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """Network outputs for every row of ``x`` (any input ``fit`` takes), computed in batches
        (inference mode: dropout off)."""
        return predict_source(self, x, _batch_size(batch_size, x), steps=steps)

    def __call__(self, x, training=False):
        return self.predict(x)

    def train_on_batch(self, x, y, return_dict=False):
        """One optimizer step on one batch (`gradfit.train.step.train_step`, as ``fit`` takes).

        Returns, as Keras 3 does, the batch's loss (before the step), or ``[loss, *metrics]`` of
        this batch when metrics were compiled (a dict with ``return_dict=True``). Under MPI each
        rank passes its own rows; the step is that of their union (one Allreduce), so the ranks
        stay equal. A non-finite loss leaves the weights unchanged (with a warning) and is
        returned as it is."""
        x = self.check_inputs(x)
        if len(x) == 0:
            raise ArgumentError("x", "an empty batch", "a batch of at least one example")
        self.prepare(x)
        y = self.check_targets(y, len(x))
        state = self.train_state
        offset, total = _batch_position(self.comm, len(x))
        state.stop_reason = None
        result = train_step(self, state, xp().asarray(x), xp().asarray(y), total, offset)
        self.set_shard(0, None)
        self.stop_training = False
        if result is None:
            loss, sums = float(self.flat.grad_with_loss[-1]), [float("nan")] * len(self.metrics)
        else:
            loss, sums = result
        logs = {"loss": loss}
        if self.metrics:
            sums = np.asarray(sums, dtype=np.float64)
            self.comm.allreduce_array_(sums)
            logs.update({name: float(v) / total for (name, _), v in zip(self.metrics, sums)})
        return _logs_result(logs, return_dict)

    def test_on_batch(self, x, y, return_dict=False):
        """Loss (and metrics) of one batch in inference mode, as ``evaluate`` on that batch."""
        x = self.check_inputs(x)
        return self.evaluate(x, y, batch_size=max(1, len(x)), return_dict=return_dict)

    def predict_on_batch(self, x):
        """Network outputs for one batch (inference mode), as ``predict`` in one batch."""
        x = self.check_inputs(x)
        return self.predict(x, batch_size=max(1, len(x)))

    def prepare(self, x):
        """Build on first use (from ``x``'s shape) and resolve metrics / loss fusion once per
        compile; ``fit``, ``evaluate`` and ``train_on_batch`` call it after checking ``x``."""
        self._ensure_built(x)
        if not self._heads_ready:
            self._setup_heads()

    # -- configuration and files -------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "input_dim": self.input_dim,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        layers = []
        for spec in config["layers"]:
            kind = spec["class_name"]
            if kind not in layers_mod.LAYERS:
                raise ValueError(f"unknown layer class {kind!r} in model config; "
                                 f"valid: {', '.join(layers_mod.LAYERS)}")
            cfg = dict(spec["config"])
            if kind == "Dense":
                cfg["input_dim"] = cfg.pop("input_dim", None)
            layers.append(layers_mod.LAYERS[kind](**cfg))
        model = cls(layers, name=config.get("name"), dtype=config.get("dtype", "float32"))
        if config.get("input_shape") is not None:
            model._set_input_shape(config["input_shape"])
        elif config.get("input_dim") is not None:
            model._set_input_shape((config["input_dim"],))
        return model

    def save(self, path, include_optimizer=True) -> None:
        """Write the model (architecture, weights, compile settings, optimizer state) to one
        file, atomically, with a SHA-256 checksum. See `gradfit.saving`."""
        save_model(self, path, include_optimizer=include_optimizer)


def _batch_size(batch_size, x) -> int:
    """Keras's default for evaluate / predict: 32 rows per batch (a PyDataset or a generator
    brings its own batches, and the value is not used)."""
    return 32 if batch_size is None else batch_size


def _batch_position(comm, rows: int) -> tuple[int, int]:
    """(offset of this rank's rows in the union of every rank's batch, the union's size)."""
    if comm.size == 1:
        return 0, rows
    sizes = np.zeros(comm.size, dtype=np.float64)
    sizes[comm.rank] = rows
    comm.allreduce_array_(sizes)
    return int(sizes[:comm.rank].sum()), int(sizes.sum())


def _logs_result(logs: dict, return_dict: bool):
    """Keras's return convention: the dict, the loss alone, or [loss, *metrics]."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values
