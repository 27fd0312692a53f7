"""Second-order methods under a real ``mpiexec -n 2`` / ``-n 3`` against one process: the
full-batch objective's loss, gradient, J^T J, H v and Hessian are sums over examples, each
Allreduced once per evaluation, so every rank takes the steps of one process holding all rows
(float64: within 1e-10, only the summation order differs); the same through ``fit``, whose
ranks take uneven shares of 61 examples."""
import sys

import numpy as np
import pytest

from test_mpi_fit import SCRIPTS, job, need_mpi, relerr

pytestmark = pytest.mark.mpi
METHODS = ("lm", "lbfgs", "newton_cg", "newton")
FIT = ("lm", "lbfgs", "newton_cg", "bfgs")


def _run(n, tmp_path):
    code, text = job(n, [sys.executable, SCRIPTS / "second_order.py", tmp_path])
    assert code == 0, f"{n or 1} process(es) failed (status {code}):\n{text}"
    return [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(max(n, 1))]


@pytest.mark.parametrize("n", [2, 3])
def test_ranks_take_the_steps_of_one_process(n, tmp_path_factory):
    need_mpi()
    (one,) = _run(0, tmp_path_factory.mktemp("one"))
    ranks = _run(n, tmp_path_factory.mktemp(f"n{n}"))
    for name in METHODS:
        assert relerr(one["start"], one[name]) > 1e-3, f"test set-up: {name} took no step"
        assert relerr(one[name], ranks[0][name]) <= 1e-10, name
        assert relerr(one[name + "_losses"], ranks[0][name + "_losses"]) <= 1e-10, name
        for r in range(1, n):   # every rank ends with the same weights, bit for bit
            assert np.array_equal(ranks[0][name], ranks[r][name]), (name, r)
    for name in FIT:
        key = "fit_" + name
        assert relerr(one["start"], one[key]) > 1e-3, f"test set-up: {name} took no step"
        assert relerr(one[key], ranks[0][key]) <= 1e-10, key
        assert relerr(one[key + "_losses"], ranks[0][key + "_losses"]) <= 1e-10, key
        for r in range(1, n):
            assert np.array_equal(ranks[0][key], ranks[r][key]), (key, r)
