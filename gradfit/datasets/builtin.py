"""The named datasets: ``digits`` (offline), ``mnist`` and ``fashion_mnist`` (cached IDX files).

All return a :class:`~gradfit.datasets.base.Dataset`, so
``(x_train, y_train), (x_test, y_test) = mnist()`` works as with Keras.  By default images
are ``float32``, flattened to one row per image and scaled to ``[0, 1]``:

    x = pixel / max_pixel        (max_pixel = 255 for MNIST, 16 for digits)

Labels are ``int64`` in ``0..9``.
"""
from __future__ import annotations

import numpy as np

from .base import Dataset, DatasetError
from .cache import fetch
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx_gz
from .split import split_indices

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))


def _images(raw: np.ndarray, max_value: float, flatten: bool, normalize: bool) -> np.ndarray:
    x = raw.reshape(raw.shape[0], -1) if flatten else raw
    if normalize:
        x = x.astype(np.float32)
        x /= np.float32(max_value)  # in place: one 188 MB array for MNIST train, not two
    return x


def digits(test_fraction: float = 0.2, seed: int = 0, flatten: bool = True,
           normalize: bool = True) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images; no download needed).

    The data come without a test set, so one is drawn here: a stratified split with
    ``test_fraction`` of the images (default 0.2: 1438 train / 359 test) chosen by ``seed``
    (default 0, so every run sees the same split).  Pixels are integers 0..16; with
    ``normalize`` (default) ``x = pixel / 16`` as float32 in ``[0, 1]``, otherwise the raw
    values as float64 (scikit-learn's dtype).  ``flatten=False`` gives shape ``(n, 8, 8)``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("digits() needs scikit-learn's bundled data: pip install scikit-learn"
                          ) from exc
    bunch = load_digits()
    x = _images(bunch.images, 16.0, flatten, normalize)
    y = bunch.target.astype(np.int64)
    train, _, test = split_indices(y.shape[0], 0.0, test_fraction, seed=seed, stratify=y)
    return Dataset(x[train], y[train], x[test], y[test], 10, "digits", DIGIT_CLASSES,
                   source_rows=(train, test), source="scikit-learn's digits")


def _idx_dataset(dataset: str, data_dir, download: bool, flatten: bool, normalize: bool,
                 class_names) -> Dataset:
    arrays = {}
    for split in ("train", "t10k"):
        xp = fetch(dataset, f"{split}-images-idx3-ubyte.gz", data_dir, download)
        yp = fetch(dataset, f"{split}-labels-idx1-ubyte.gz", data_dir, download)
        x = read_idx_gz(xp, IMAGES_MAGIC)
        y = read_idx_gz(yp, LABELS_MAGIC)
        if x.shape[1:] != (28, 28) or x.shape[0] != y.shape[0] or y.size and y.max() > 9:
            raise DatasetError(
                f"{xp}, {yp}: images {x.shape} and labels {y.shape} (max {y.max() if y.size else None})"
                f" are not n 28x28 images with n labels in 0..9; replace them with the official files")
        arrays[split] = (_images(x, 255.0, flatten, normalize), y.astype(np.int64))
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["t10k"]
    return Dataset(x_train, y_train, x_test, y_test, 10, dataset, class_names)


def mnist(data_dir=None, download: bool = True, flatten: bool = True,
          normalize: bool = True) -> Dataset:
    """MNIST handwritten digits: 60000 train / 10000 test images of 28x28 pixels.

    Read from the original IDX ``.gz`` files in ``<data_dir>/mnist/`` (default data dir:
    ``$GRADFIT_DATA``, else ``~/.cache/gradfit``), downloaded there when missing (unless
    ``download=False``) and always checked against the published SHA-256.
    ``normalize`` (default): float32 ``pixel / 255`` in ``[0, 1]``; otherwise raw uint8.
    ``flatten`` (default): shape ``(n, 784)``; otherwise ``(n, 28, 28)``.
    """
    return _idx_dataset("mnist", data_dir, download, flatten, normalize, DIGIT_CLASSES)


def fashion_mnist(data_dir=None, download: bool = True, flatten: bool = True,
                  normalize: bool = True) -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017): 28x28 clothing images, 10 classes, 60000/10000.

    Files in ``<data_dir>/fashion-mnist/``; otherwise exactly as :func:`mnist`.  Class names
    are in ``ds.class_names`` (``FASHION_CLASSES``).
    """
    return _idx_dataset("fashion-mnist", data_dir, download, flatten, normalize, FASHION_CLASSES)


def _keras_load_data(loader, name):
    def load_data(path=None):
        """``keras.datasets.{name}.load_data()``: ``((x_train, y_train), (x_test, y_test))``
        with raw uint8 images of shape (n, 28, 28), as Keras returns them.  gradfit reads the
        original IDX files from ``$GRADFIT_DATA`` (see ``{name}()``), not Keras's npz cache."""
        if path is not None:
            raise ValueError(f"load_data(path={{path!r}}): gradfit reads {name} from the IDX files "
                             "in $GRADFIT_DATA (or ~/.cache/gradfit), not a Keras npz file; "
                             "call load_data() without path")
        ds = loader(flatten=False, normalize=False)
        return (ds.x_train, ds.y_train), (ds.x_test, ds.y_test)
    load_data.__doc__ = load_data.__doc__.format(name=name)
    return load_data


# Keras code calls keras.datasets.mnist.load_data(): the same call works on these functions
mnist.load_data = _keras_load_data(mnist, "mnist")
fashion_mnist.load_data = _keras_load_data(fashion_mnist, "fashion_mnist")
