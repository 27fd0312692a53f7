"""Second-order and quasi-Newton methods over the flat float64 weights, one iteration at a time.

    model.compile(optimizer="lm", loss="mse")           # through compile / fit (one epoch =
    model.fit(x, y, epochs=100)                         # one full-batch iteration), or by hand:

    objective = Objective(model, x, y)                  # full batch; MPI: this rank's rows
    method = get("lm")                                  # or LevenbergMarquardt(mu=1e-2), ...
    state = method.init(model.params, network=objective.describe())
    for epoch in range(100):
        loss, info = method.iterate(objective, model.params, state)
        if info["stop"]:
            break

| name           | method                                   | memory      | file             |
|----------------|------------------------------------------|-------------|------------------|
| "lm"           | Levenberg-Marquardt, MATLAB trainlm      | J^T J (n^2) | lm.py            |
| "gauss_newton" | Gauss-Newton + line search               | J^T J (n^2) | gauss_newton.py  |
| "newton"       | Newton, exact Hessian, shifted if not PD | H (n^2)     | newton.py        |
| "newton_cg"    | Newton-CG with exact H v (SciPy's rules) | O(n)        | newton_cg.py     |
| "bfgs"         | BFGS (SciPy's rules)                     | H^-1 (n^2)  | bfgs.py          |
| "lbfgs"        | L-BFGS (SciPy L-BFGS-B's rules)          | 2 m n       | lbfgs.py         |

The interface (init / iterate / state) is in base.py, the objective in objective.py; how
``fit`` and ``train_on_batch`` drive a method is in `gradfit.train.second_order`.
``gradfit.optimizers.get("lm")`` and ``serialize`` / ``deserialize`` know these names too.
"""
from .base import SecondOrderError, SecondOrderMethod, check_full_batch
from .bfgs import BFGS
from .gauss_newton import GaussNewton
from .lbfgs import LBFGS
from .lm import LevenbergMarquardt
from .newton import Newton
from .newton_cg import NewtonCG
from .objective import Objective

METHODS = {cls.name: cls for cls in (LevenbergMarquardt, GaussNewton, Newton, NewtonCG, BFGS,
                                     LBFGS)}


#: class name -> class (``serialize``'s ``class_name``)
CLASSES = {cls.__name__: cls for cls in METHODS.values()}


def get(identifier, **kwargs) -> SecondOrderMethod:
    """A method from its name (with hyperparameters as keyword arguments), its serialized
    form ``{"class_name": "LevenbergMarquardt", "config": {...}}``, or an instance (returned
    as is)."""
    if isinstance(identifier, SecondOrderMethod):
        return identifier
    if isinstance(identifier, dict):
        cls = CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise SecondOrderError(f"unknown second-order method class "
                                   f"{identifier.get('class_name')!r}; valid: {', '.join(CLASSES)}")
        return cls.from_config({**identifier.get("config", {}), **kwargs})
    if identifier not in METHODS:
        raise SecondOrderError(f"unknown second-order method {identifier!r}; valid: "
                               f"{', '.join(sorted(METHODS))}")
    return METHODS[identifier](**kwargs)


__all__ = ["BFGS", "CLASSES", "GaussNewton", "LBFGS", "LevenbergMarquardt", "METHODS", "Newton",
           "NewtonCG", "Objective", "SecondOrderError", "SecondOrderMethod", "check_full_batch",
           "get"]
