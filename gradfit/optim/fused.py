"""Fused optimizer steps: each optimizer's whole update in ONE multi-threaded pass.

The numpy path in ``optimizers.py`` is a sequence of ufuncs (``m *= b1; m += ...; ...``),
each a full pass over the flat buffers: about ten passes of 10 MB for Adam on the lecture's
2.5M-parameter network.  The kernels below read every element of ``params``, ``grads`` and
the state once, do the arithmetic in registers and write ``params`` and the state once,
split over threads by ``prange`` in chunks of ``CHUNK`` elements (the inner loop is a plain
contiguous loop that LLVM vectorizes).  They are the maths of ``transforms.py``, operation
for operation, in the array's dtype (the scalars are cast to it first, as numpy does for a
Python float times a float32 array), so float32 results match the numpy path to rounding
and float64 ones to ~1e-15.  ``fastmath`` stays off: it would let LLVM reassociate and
change results.

``try_step(opt, params, grads, state, lr)`` is called by ``Optimizer.update`` after
clipping and weight decay, with ``state["step"]`` still the count before this update.  It
returns False (and the numpy path runs) when numba is not installed, the arrays are not
C-contiguous 1-D float32/float64 numpy arrays of one dtype (e.g. CuPy arrays), or the
optimizer's ``_step`` is not one of the five below (a subclass that overrides it).
Threads: ``gradfit.backend.set_num_threads`` sets numba's count (``numba.set_num_threads``);
buffers under ``PARALLEL_MIN`` elements take the numpy path (False is returned): launching a
parallel region costs ~100 us, and a serial compilation of these loops does not vectorize
(measured: Adam on 9,930 float32 parameters, numpy 25 us, serial kernel 88 us; equal at 100k).

``grads`` is only read here (the numpy path overwrites it); callers must not rely on either.
"""
from __future__ import annotations

import numpy as np

CHUNK = 16384
#: below this many elements one thread does the step: waking a thread pool costs more than
#: it saves (and on a busy machine a parallel region can wait milliseconds for a thread).
PARALLEL_MIN = 1 << 17
_kernels = None  # dict: optimizer._step function -> python launcher; built on first use


def _build():
    """Compile-on-first-call numba kernels; None when numba is missing."""
    from ..backend import configure_numba
    numba = configure_numba()
    if numba is None:
        return None
    jit = numba.njit(parallel=True, fastmath=False, cache=True)
    prange = numba.prange

    # Each kernel: prange over chunks; the chunk's slices are indexed from 0 so that LLVM
    # sees unit-stride, non-negative indices and vectorizes the loop (indexing the whole
    # arrays from c * CHUNK stays scalar: 8x slower).  Loop-invariant flags are unswitched.
    @jit
    def sgd(p, g, lr, keep, wd):
        n = p.shape[0]
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            ps, gs = p[lo:hi], g[lo:hi]
            for i in range(hi - lo):
                pi = ps[i] * keep
                gi = gs[i] + wd * pi
                ps[i] = pi - gi * lr

    @jit
    def sgd_momentum(p, g, vel, lr, mu, nesterov, keep, wd):
        n = p.shape[0]
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            ps, gs, vs = p[lo:hi], g[lo:hi], vel[lo:hi]
            for i in range(hi - lo):
                pi = ps[i] * keep
                d = (gs[i] + wd * pi) * lr
                v = vs[i] * mu - d
                vs[i] = v
                if nesterov:
                    ps[i] = (pi - d) + v * mu
                else:
                    ps[i] = pi + v

    @jit
    def adagrad(p, g, acc, lr, eps, inside, keep, wd):
        n = p.shape[0]
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            ps, gs, accs = p[lo:hi], g[lo:hi], acc[lo:hi]
            for i in range(hi - lo):
                pi = ps[i] * keep
                gi = gs[i] + wd * pi
                a = accs[i] + gi * gi
                accs[i] = a
                den = np.sqrt(a + eps) if inside else np.sqrt(a) + eps
                ps[i] = pi - (gi / den) * lr

    @jit
    def rmsprop(p, g, rms, mom, mg, lr, rho, omr, eps, mu, centered, inside, keep, wd):
        n = p.shape[0]
        use_mom = mu > 0
        zero = rho * 0  # 0 in the arrays' dtype
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            ps, gs, rs = p[lo:hi], g[lo:hi], rms[lo:hi]
            us, mgs = mom[lo:hi], mg[lo:hi]  # empty when unused
            for i in range(hi - lo):
                pi = ps[i] * keep
                gi = gs[i] + wd * pi
                r = rs[i] * rho + omr * (gi * gi)
                rs[i] = r
                if centered:
                    a = mgs[i] * rho + omr * gi
                    mgs[i] = a
                    r = max(r - a * a, zero)  # rounding can make it negative: see transforms
                den = np.sqrt(r + eps) if inside else np.sqrt(r) + eps
                d = (gi / den) * lr
                if use_mom:
                    u = us[i] * mu - d
                    us[i] = u
                    ps[i] = pi + u
                else:
                    ps[i] = pi - d

    @jit
    def adadelta(p, g, ag, au, lr, rho, omr, eps, keep, wd):
        n = p.shape[0]
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            ps, gs, ags, aus = p[lo:hi], g[lo:hi], ag[lo:hi], au[lo:hi]
            for i in range(hi - lo):
                pi = ps[i] * keep
                gi = gs[i] + wd * pi
                a = ags[i] * rho + omr * (gi * gi)
                ags[i] = a
                d = (gi * np.sqrt(aus[i] + eps)) / np.sqrt(a + eps)
                aus[i] = aus[i] * rho + omr * (d * d)
                ps[i] = pi - d * lr

    @jit
    def adam(p, g, m, v, vmax, lr, b1, omb1, b2, omb2, inv_bc1, inv_bc2, eps, amsgrad, inside,
             keep, wd):
        n = p.shape[0]
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            ps, gs, ms, vs, xs = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], vmax[lo:hi]
            for i in range(hi - lo):
                pi = ps[i] * keep
                gi = gs[i] + wd * pi
                mi = ms[i] * b1 + omb1 * gi
                ms[i] = mi
                vi = vs[i] * b2 + omb2 * (gi * gi)
                vs[i] = vi
                if amsgrad:
                    vi = max(xs[i], vi)
                    xs[i] = vi
                s = vi * inv_bc2
                den = np.sqrt(s + eps) if inside else np.sqrt(s) + eps
                ps[i] = pi - ((mi / den) * inv_bc1) * lr

    return {"sgd": sgd, "sgd_momentum": sgd_momentum, "adagrad": adagrad,
            "rmsprop": rmsprop, "adadelta": adadelta, "adam": adam}


