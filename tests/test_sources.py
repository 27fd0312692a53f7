"""Batch sources over arrays and memmaps: per-batch conversion (never a full copy), checks that
name the file row, the dispatcher, and the rule that gradfit.datasets imports nothing else."""
import ast
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import gradfit
from gradfit.datasets import (ArraySource, Conversion, DatasetError, PackedSource, PyDataset,
                              PyDatasetSource, Request, StreamSource, as_source, check_same_source)


def _req(rows, step=0, epoch=0):
    return Request(epoch, step, np.asarray(rows))


@pytest.mark.parametrize("dtype", ["uint8", "int16", ">f4", "float16", "float64", "bool"])
def test_a_memmap_of_any_numeric_dtype_converts_per_batch_exactly(tmp_path, dtype):
    rng = np.random.default_rng(0)
    x = (rng.random((500, 7)) * 200).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    y = rng.integers(0, 4, 500)
    for model_dtype in ("float32", "float64"):
        src = ArraySource(mm, y)
        src.bind(Conversion(model_dtype, num_classes=4, labels=True))
        rows = rng.permutation(500)[:64]
        xb, yb = src.fetch(_req(rows))
        # the same values as converting everything first (what fit did before): exact
        assert xb.dtype == np.dtype(model_dtype) and xb.flags.c_contiguous
        assert np.array_equal(xb, np.asarray(x, dtype=model_dtype)[rows])
        assert yb.dtype == np.int64 and np.array_equal(yb, y[rows])


def test_a_fetch_from_a_large_memmap_allocates_one_batch_not_the_file(tmp_path):
    x = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.uint8,
                                  shape=(20_000, 784))          # 15.7 MB on disk
    x[:] = 7
    x.flush()
    src = ArraySource(np.load(tmp_path / "big.npy", mmap_mode="r"))
    rows = np.random.default_rng(1).permutation(20_000)[:256]
    tracemalloc.start()
    xb, _ = src.fetch(_req(rows))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    batch_bytes = 256 * 784 * 4
    assert xb.shape == (256, 784) and (xb == 7).all()
    assert peak < 3 * batch_bytes, f"fetch allocated {peak} bytes; one float32 batch is {batch_bytes}"
    assert src.rows_read == 256


def test_non_finite_values_are_named_by_file_row_and_batch(tmp_path):
    x = np.ones((50, 3))
    x[37, 2] = np.nan
    np.save(tmp_path / "feat.npy", x)
    src = ArraySource(np.load(tmp_path / "feat.npy", mmap_mode="r"), np.zeros(50, int))
    assert src.fetch(_req([0, 1, 2]))[0].shape == (3, 3)       # batches without it train
    with pytest.raises(DatasetError, match=r"epoch 2, batch 5: feat.npy row 37, column 2: x is nan"):
        src.fetch(_req([3, 37, 4], step=4, epoch=1))


def test_float64_values_that_overflow_float32_are_refused_after_conversion():
    x = np.zeros((4, 2))
    x[2, 1] = 1e39
    src = ArraySource(x, np.zeros(4, int))
    src.bind(Conversion("float32"))
    assert np.isfinite(src.fetch(_req([0, 1]))[0]).all()
    with pytest.raises(DatasetError, match=r"data row 2, column 1: x is inf"):
        src.fetch(_req([0, 2]))
    src.bind(Conversion("float64"))
    assert src.fetch(_req([0, 2]))[0][1, 1] == 1e39


def test_labels_out_of_range_negative_or_fractional_are_named():
    src = ArraySource(np.zeros((6, 2)), np.array([0, 1, 2, 9, 1, 0]))
    src.bind(Conversion("float32", num_classes=3, labels=True))
    with pytest.raises(DatasetError, match=r"data row 3: label 9 is out of range; class labels must "
                                           r"be 0..2 \(the model has 3 outputs\)"):
        src.fetch(_req([0, 3]))
    src = ArraySource(np.zeros((3, 2)), np.array([0.0, 1.5, 1.0]))
    src.bind(Conversion("float32", labels=True))
    with pytest.raises(DatasetError, match=r"row 1: label 1.5 is not a whole number"):
        src.fetch(_req([0, 1]))
    src = ArraySource(np.zeros((3, 2)), np.array([0, -1, 1]))
    with pytest.raises(DatasetError, match=r"label -1 is out of range; class labels must be >= 0"):
        src.fetch(_req([1]))


