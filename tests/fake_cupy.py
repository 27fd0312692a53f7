"""A CPU stand-in for CuPy, strict where CuPy is strict: the arrays live "on the device".

numpy computes underneath, but the arrays are not numpy arrays, and, as CuPy's documentation
says, "cupy.ndarray and numpy.ndarray are not implicitly convertible to each other: NumPy
functions cannot take cupy.ndarrays as inputs, and vice versa".  So:

* ``np.asarray(device_array)``, ``np.<function>(device_array)`` and numpy ufuncs on device
  arrays raise TypeError (``__array__`` refuses; ``__array_ufunc__``/``__array_function__``
  are not implemented);
* this module's functions, the arrays' operators and methods refuse numpy arrays (0-d ones
  too), and so does assigning one into a device array; Python and numpy scalars are fine,
  and so are list or numpy *index* arrays, which CuPy copies to the device itself;
* the only ways across are ``asarray(host)`` (host -> device), ``.get()`` / ``asnumpy``
  (device -> host) and ``float()`` / ``int()`` / ``.item()`` of one element;
* ``fuse`` returns the function itself, which then runs on the device arrays operation by
  operation: the code path of gradfit's fused optimizer step, not CUDA's kernel fusion.

It lets the tests run gradfit's ``"cupy"`` backend code path (no numba, no numpy-only
shortcuts, explicit transfers) on a machine without a GPU.  It is not CuPy: it checks where
data crosses between host and device, not CUDA kernels or CuPy's numerics.
"""
from __future__ import annotations

import operator
import types

import numpy as np

_TRANSFER_MSG = ("Implicit conversion to a NumPy array is not allowed. "
                 "Please use `.get()` to construct a NumPy array explicitly.")


def _dev(x):
    """Unwrap a device array; refuse numpy arrays; leave scalars, slices, None, dtypes."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}: a numpy array given to a device "
                        f"operation (shape {x.shape}); use cupy.asarray first")
    if isinstance(x, (list, tuple)):
        return type(x)(_dev(i) for i in x)
    return x


def _index(key):
    """CuPy copies list and numpy index arrays to the device itself (_prepare_slice_list)."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, (list, np.ndarray)):
        return np.asarray(key)
    return _dev(key)


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, tuple):
        return tuple(_wrap(i) for i in x)
    return x


def _call(fn, args, kwargs):
    args = [_dev(a) for a in args]
    kwargs = {k: _dev(v) for k, v in kwargs.items()}
    return _wrap(fn(*args, **kwargs))


class ndarray:  # noqa: N801 - the name CuPy uses
    __slots__ = ("_a",)
    __array_ufunc__ = None        # numpy ufuncs refuse device arrays (TypeError)

    def __init__(self, a):
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError(_TRANSFER_MSG)

    def __array_function__(self, func, types_, args, kwargs):
        return NotImplemented     # np.<function>(device array) -> TypeError

    # -- explicit transfers and scalars ------------------------------------------------------
    def get(self):
        return self._a.copy()

    def item(self):
        return self._a.item()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def __len__(self):
        return len(self._a)

    def __repr__(self):
        return f"fake_cupy.{self._a!r}"

    # -- attributes, methods, indexing -------------------------------------------------------
    @property
    def T(self):  # noqa: N802
        return ndarray(self._a.T)

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__, __array_struct__, ... either
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _call(attr, args, kwargs)
        return _wrap(attr)

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        self._a[_index(key)] = _dev(value)  # a numpy array value: TypeError (CuPy: fill fails)


def _binary(op):
    def method(self, other):
        return _wrap(op(self._a, _dev(other)))
    return method


def _reflected(op):
    def method(self, other):
        return _wrap(op(_dev(other), self._a))
    return method


def _inplace(op):
    def method(self, other):
        op(self._a, _dev(other))
        return self
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
              "and", "or", "xor", "lt", "le", "gt", "ge", "eq", "ne"):
    _op = getattr(operator, _name if _name not in ("and", "or") else _name + "_")
    setattr(ndarray, f"__{_name}__", _binary(_op))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(ndarray, f"__r{_name}__", _reflected(_op))
        setattr(ndarray, f"__i{_name}__", _inplace(getattr(operator, f"i{_name}")))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", (lambda op: lambda self: _wrap(op(self._a)))(
        getattr(operator, _name)))
ndarray.__hash__ = None


# -- the module ---------------------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """Host -> device (or a device array, maybe cast)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else ndarray(a._a.astype(dtype))
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return ndarray(np.array(a._a, dtype=dtype, copy=copy, order=order))
    return asarray(a, dtype=dtype)


def asnumpy(a):
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*args):
    return module


def fuse(*args, **kwargs):
    """``cupy.fuse`` stood in for by the function itself, called on the device arrays: the
    fused kernel computes the same elementwise maths, in one pass instead of one per
    operation.  Like CuPy's, it takes ``@fuse``, ``@fuse()`` and ``@fuse(kernel_name=...)``."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


def _module_getattr(name):
    attr = getattr(np, name)
    if isinstance(attr, (type, np.dtype)) or not callable(attr):
        return attr               # dtypes (float32, ...), constants (pi, inf, newaxis)
    return lambda *args, **kwargs: _call(attr, args, kwargs)


module = types.ModuleType("cupy", __doc__)
module.ndarray = ndarray
module.asarray = asarray
module.array = array
module.asnumpy = asnumpy
module.get_array_module = get_array_module
module.fuse = fuse
module.__getattr__ = _module_getattr
module.__fake__ = True