def _launchers(k):
    """Map each optimizer class's ``_step`` to a function launching its kernel."""
    from . import optimizers as O

    def sgd(opt, p, g, s, lr, f, keep, wd):
        if opt.momentum > 0:
            k["sgd_momentum"](p, g, s["velocity"], f(lr), f(opt.momentum), opt.nesterov, keep, wd)
        else:
            k["sgd"](p, g, f(lr), keep, wd)

    def adagrad(opt, p, g, s, lr, f, keep, wd):
        k["adagrad"](p, g, s["accumulator"], f(lr), f(opt.epsilon), opt.epsilon_inside_sqrt,
                     keep, wd)

    def rmsprop(opt, p, g, s, lr, f, keep, wd):
        mom = s["momentum"] if opt.momentum > 0 else p[:0]
        mg = s["mean_grad"] if opt.centered else p[:0]
        k["rmsprop"](p, g, s["rms"], mom, mg, f(lr), f(opt.rho), f(1.0 - opt.rho),
                     f(opt.epsilon), f(opt.momentum), opt.centered, opt.epsilon_inside_sqrt,
                     keep, wd)

    def adadelta(opt, p, g, s, lr, f, keep, wd):
        k["adadelta"](p, g, s["accum_grad"], s["accum_update"], f(lr), f(opt.rho),
                      f(1.0 - opt.rho), f(opt.epsilon), keep, wd)

    def adam(opt, p, g, s, lr, f, keep, wd):
        t = s["step"] + 1
        vmax = s["vmax"] if opt.amsgrad else p[:0]
        k["adam"](p, g, s["m"], s["v"], vmax, f(lr), f(opt.beta_1), f(1.0 - opt.beta_1),
                  f(opt.beta_2), f(1.0 - opt.beta_2), f(1.0 / (1.0 - opt.beta_1 ** t)),
                  f(1.0 / (1.0 - opt.beta_2 ** t)), f(opt.epsilon), opt.amsgrad,
                  opt.epsilon_inside_sqrt, keep, wd)

    return {O.SGD._step: sgd, O.Adagrad._step: adagrad, O.RMSprop._step: rmsprop,
            O.Adadelta._step: adadelta, O.Adam._step: adam}


def available() -> bool:
    """True when numba is importable (the kernels can be compiled)."""
    global _kernels
    if _kernels is None:
        k = _build()
        _kernels = {} if k is None else _launchers(k)
    return bool(_kernels)


def _fusable(params, grads, state) -> bool:
    arrays = [params, grads] + [a for key, a in state.items() if key != "step"]
    dtype = params.dtype if isinstance(params, np.ndarray) else None
    if dtype not in (np.float32, np.float64):
        return False
    return all(isinstance(a, np.ndarray) and a.dtype == dtype and a.ndim == 1
               and a.shape == params.shape and a.flags.c_contiguous for a in arrays)


def try_step(opt, params, grads, state, lr, decay: bool = False) -> bool:
    """Do ``opt``'s update of ``params`` and ``state`` in one fused pass; False if it can't.

    ``state["step"]`` is the count before this update.  ``decay=True`` also applies
    ``opt.weight_decay`` (coupled L2, or decoupled for AdamW) inside the same pass, for a
    caller that has not applied it already; ``Optimizer.update`` applies it itself and
    calls with ``decay=False``.
    """
    if params.shape[0] < PARALLEL_MIN or not available() or not _fusable(params, grads, state):
        return False
    launch = _kernels.get(getattr(type(opt), "_step", None))
    if launch is None:
        return False
    f = params.dtype.type
    keep, wd = f(1.0), f(0.0)
    if decay and opt.weight_decay:
        if getattr(opt, "_decoupled_decay", False):
            keep = f(1.0 - lr * opt.weight_decay)
        else:
            wd = f(opt.weight_decay)
    launch(opt, params, grads, state, float(lr), f, keep, wd)
    return True