def test_regression_targets_become_the_model_dtype_and_must_be_finite():
    y = np.array([[0.5], [np.inf], [1.0]])
    src = ArraySource(np.zeros((3, 2)), y)
    src.bind(Conversion("float64", labels=False))
    assert src.fetch(_req([0, 2]))[1].dtype == np.float64
    with pytest.raises(DatasetError, match=r"data row 1: y is inf"):
        src.fetch(_req([1]))


def test_array_source_refuses_bad_arrays_before_any_work():
    with pytest.raises(DatasetError, match=r"x is empty \(0 rows"):
        ArraySource(np.zeros((0, 3)))
    with pytest.raises(DatasetError, match="different lengths: 4 and 3"):
        ArraySource(np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(DatasetError, match="must be numeric, got dtype <U1"):
        ArraySource(np.array([["a"]]))
    with pytest.raises(ValueError, match="Conversion dtype must be a float dtype"):
        Conversion("int32")


def test_take_is_a_view_whose_errors_name_the_file_row(tmp_path):
    x = np.arange(40.0).reshape(20, 2)
    x[13, 1] = np.inf
    np.save(tmp_path / "f.npy", x)
    src = ArraySource(np.load(tmp_path / "f.npy", mmap_mode="r"), np.zeros(20, int))
    part = src.take(10, 20)
    assert isinstance(part.x, np.memmap) and np.shares_memory(part.x, src.x) and len(part) == 10
    assert np.array_equal(part.fetch(_req([0, 2]))[0], x[[10, 12]].astype(np.float32))
    with pytest.raises(DatasetError, match=r"f.npy row 13, column 1: x is inf"):
        part.fetch(_req([3]))
    with pytest.raises(ValueError, match=r"take: hi must be an integer in \[1, 20\], got 21"):
        src.take(0, 21)


def test_the_epoch_order_is_the_lecture_permutation_from_the_given_generator():
    src = ArraySource(np.zeros((100, 1)))
    a = src.epoch_order(np.random.default_rng(5))
    assert np.array_equal(a, np.random.default_rng(5).permutation(100))
    assert np.array_equal(src.epoch_order(np.random.default_rng(5), shuffle=False), np.arange(100))


class _Batches(PyDataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return np.zeros((3, 2)), np.zeros(3, int)


def test_as_source_picks_the_source_for_each_input(tmp_path):
    x, y = np.zeros((10, 4), np.float32), np.arange(10) % 2
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    gradfit.datasets.pack(x, y, tmp_path / "packed")
    assert isinstance(as_source(x, y), ArraySource)
    assert isinstance(as_source([[1.0, 2.0]], [0]), ArraySource)
    mm = as_source(tmp_path / "x.npy", tmp_path / "y.npy")
    assert isinstance(mm, ArraySource) and isinstance(mm.x, np.memmap) and mm.name == "x.npy"
    assert isinstance(as_source(str(tmp_path / "packed")), PackedSource)
    assert isinstance(as_source(_Batches()), PyDatasetSource)
    assert isinstance(as_source((b for b in [(x, y)])), StreamSource)
    src = as_source(x, y)
    assert as_source(src) is src
    with pytest.raises(ValueError, match="y must not be given when x is a _Batches"):
        as_source(_Batches(), y)
    with pytest.raises(TypeError, match="cannot train on x of type object"):
        as_source(object())
    with pytest.raises(gradfit.datasets.DatasetError, match="pack other files first"):
        (tmp_path / "d.csv").write_text("1,2\n")
        as_source(tmp_path / "d.csv")


def test_a_resume_over_other_data_is_refused_with_the_difference():
    a = ArraySource(np.zeros((10, 3), np.uint8)).describe()
    check_same_source(a, dict(a))
    check_same_source(None, a)
    b = ArraySource(np.zeros((12, 3), np.uint8)).describe()
    with pytest.raises(DatasetError, match=r"rows: backup 10, now 12"):
        check_same_source(a, b)


def _gradfit_imports(path):
    """(level, module) of every import of a gradfit module in the file at ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("gradfit")):
            found.append((node.level, node.module))
        if isinstance(node, ast.Import):
            found += [(0, a.name) for a in node.names if a.name.startswith("gradfit")]
    return found


def test_gradfit_datasets_imports_only_itself_and_the_leaf_gradfit_checks():
    """gradfit.utils re-exports PyDataset from gradfit.datasets: an import of any other gradfit
    module from gradfit.datasets could close an import cycle."""
    root = Path(gradfit.__file__).parent
    assert _gradfit_imports(root / "checks.py") == []          # a leaf: it imports no gradfit
    for path in (root / "datasets").glob("*.py"):
        for level, module in _gradfit_imports(path):
            assert level == 1 or (level == 2 and module == "checks"), \
                f"{path.name} imports {'.' * level}{module}"
