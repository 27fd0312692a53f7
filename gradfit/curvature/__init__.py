"""gradfit.curvature: exact second-order quantities of Dense networks over the flat buffer.

    net = Network(model, "mse")                       # a built model and a loss
    hv = hessian_vector_product(net, x, y, v)         # exact H v (Pearlmutter's R-operator)
    gv = gauss_newton_vector_product(net, x, y, v)    # G v = J^T H_loss J v
    H = hessian_matrix(net, x, y)                     # n x n from n products (tiny networks)
    G = gauss_newton_matrix(net, x, y)                # sum of (S_i J_i)^T (S_i J_i), row blocks
    jtj, jte, sse = residual_products(net, x, y)      # least squares: J^T J, J^T e
    check_memory("lm", n, network="784-100-10")       # refuses before allocating

Every layer's R-operator sits beside its forward/backward (``r_forward`` / ``r_backward`` in
`gradfit.layers`), every loss's Hessian beside its gradient (``hessian_vector`` /
``hessian_factor`` in `gradfit.losses`); this package drives them over a model.
"""
from .budget import ENV_VAR, InsufficientMemoryError, available_bytes, check_memory
from .hvp import (HessianVectorProducts, gauss_newton_vector_product, hessian_matrix,
                  hessian_vector_product)
from .jacobian import (examples_per_block, gauss_newton_matrix, jacobian, jacobian_block,
                       residual_products)
from .network import Network

__all__ = [
    "ENV_VAR", "HessianVectorProducts", "InsufficientMemoryError", "Network", "available_bytes",
    "check_memory", "examples_per_block", "gauss_newton_matrix", "gauss_newton_vector_product",
    "hessian_matrix", "hessian_vector_product", "jacobian", "jacobian_block", "residual_products",
]
