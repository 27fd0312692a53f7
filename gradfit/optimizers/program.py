"""The numpy backend: a rule traced once into a program of in-place ufunc calls.

Evaluated on whole arrays, a rule allocates a new array for every operation and its results
must then be copied back into the parameter and state arrays: for Adam at 20k float32
parameters that was 35% slower than the hand-written in-place numpy chain it replaces
(measured).  So the numpy backend runs the rule once with *tracer* values instead of arrays,
the flags bound: each arithmetic operator and each numpy ufunc the rule calls (the
``elementwise`` vocabulary; numpy hands ufunc calls on tracers to ``__array_ufunc__``, NEP 13)
is recorded as one ufunc call.  A planner then chooses where each call writes (``out=``):

1. the parameter or state array the result is the new value of, once that array's old value
   has been read for the last time;
2. else an argument read for the last time by this very call (numpy's own temporary
   elision; an elementwise ufunc may write over its input);
3. else the gradient, once read for the last time (``update`` may consume it), or a scratch
   buffer.

Adam becomes 14 in-place ufunc calls and one scratch buffer, the count of the hand-written
chain, with no copy back.  The results are the rule's to the last bit: the same operations
in the same order on the same dtype as numba's per-element loop.

The program runs over chunks of ``chunk`` elements when it needs scratch buffers, so that
they stay small and in the cache (measured on Adam and RMSprop, 2.5M float32: chunks of 2**18
beat whole arrays, 2**15 and 2**16); a program without scratch (SGD) runs on whole arrays, one
call per operation.  A program is built once per (rule, state slots present, flag values,
weight-decay kind) and kept.
"""
from __future__ import annotations

import numpy as np

_LITERAL = ("the update rule mixes {what!r} into its arithmetic: a rule holds no numeric literal "
            "and does no arithmetic on its flags; pass the number as a coefficient (numba would "
            "compute a float32 rule in float64 otherwise)")


class _Value:
    """A value of the traced rule: an input, or the result of one recorded ufunc call."""

    __slots__ = ("trace", "id", "is_array")

    def __init__(self, trace, id_, is_array):
        self.trace, self.id, self.is_array = trace, id_, is_array

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs or ufunc.nout != 1:
            raise TypeError(f"an update rule calls ufuncs plainly, got {ufunc.__name__}.{method}")
        return self.trace.emit(ufunc, inputs)

    def __bool__(self, *other):
        raise TypeError("an update rule branches on its flags only, never on array values: "
                        "use maximum, minimum or sign from gradfit.optimizers.elementwise")

    __lt__ = __le__ = __gt__ = __ge__ = __bool__

    def __add__(self, o):
        return self.trace.emit(np.add, (self, o))

    def __radd__(self, o):
        return self.trace.emit(np.add, (o, self))

    def __sub__(self, o):
        return self.trace.emit(np.subtract, (self, o))

    def __rsub__(self, o):
        return self.trace.emit(np.subtract, (o, self))

    def __mul__(self, o):
        return self.trace.emit(np.multiply, (self, o))

    def __rmul__(self, o):
        return self.trace.emit(np.multiply, (o, self))

    def __truediv__(self, o):
        return self.trace.emit(np.true_divide, (self, o))

    def __rtruediv__(self, o):
        return self.trace.emit(np.true_divide, (o, self))

    def __neg__(self):
        return self.trace.emit(np.negative, (self,))


class _Absent:
    """A state slot the optimizer does not keep (e.g. ``vmax`` without amsgrad)."""

    def __init__(self, name):
        self.name = name

    def _refuse(self, *args):
        raise TypeError(f"the update rule used state slot {self.name!r}, which this "
                        f"configuration does not keep: only a flag that is off may guard it")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __neg__ = __bool__ = __array_ufunc__ = _refuse


class _Trace:
    def __init__(self):
        self.values, self.ops = [], []      # ops: (ufunc, argument ids, result id)

    def new(self, is_array):
        v = _Value(self, len(self.values), is_array)
        self.values.append(v)
        return v

    def emit(self, ufunc, args):
        for a in args:
            if isinstance(a, _Absent):
                a._refuse()
            if not isinstance(a, _Value):
                raise TypeError(_LITERAL.format(what=a))
        out = self.new(any(a.is_array for a in args))
        self.ops.append((ufunc, tuple(a.id for a in args), out.id))
        return out


