"""Run an optimizer's elementwise rule over the flat buffers, on the backend that fits them.

``apply(rule, slots, params, grads, state, keep, wd, numbers, flags)`` updates ``params``
and the state arrays in place with ONE function, ``rule(p, g, *slots, *numbers, *flags) ->
(p, *slots)`` (see ``elementwise.py``), after weight decay ``p <- p * keep`` (decoupled) and
``g <- g + wd * p`` (coupled L2).  ``state`` lists the rule's slots in order, None for a
slot the configuration does not keep.  The backends, all running that same function:

* **numba** (``numba_driver.py``): one multi-threaded pass over the buffers.  Taken when
  ``fused`` is true, numba is installed, the arrays are C-contiguous 1-D float32/float64
  numpy arrays of one dtype, and there are at least ``PARALLEL_MIN`` of them: below that,
  waking the thread pool costs more than it saves (a parallel region costs ~100 us, and on a
  busy machine can wait milliseconds for a thread).  It only reads ``grads``.
* **numpy** (``program.py``): the rule traced into in-place ufunc calls, over chunks of
  ``NUMPY_CHUNK`` elements where it needs scratch buffers.  It consumes ``grads``.  The reference, and the path of every
  model under ``PARALLEL_MIN`` parameters.
* **device** (CuPy arrays, any size): the rule with its vocabulary rebound to CuPy's ufuncs,
  compiled into one kernel by ``cupy.fuse`` (the flags and absent slots bound as constants),
  or evaluated as CuPy array expressions where ``fuse`` is missing.

Every scalar meets the arrays in their dtype: numba and CuPy get them cast (numba would
otherwise compute a float32 rule in float64), numpy casts a Python float itself when it
meets a float32 array (NEP 50).  So the numba and numpy backends give the same bits
(tested).  ``grads`` is consumed by some backends and not others: callers must not rely on
it afterwards.
"""
from __future__ import annotations

import numpy as np

from ..backend import xp
from . import elementwise, numba_driver
from .program import Program

#: below this many elements the numpy backend runs (see the module docstring)
PARALLEL_MIN = 1 << 17
#: chunk of the numpy backend's programs that need scratch buffers (see program.py)
NUMPY_CHUNK = 1 << 18

_programs = {}
_device_steps = {}


def apply(rule, slots, params, grads, state, keep, wd, numbers, flags=(), fused=True) -> str:
    """One update in place; returns the backend that ran: "numba", "numpy" or "device".

    ``rule(p, g, *slots, *numbers, *flags)``; ``state``: the arrays of ``slots`` in order,
    None where not kept; ``keep``, ``wd``: the weight decay (1 and 0 for none).
    """
    present = tuple([a is not None for a in state])
    decoupled, coupled = keep != 1, wd != 0
    if isinstance(params, np.ndarray):
        arrays = [a for a in state if a is not None]
        if fused and params.shape[0] >= PARALLEL_MIN and _fusable(params, grads, arrays):
            drive = numba_driver.driver(rule, len(slots), present)
            if drive is not None:
                f = params.dtype.type
                drive(params, grads, *arrays, f(keep), f(wd), f(0), (*map(f, numbers), *flags))
                return "numba"
        key = (rule, present, flags, decoupled, coupled)
        program = _programs.get(key)
        if program is None:
            program = _programs[key] = Program(rule, slots, present, flags, decoupled, coupled)
        program.run(params, grads, state, keep, wd, numbers, NUMPY_CHUNK)
        return "numpy"
    f = params.dtype.type
    arrays = [a for a in state if a is not None]
    step = _device_step(rule, slots, present, len(numbers), flags, decoupled, coupled)
    scalars = ([keep] if decoupled else []) + ([wd] if coupled else []) + list(numbers)
    step(params, grads, *arrays, *map(f, scalars))
    return "device"


def _fusable(params, grads, arrays) -> bool:
    if params.dtype not in (np.float32, np.float64):
        return False
    return all(isinstance(a, np.ndarray) and a.dtype == params.dtype and a.ndim == 1
               and a.shape == params.shape and a.flags.c_contiguous
               for a in [params, grads, *arrays])


_DEVICE_TEMPLATE = '''
def step(p, g, {params}):
    pk = {pk}
    gk = {gk}
    out = rule(pk, gk, {args})
{writes}
'''


def _device_step(rule, slots, present, n_numbers, flags, decoupled, coupled):
    """``step(p, g, *present_slots, [keep], [wd], *numbers)`` for CuPy arrays: the rule with
    its vocabulary bound to CuPy's functions, flags and absent slots as constants, writing
    ``p`` and the slots in place (``x[...] = ...``, which ``cupy.fuse`` supports)."""
    cupy = xp()
    key = (rule, present, flags, decoupled, coupled, cupy)
    if key not in _device_steps:
        kept = [f"s{i}" for i, on in enumerate(present) if on]
        numbers = [f"c{j}" for j in range(n_numbers)]
        scalars = (["keep"] if decoupled else []) + (["wd"] if coupled else [])
        args = [f"s{i}" if on else "None" for i, on in enumerate(present)]
        writes = ["    p[...] = out[0]"] + [f"    s{i}[...] = out[{1 + i}]"
                                              for i, on in enumerate(present) if on]
        text = _DEVICE_TEMPLATE.format(
            params=", ".join(kept + scalars + numbers),
            args=", ".join(args + numbers + [repr(bool(b)) for b in flags]),
            pk="p * keep" if decoupled else "p", gk="g + wd * pk" if coupled else "g",
            writes="\n".join(writes))
        namespace = {"rule": elementwise.rebind(
            rule, {name: getattr(cupy, name) for name in elementwise.VOCABULARY})}
        exec(compile(text, f"<gradfit device step for {rule.__name__}>", "exec"), namespace)
        fuse = getattr(cupy, "fuse", None)
        step = namespace["step"]
        _device_steps[key] = fuse(kernel_name=f"gradfit_{rule.__name__}")(step) if fuse else step
    return _device_steps[key]
