"""gradfit.memory: the arithmetic of the lecture's slide, checked by hand."""
import argparse

import numpy as np
import pytest

from gradfit.commands.memory import add_arguments, run
from gradfit.memory import format_memory_report, human_bytes, memory_report

LECTURE = [100, 500, 1000, 2000, 1]


def test_lecture_network_parameters_and_hessian():
    r = memory_report(LECTURE)
    assert r["parameters"] == 100 * 500 + 500 + 500 * 1000 + 1000 + 1000 * 2000 + 2000 + 2000 + 1
    assert r["parameters"] == 2_555_501
    assert r["hessian"]["bytes_float64"] == 2_555_501 ** 2 * 8
    assert human_bytes(r["hessian"]["bytes_float64"]) == "52.2 TB"
    assert "2,555,501^2 x 8 B" in r["hessian"]["arithmetic"]
    assert r["hessian"]["arithmetic"].endswith("52.2 TB")


def test_state_gradients_and_activations_per_dtype():
    r = memory_report([3, 4, 2], batch_sizes=(5,), dtype="float64")
    p = 3 * 4 + 4 + 4 * 2 + 2
    assert r["parameters"] == p and r["parameter_bytes"] == 8 * p == r["gradient_bytes"]
    st = r["optimizer_state"]
    assert st["sgd"]["bytes"] == 0
    assert st["sgd (momentum / nesterov)"]["bytes"] == 8 * p
    assert st["adagrad"]["arrays"] == 1 and st["adadelta"]["arrays"] == 2
    assert st["adam / adamw"]["bytes"] == 2 * 8 * p and st["adam (amsgrad)"]["arrays"] == 3
    assert [st[k]["arrays"] for k in st if k.startswith("rmsprop")] == [1, 2, 3]
    (a,) = r["activations"]
    assert a["values"] == 5 * (3 + 4 + 2) and a["bytes"] == 8 * 5 * 9
    assert a["peak_bytes"] == 8 * (5 * 9 + 2 * 5 * 4)
    assert memory_report([3, 4, 2])["parameter_bytes"] == 4 * p


def test_human_bytes_units():
    assert human_bytes(999) == "999 B"
    assert human_bytes(1500) == "1.5 kB"
    assert human_bytes(10_222_004) == "10.2 MB"
    assert human_bytes(3.2e9) == "3.2 GB"


def test_table_and_cli(capsys):
    text = format_memory_report(LECTURE)
    assert "2,555,501" in text and "52.2 TB" in text and "1024" in text
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["100", "500", "1000", "2000", "1", "--batch-sizes", "8"])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "52.2 TB" in out and "adam (amsgrad)" in out


@pytest.mark.parametrize("sizes", [[100], [100, 0, 1], "abc", [1.5, 2]])
def test_bad_layer_sizes(sizes):
    with pytest.raises((ValueError, TypeError), match="layer_sizes"):
        memory_report(sizes)


def test_bad_dtype_and_batch():
    with pytest.raises(ValueError, match="int32"):
        memory_report(LECTURE, dtype="int32")
    with pytest.raises(ValueError, match="batch_sizes"):
        memory_report(LECTURE, batch_sizes=(0,))


def test_second_order_bytes_of_the_lecture_networks():
    from gradfit.memory import JACOBIAN_BLOCK_BYTES, method_bytes, second_order_report
    n = 784 * 100 + 100 + 100 * 10 + 10
    assert n == 79_510
    lm = method_bytes("lm", n, examples=60_000, outputs=10)
    assert lm["matrix_bytes"] == n * n * 8 and human_bytes(lm["matrix_bytes"]) == "50.6 GB"
    assert lm["jacobian_bytes"] == 60_000 * 10 * n * 8               # 381.6 GB formed at once
    assert lm["peak_bytes"] == 2 * n * n * 8 + JACOBIAN_BLOCK_BYTES   # summed in row blocks
    assert method_bytes("bfgs", n)["peak_bytes"] == n * n * 8         # updated in place
    assert method_bytes("newton", 2_555_501)["matrix_bytes"] == memory_report(LECTURE)["hessian"]["bytes_float64"]
    assert method_bytes("lbfgs", n, history=5)["matrix_bytes"] == 2 * 5 * n * 8
    assert method_bytes("adam", n)["matrix_bytes"] == 2 * n * 8
    tiny = method_bytes("gauss_newton", 10, examples=3, outputs=1)
    assert tiny["peak_bytes"] == 100 * 8 + 3 * 10 * 8   # J^T J factorised in place; J one block
    assert [r["method"] for r in second_order_report(n)] == [
        "newton", "gauss_newton", "lm", "bfgs", "lbfgs", "newton_cg", "adam"]
    with pytest.raises(ValueError, match="unknown method 'sgd'"):
        method_bytes("sgd", n)


def test_cli_prints_second_order_methods(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["784", "100", "10", "--examples", "60000", "--history", "20"])) == 0
    out = capsys.readouterr().out
    assert "J\u1d40J of 79,510\u00b2 float64" in out and "50.6 GB" in out and "381.6 GB" in out
    assert "a history of 2 x 20 x 79,510 float64" in out


def test_measure_peak_sees_an_array_while_it_lives():
    from gradfit.memory import measure_peak

    def touch():
        a = np.ones(6_000_000)          # 48 MB, every page written
        return float(a[-1])
    peak, how = measure_peak(touch)
    assert how in ("peak RSS", "tracemalloc")
    assert 45e6 <= peak < 60e6, f"{peak:,} bytes by {how}"   # RSS: pages, give or take
    again, _ = measure_peak(lambda: None)    # reset: the 48 MB are not counted again
    assert again < 8e6