class Program:
    """``rule`` traced for one configuration, planned, and compiled to straight-line Python.

    ``slots``: the rule's state-slot names in order; ``present``: which of them the state
    keeps; ``flags``: the rule's flags, bound now; ``decoupled`` / ``coupled``: weight decay
    ``p <- p * keep`` / ``g <- g + wd * p`` before the rule.  ``run`` takes the numbers.
    """

    def __init__(self, rule, slots, present, flags, decoupled, coupled):
        t = _Trace()
        p, g = t.new(True), t.new(True)
        inputs = {0: p.id, 1: g.id}                       # storage -> the input it starts with
        state = []
        for i, (name, on) in enumerate(zip(slots, present)):
            state.append(t.new(True) if on else _Absent(name))
            if on:
                inputs[2 + i] = state[-1].id
        keep, wd = t.new(False), t.new(False)
        n_numbers = rule.__code__.co_argcount - 2 - len(slots) - len(flags)
        numbers = [t.new(False) for _ in range(n_numbers)]
        if decoupled:
            p = p * keep
        if coupled:
            g = g + wd * p
        out = rule(p, g, *state, *numbers, *flags)
        if not isinstance(out, tuple) or len(out) != 1 + len(slots):
            raise TypeError(f"rule {rule.__name__} must return (p, {', '.join(slots)}), "
                            f"a tuple of {1 + len(slots)}, got {out!r}")
        targets = [(0, out[0])] + [(2 + i, v) for i, (v, on) in enumerate(zip(out[1:], present))
                                   if on]
        plan = _Plan(t, inputs, targets, 2 + len(slots))
        self.n_scratch = plan.n_scratch
        scalars = [v.id for v in t.values if not v.is_array]
        position = {v: k for k, v in enumerate(scalars)}
        self.scalar_ops = [(ufunc, [position[a] for a in args]) for ufunc, args, out in t.ops
                           if not t.values[out].is_array]
        self._kernel = _compile(t, plan, 2 + len(slots) + plan.n_scratch, scalars)
        self._scratch, self._size, self._dtype = [], None, None

    def run(self, p, g, state, keep, wd, numbers, chunk: int):
        """Apply the rule in place: ``p`` and the state arrays (``state``: one per slot, None
        where absent) are updated, ``g`` is consumed.  ``keep``, ``wd`` and the rule's
        ``numbers`` may be Python floats: a ufunc casts them to the arrays' dtype (NEP 50), as
        numba's driver has them cast; arithmetic among them alone is done in that dtype too."""
        scalars = [keep, wd, *numbers]
        if self.scalar_ops:
            scalars = list(map(p.dtype.type, scalars))
            for ufunc, args in self.scalar_ops:
                scalars.append(ufunc(*[scalars[a] for a in args]))
        n = p.shape[0]
        if not self.n_scratch:       # nothing to keep in cache: whole arrays, fewest calls
            chunk = n
        size = min(n, chunk)
        if size != self._size or p.dtype is not self._dtype:
            self._scratch = [np.empty(size, p.dtype) for _ in range(self.n_scratch)]
            self._size, self._dtype = size, p.dtype
        if n <= chunk:
            return self._kernel(p, g, *state, *self._scratch, *scalars)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            self._kernel(p[lo:hi], g[lo:hi], *[None if a is None else a[lo:hi] for a in state],
                         *[b[:hi - lo] for b in self._scratch], *scalars)


class _Plan:
    """Where each array value of the trace lives (``where``: value id -> storage).

    Storages: 0 is ``p``, 1 is ``g``, ``2 + i`` state slot ``i`` (the targets: 0 and the
    present slots), then scratch buffers.  A storage may be written at operation ``k`` once
    the value it holds is read for the last time at or before ``k`` (an elementwise ufunc may
    write over its input).  Final values go to their own target when it is free, else to
    ``g`` or scratch and are copied at the end (``copies``); a value that is not final may go
    anywhere free, preferring an argument dying at ``k``.
    """

    def __init__(self, t, inputs, targets, n_fixed):
        last = {}
        for k, (_, args, _) in enumerate(t.ops):
            for a in args:
                last[a] = k
        final = {}                                    # value id -> its target storages
        for storage, value in targets:
            if not isinstance(value, _Value):
                raise TypeError(f"the update rule returned {value!r} for a state array: "
                                "return a value computed from the rule's arguments")
            if value.id in inputs.values() and inputs.get(storage) != value.id:
                raise TypeError("the update rule returned one of its array inputs as the new "
                                "value of another: return a slot unchanged or a computed value")
            last[value.id] = len(t.ops)               # live to the end
            final.setdefault(value.id, []).append(storage)
        self.where = {v: s for s, v in inputs.items()}
        holds = dict(inputs)                          # storage -> the value it holds now
        self.n_scratch, self.ops = 0, []

        def free(s, k):
            return holds.get(s) is None or last.get(holds[s], -1) <= k

        for k, (ufunc, args, out) in enumerate(t.ops):
            if not t.values[out].is_array:
                continue
            own = [s for s in final.get(out, ()) if free(s, k)]
            dying = [self.where[a] for a in args if t.values[a].is_array and last[a] == k
                     and holds[self.where[a]] == a
                     and (out not in final or self.where[a] == 1 or self.where[a] >= n_fixed)]
            spare = [s for s in [1, *range(n_fixed, n_fixed + self.n_scratch)] if free(s, k)]
            if own or dying or spare:
                s = (own or dying or spare)[0]
            else:
                s, self.n_scratch = n_fixed + self.n_scratch, self.n_scratch + 1
            holds[s], self.where[out] = out, s
            self.ops.append((ufunc, args, s))
        self.copies = [(s, v) for v, storages in final.items() for s in storages
                       if self.where.get(v) != s]


def _compile(t, plan, n_storage, scalars):
    """The plan as straight-line Python, one ufunc call per line::

        def kernel(s0, s1, s2, s3, s4, s5, v6, v7, ...):   # p, g, slots, scratch; scalars
            multiply(s2, v9, out=s2)
            ...
    """
    def name(v):
        return f"s{plan.where[v]}" if t.values[v].is_array else f"v{v}"
    lines = [f"    {ufunc.__name__}({', '.join(name(a) for a in args)}, out=s{s})"
             for ufunc, args, s in plan.ops]
    lines += [f"    copyto(s{s}, {name(v)})" for s, v in plan.copies]
    params = [f"s{s}" for s in range(n_storage)] + [f"v{v}" for v in scalars]
    text = f"def kernel({', '.join(params)}):\n" + "\n".join(lines or ["    pass"]) + "\n"
    namespace = {ufunc.__name__: ufunc for ufunc, _, _ in plan.ops}
    namespace["copyto"] = np.copyto
    exec(compile(text, "<gradfit numpy program>", "exec"), namespace)
    kernel = namespace["kernel"]
    kernel.source = text
    return kernel
