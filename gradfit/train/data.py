"""What ``fit``, ``evaluate`` and ``predict`` were given, as batch sources bound to the model.

Every input becomes a source of `gradfit.datasets` (``as_source``): numpy arrays and memmaps
(``ArraySource``, read and converted per batch, never copied whole), ``.npy`` paths, packed
directories, a `PyDataset`, a generator or iterable of ``(x, y)`` batches. So the loop, the
evaluation and the prediction have one data path, whatever the data are.

Checked before any work, in this order (an error names the value and the fix):

1. the input kind and its rows' shape against the model (`Sequential.check_input_shape`: the
   width, Flatten for images); an unbuilt model is built from it;
2. the source is bound to the model's `Conversion` (its dtype, and for sparse labels the class
   count), so every batch read is converted and checked on its own;
3. for training (`check_before_training`): targets exist; arrays in memory are checked whole,
   chunk by chunk (finite values, labels in range, the loss's target rules: bad values in RAM
   cost no training); a memmap's rows and a packed directory's are checked per batch, as they
   are read (scanning them would read the whole file first), after the up-front checks of the
   packed index (its class count against the model's outputs).
"""
from __future__ import annotations

import numpy as np

from ..checks import ArgumentError
from ..datasets import ArraySource, Conversion, DatasetError, Request, as_source


def open_source(model, x, y=None, *, name: str = "x", targets: bool = True):
    """The source of ``x`` (and ``y``), checked against the model and bound to it (steps 1-2
    of the module docstring). ``targets``: the data must carry targets (fit, evaluate);
    predict passes False and never reads them."""
    source = as_source(x, y, name=name)
    source.bind(conversion(model, targets))         # the dtype; the class count once built
    if source.unit == "row":
        shape = (len(source), *source.row_shape)
    else:                                            # a batch shows the rows' shape
        shape = np.shape(source.peek()[0])
    _, width = model.check_input_shape(shape, name)
    if targets:
        model.prepare(np.empty((0, width), model.dtype))
    elif not model.built:
        model.build((0, width))
    source.bind(conversion(model, targets))
    if targets and not source.has_targets:
        raise DatasetError(f"{name} holds no targets ({describe(source)}); training and "
                           f"evaluation need y: pass y with arrays, or yield (x, y) batches")
    return source


def conversion(model, targets: bool = True) -> Conversion:
    """What every batch becomes: the model's dtype; int64 labels below the output width for a
    sparse loss, model-dtype targets otherwise."""
    loss = model.loss if targets else None
    sparse = bool(loss is not None and loss.sparse)
    classes = model.output_dim if sparse and model.built else None
    return Conversion(model.dtype.name, classes, labels=sparse)


def check_before_training(model, source) -> None:
    """Step 3 of the module docstring, for a training or validation source."""
    classes = getattr(source, "num_classes", None)
    if model.loss.sparse and classes and classes > model.output_dim:
        raise DatasetError(f"{describe(source)} holds labels 0..{classes - 1} ({classes} classes), "
                           f"the model has {model.output_dim} outputs: give the last layer "
                           f"{classes} units")
    base = getattr(source, "base", source)           # a random split checks its whole set
    if isinstance(base, ArraySource):
        check = None if model.loss.sparse else (lambda y: model.loss.check_targets(
            y, model.output_dim))
        base.check_all(targets=check)


def batch_targets(model, y):
    """One batch's targets as the loss takes them (sparse labels were checked by the source's
    conversion; others get the loss's shape and range rules, 1-D becoming (b, 1))."""
    if y is None or model.loss.sparse:
        return y
    return model.loss.check_targets(y, model.output_dim)


def first_rows(model, source, rows: int = 1):
    """The first ``rows`` rows of a bound row source as a batch the model takes: ``x`` of shape
    (rows, input width) and its targets."""
    x, y = source.fetch(Request(0, 0, slice(0, min(rows, len(source))), "the first rows"))
    return x.reshape(len(x), model.input_dim), batch_targets(model, y)


def validation_source(model, train, validation_data, validation_split):
    """(training source, validation source or None), as Keras: ``validation_data`` (a pair
    ``(x_val, y_val)`` or a source, PyDataset or generator) wins over ``validation_split``,
    which takes the LAST fraction of the rows before any shuffling (rows sources only)."""
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            if len(validation_data) == 3:
                raise ArgumentError("validation_data", "(x, y, sample_weight)", "a pair (x_val, "
                                    "y_val)", "gradfit has no sample weights")
            if len(validation_data) != 2:
                raise ArgumentError("validation_data", f"a {type(validation_data).__name__} of "
                                    f"{len(validation_data)} items", "a pair (x_val, y_val), a "
                                    "PyDataset, a generator or a packed directory")
            xv, yv = validation_data
            val = open_source(model, xv, yv, name="validation x")
        else:
            val = open_source(model, validation_data, name="validation_data")
        return train, val
    if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
        raise ArgumentError("validation_split", validation_split, "a fraction in [0, 1)")
    if validation_split == 0:
        return train, None
    if train.unit != "row":
        raise ArgumentError("validation_split", validation_split, f"0 for {describe(train)}",
                            "a PyDataset or a generator has no rows to split: pass "
                            "{validation_data}")
    n = len(train)
    cut = int(n * (1 - validation_split))
    if cut == n or cut == 0:
        raise ArgumentError("validation_split", validation_split, "a fraction that leaves "
                            f"rows on both sides: it leaves an empty "
                            f"{'validation' if cut == n else 'training'} set of {n} examples")
    return train.take(0, cut), train.take(cut, n)


def describe(source) -> str:
    """The source in words, for messages and the first line of training."""
    if source.unit == "row":
        return f"{len(source)} examples"
    if source.unit == "batch":
        return f"a {source.type_name} of {source.num_batches} batches"
    endless = "an endless " if getattr(source, "dataset", None) is not None else "a "
    return endless + source.type_name
