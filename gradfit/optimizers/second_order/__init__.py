"""Second-order and quasi-Newton methods over the flat float64 weights, one iteration at a time.

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

The interface (init / iterate / state) is in base.py, the objective in objective.py.
"""
from .base import Hyper, SecondOrderError, SecondOrderMethod, check_full_batch
from .bfgs import BFGS
from .gauss_newton import GaussNewton
from .lbfgs import LBFGS
from .lm import LevenbergMarquardt
from .newton import Newton
from .newton_cg import NewtonCG
from .objective import Objective

METHODS = {cls.name: cls for cls in (LevenbergMarquardt, GaussNewton, Newton, NewtonCG, BFGS,
                                     LBFGS)}


def get(identifier, **kwargs) -> SecondOrderMethod:
    """A method from its name (with hyperparameters as keyword arguments), its config dict
    (``get_config()``'s form), or an instance (returned as is)."""
    if isinstance(identifier, SecondOrderMethod):
        return identifier
    if isinstance(identifier, dict):
        config = dict(identifier)
        identifier = config.pop("name", None)
        kwargs = {**config, **kwargs}
    if identifier not in METHODS:
        raise SecondOrderError(f"unknown second-order method {identifier!r}; valid: "
                               f"{', '.join(sorted(METHODS))}")
    return METHODS[identifier](**kwargs)


__all__ = ["BFGS", "GaussNewton", "Hyper", "LBFGS", "LevenbergMarquardt", "METHODS", "Newton",
           "NewtonCG", "Objective", "SecondOrderError", "SecondOrderMethod", "check_full_batch",
           "get"]
