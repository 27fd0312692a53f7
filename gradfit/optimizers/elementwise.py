"""The vocabulary of an update rule: the only functions a rule may call.

An optimizer's ``rule(p, g, *slots, *coefficients) -> (p, *slots)`` is arithmetic
(``+ - * /`` and unary ``-``) on its arguments plus the functions below, imported from this
module by name.  Written that way it is valid for scalars and for arrays alike, and each
backend runs it with these names bound to its own implementation (``drivers.py``):

* numba compiles the rule, per element, with them bound to numpy's ufuncs (numba implements
  them for scalars);
* the numpy backend binds them to a tracer that records the numpy ufunc calls once
  (``program.py``) and replays them over the whole buffers;
* the CuPy backend binds them to CuPy's ufuncs, inside ``cupy.fuse``.

A rule branches only on its flags (Python bools among the coefficients), never on array
values, and holds no numeric literal (a Python ``1.0`` mixed into float32 arithmetic makes
numba compute the whole rule in float64): constants such as ``1 - beta`` are coefficients.
"""
from __future__ import annotations

import types

import numpy as np

sqrt = np.sqrt
maximum = np.maximum
minimum = np.minimum
sign = np.sign
absolute = np.absolute

#: the names a rule may import from here; every backend binds each of them
VOCABULARY = ("sqrt", "maximum", "minimum", "sign", "absolute")


def rebind(rule, functions: dict):
    """A copy of ``rule`` whose vocabulary names resolve to ``functions`` (name -> callable).

    The copy shares the rule's code object, so it is the same maths; only the globals it
    looks the vocabulary up in differ.
    """
    names = dict(rule.__globals__)
    names.update(functions)
    return types.FunctionType(rule.__code__, names, rule.__name__, rule.__defaults__,
                              rule.__closure__)
