"""The packed on-disk format: round trips from every input kind, atomic and verified writes,
the block shuffle, and each kind of damage reported by shard and row."""
import gzip
import json
import os
import pickle

import numpy as np
import pytest

from gradfit.datasets import (Conversion, DatasetError, Request, block_order, pack,
                              pack_chunks, pack_file, read_index)
from gradfit.datasets import open as open_packed
from gradfit.datasets import packed as packed_module
from gradfit.datasets import preads
from gradfit.datasets.idx import write_idx
from gradfit.datasets.shuffle import block_runs, chunks, stratified_permutation


def _images(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 6, 5), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def _all_rows(src, order=None):
    order = np.arange(len(src)) if order is None else order
    return src.fetch(Request(0, 0, order))


@pytest.fixture(params=["compiled", "python"])
def reads(request, monkeypatch):
    """Each reading test runs twice: rows read by the compiled loop (`preads`, numba is in the
    test extra, so it must build) and by the Python loop alone (numba absent)."""
    if request.param == "compiled":
        assert preads._compiled(), "the compiled read loop did not build"
    else:
        monkeypatch.setattr(preads, "_kernel", False)
    return request.param


@pytest.fixture
def packed(tmp_path):
    x, y = _images()
    pack(x, y, tmp_path / "p", shard_rows=130)
    return tmp_path / "p", x, y


def test_pack_then_open_gives_back_every_row_in_any_order(packed, reads, monkeypatch):
    folder, x, y = packed
    compiled = []                  # runs read by the compiled loop, per batch

    def counted(*args):
        compiled.append(preads.read_runs(*args))
        return compiled[-1]
    monkeypatch.setattr(packed_module, "read_runs", counted)
    index = read_index(folder)
    assert index["rows"] == 1000 and [s["rows"] for s in index["shards"]] == [130] * 7 + [90]
    assert index["x"] == {"shape": [6, 5], "dtype": "|u1"} and index["num_classes"] == 10
    assert index["record_bytes"] == 31
    src = open_packed(folder)
    order = np.random.default_rng(2).permutation(1000)
    xs, ys = _all_rows(src, order)
    assert np.array_equal(xs, x[order].astype(np.float32)) and np.array_equal(ys, y[order])
    rows = np.array([5, 5, 999, 0, 129, 130, 131])          # repeats, shard edges
    xs, ys = src.fetch(Request(0, 0, rows))
    assert np.array_equal(xs, x[rows].astype(np.float32)) and np.array_equal(ys, y[rows])
    assert src.rows_read == 1007
    # all 1000 rows, sorted: one run per shard (8); the 7 rows: 0 | 5 | 5 | 129 | 130-131 | 999
    assert compiled == ([8, 6] if reads == "compiled" else [0, 0])
    # every shard is an ordinary .npy of fixed-size records
    shard = np.load(folder / "shard-00001.npy", mmap_mode="r")
    assert np.array_equal(shard["x"], x[130:260]) and np.array_equal(shard["y"], y[130:260])


def test_an_iterator_of_uneven_chunks_packs_like_the_arrays(tmp_path):
    x = np.random.default_rng(0).random((777, 4)).astype(np.float32)
    y = np.arange(777) % 3
    sizes = [1, 300, 50, 426]
    bounds = np.cumsum([0] + sizes)
    chunks = ((x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
    calls = []
    index = pack_chunks(chunks, tmp_path / "it", shard_bytes=100 * 24,
                        progress=lambda done, total: calls.append((done, total)))
    assert [s["rows"] for s in index["shards"]] == [100] * 7 + [77]
    assert calls == [(1, None), (301, None), (351, None), (777, None)]
    xs, ys = _all_rows(open_packed(tmp_path / "it"))
    assert np.array_equal(xs, x) and np.array_equal(ys, y) and index["num_classes"] == 3
    unlabeled = pack_chunks(iter([x[:10], x[10:20]]), tmp_path / "nolabels")
    assert unlabeled["y"] is None and unlabeled["num_classes"] is None
    assert _all_rows(open_packed(tmp_path / "nolabels"))[1] is None


def test_pack_file_reads_npz_csv_idx_npy_and_a_folder(tmp_path):
    x, y = _images(300)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez(tmp_path / "keras.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    (tmp_path / "images-idx3-ubyte.gz").write_bytes(gzip.compress(write_idx(x)))
    (tmp_path / "labels-idx1-ubyte").write_bytes(write_idx(y))
    (tmp_path / "folder").mkdir()
    np.save(tmp_path / "folder" / "x.npy", x)
    np.save(tmp_path / "folder" / "y.npy", y)
    np.save(tmp_path / "feat.npy", x)
    np.save(tmp_path / "lab.npy", y)
    for src, kw in [("a.npz", {}), ("keras.npz", {}), ("folder", {}),
                    ("images-idx3-ubyte.gz", {"labels": tmp_path / "labels-idx1-ubyte"}),
                    ("feat.npy", {"labels": tmp_path / "lab.npy"})]:
        out = tmp_path / f"out-{src}"
        pack_file(tmp_path / src, out, shard_rows=100, **kw)
        xs, ys = _all_rows(open_packed(out))
        assert np.array_equal(xs, x.astype(np.float32)) and np.array_equal(ys, y), src
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,1\n")
    pack_file(tmp_path / "t.csv", tmp_path / "csv", label_column="label")
    xs, ys = _all_rows(open_packed(tmp_path / "csv"))
    assert np.array_equal(xs, [[1, 2], [3, 4], [5, 6]]) and np.array_equal(ys, [0, 1, 1])


@pytest.mark.parametrize("chunks, message", [
    ([(np.zeros((5, 3)), np.zeros(5, int)), (np.zeros((5, 4)), np.zeros(5, int))],
     r"chunk 1 \(rows 5..\): rows of shape \(4,\) float64, the first chunk had \(3,\) float64"),
    ([(np.full((5, 3), np.nan), np.zeros(5, int))], r"chunk 0 .*: x\[0, 0\] = nan"),
    ([(np.zeros((5, 3)), np.array([0, 1, -2, 0, 0]))], r"label -2 is negative"),
    ([(np.zeros((5, 3)), np.arange(5))], r"label 4 is out of range for num_classes=3"),
    ([(np.zeros((5, 3)), np.zeros(5, int)), np.zeros((5, 3))], r"chunks must all have targets or all have none"),
    ([], r"nothing to pack \(0 rows\)"),
])
def test_bad_chunks_stop_the_pack_and_leave_nothing_behind(tmp_path, chunks, message):
    with pytest.raises(DatasetError, match=message):
        pack_chunks(iter(chunks), tmp_path / "out", shard_rows=3, num_classes=3)
    assert os.listdir(tmp_path) == []                    # no output, no temporary folder


def test_an_existing_output_is_replaced_only_when_asked_and_only_after_the_new_data_verify(packed, tmp_path):
    folder, x, y = packed
    with pytest.raises(DatasetError, match="already exists; replace it with overwrite"):
        pack(x, y, folder)

    def failing():
        yield x[:10], y[:10]
        raise RuntimeError("the source broke")
    with pytest.raises(RuntimeError, match="the source broke"):
        pack_chunks(failing(), folder, overwrite=True)
    assert read_index(folder)["rows"] == 1000            # the old data are intact
    pack(x[:10], y[:10], folder, overwrite=True)
    assert read_index(folder)["rows"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    (tmp_path / "notpacked").mkdir()
    (tmp_path / "notpacked" / "precious.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="is not a packed data directory; it will not be replaced"):
        pack(x, y, tmp_path / "notpacked", overwrite=True)


# ---------------------------------------------------------------------------- damage
def test_a_checksum_mismatch_names_the_shard(packed):
    folder, _, _ = packed
    path = folder / "shard-00003.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"shard-00003.npy: SHA-256 .* does not match the index"):
        open_packed(folder)
    src = open_packed(folder, verify=False)              # sizes and headers still pass
    src.verify(part=(0, 2))                              # rank 0 of 2 hashes shards 0, 2, 4, 6
    with pytest.raises(DatasetError, match="shard-00003.npy: SHA-256"):
        src.verify(part=(1, 2))


def test_a_truncated_or_missing_shard_is_refused_at_open(packed):
    folder, _, _ = packed
    path = folder / "shard-00002.npy"
    path.write_bytes(path.read_bytes()[:-31])
    with pytest.raises(DatasetError, match=r"shard-00002.npy has 4127 bytes, the index says 4158: "
                                           r"the shard is truncated"):
        open_packed(folder)
    path.unlink()
    with pytest.raises(DatasetError, match=r"shard-00002.npy is missing: the index lists 8 shards"):
        open_packed(folder)


def test_a_shard_with_the_wrong_row_width_or_dtype_is_refused(packed):
    folder, x, y = packed
    # same byte count, other record layout: 6x5 uint8 + uint8 label -> 31 bytes of int8 x
    wrong = np.zeros(130, dtype=[("x", "i1", (31,))])
    path = folder / "shard-00000.npy"
    np.save(path, wrong)
    entry = read_index(folder)["shards"][0]
    assert path.stat().st_size == entry["bytes"]
    with pytest.raises(DatasetError, match=r"shard-00000.npy holds rows of dtype .* wrong row width or dtype"):
        open_packed(folder, verify=False)


def test_a_corrupt_or_foreign_index_is_refused(packed, tmp_path):
    folder, _, _ = packed
    index = json.loads((folder / "index.json").read_text())
    (folder / "index.json").write_text("{not json")
    with pytest.raises(DatasetError, match="index.json: not valid JSON"):
        open_packed(folder)
    (folder / "index.json").write_text(json.dumps({**index, "version": 99}))
    with pytest.raises(DatasetError, match="packed format version 99"):
        open_packed(folder)
    (folder / "index.json").write_text(json.dumps({**index, "rows": 5}))
    with pytest.raises(DatasetError, match="the shards hold 1000 rows, the index says 5"):
        open_packed(folder)
    with pytest.raises(DatasetError, match="is not a packed data directory"):
        open_packed(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_packed(tmp_path / "nowhere")


def test_a_shard_changed_while_training_stops_the_next_read_with_its_name(packed, reads):
    folder, _, _ = packed
    src = open_packed(folder)
    src.fetch(Request(0, 0, np.arange(0, 300)))           # shards 0-2 are open now
    path = folder / "shard-00001.npy"
    with open(path, "r+b") as f:                          # truncated in place, as by a copy
        f.truncate(200)
    with pytest.raises(DatasetError, match=r"^epoch 3, batch 8: .*shard-00001.npy changed while "
                                           r"training \(size 4158 -> 200\)"):
        src.fetch(Request(2, 7, np.array([10, 140])))
    with pytest.raises(DatasetError, match="^before the epoch: .*shard-00001.npy changed while training"):
        src.check_unchanged()


def test_a_shard_replaced_or_an_index_rewritten_is_caught_at_the_epoch_start(packed):
    folder, x, y = packed
    src = open_packed(folder)
    src.check_unchanged()
    tmp = folder / "new.npy"
    tmp.write_bytes((folder / "shard-00004.npy").read_bytes())
    os.replace(tmp, folder / "shard-00004.npy")           # same bytes, another file
    with pytest.raises(DatasetError, match="shard-00004.npy changed while training"):
        src.check_unchanged()
    src = open_packed(folder)
    (folder / "index.json").write_text((folder / "index.json").read_text() + " ")
    with pytest.raises(DatasetError, match="index.json changed while training"):
        src.check_unchanged()


def test_a_short_read_names_the_shard_and_row(packed, reads, monkeypatch):
    folder, _, _ = packed
    src = open_packed(folder)
    path = folder / "shard-00005.npy"
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 31 * 40)
    src._stats[5] = packed_module._signature(os.stat(path))   # the race: changed after the check
    with pytest.raises(DatasetError, match=r"epoch 1, batch 1: .*shard-00005.npy ends at row 90 of "
                                           r"its 130: the shard was truncated while training"):
        src.fetch(Request(0, 0, np.arange(650, 780)))


def test_rows_out_of_range_and_labels_out_of_the_model_range_are_named(packed):
    folder, _, y = packed
    src = open_packed(folder)
    with pytest.raises(DatasetError, match="row 1000 is out of range for 1000 packed rows"):
        src.fetch(Request(0, 0, np.array([1, 1000])))
    src.bind(Conversion("float32", num_classes=5, labels=True))
    bad = int(np.flatnonzero(y >= 5)[0])
    shard, row = divmod(bad, 130)
    with pytest.raises(DatasetError, match=rf"data row {bad} \(shard-0000{shard}.npy, row {row}\): "
                                           rf"label {y[bad]} is out of range"):
        src.fetch(Request(0, 0, np.array([bad])))


def test_a_packed_source_travels_to_another_process_without_its_files(packed, monkeypatch):
    folder, x, _ = packed
    monkeypatch.setattr(packed_module, "_MAX_OPEN", 3)
    src = open_packed(folder)
    order = np.random.default_rng(0).permutation(1000)
    xs, _ = _all_rows(src, order)
    assert np.array_equal(xs, x[order].astype(np.float32)) and len(src._fds) <= 3
    copy = pickle.loads(pickle.dumps(src))
    assert len(copy._fds) == 0
    assert np.array_equal(_all_rows(copy, order)[0], xs)
    src.close()
    assert len(src._fds) == 0


def test_threads_reading_many_shards_through_few_descriptors_get_the_right_rows(tmp_path, monkeypatch, reads):
    from gradfit.datasets import Prefetcher
    x, y = _images(2000)
    pack(x, y, tmp_path / "p", shard_rows=50)                  # 40 shards
    monkeypatch.setattr(packed_module, "_MAX_OPEN", 3)        # evictions all the time
    src = open_packed(tmp_path / "p")
    order = np.random.default_rng(0).permutation(2000)
    reqs = [Request(0, k, order[k * 40:(k + 1) * 40]) for k in range(50)]
    with Prefetcher(src.fetch, reqs, workers=4, depth=8) as feed:
        for req, (xb, yb) in feed:
            assert np.array_equal(xb, x[req.key].astype(np.float32)), req.step
    assert src.rows_read == 2000 and len(src._fds) <= 3 + 4


def test_the_compiled_loop_reads_whole_runs_and_stops_at_the_first_short_one(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(100)))
    fd = os.open(path, os.O_RDONLY)
    try:
        out = np.zeros(40, dtype=np.uint8)
        offsets, starts, stops = (np.array(v, dtype=np.int64) for v in
                                  ([90, 0, 95, 10], [0, 2, 4, 6], [2, 4, 6, 8]))
        fds = np.full(4, fd, dtype=np.int64)
        # runs of 2 rows of 5 bytes: the third (bytes 95..104) runs past the end of the file
        assert preads.read_runs(fds, out, offsets, starts, stops, 5) == 2
        assert out[:20].tolist() == list(range(90, 100)) + list(range(10))
        assert preads.read_runs(fds[:0], out, offsets[:0], starts[:0], stops[:0], 5) == 0
        assert preads.read_runs(np.full(1, -1, dtype=np.int64), out, offsets[:1], starts[:1],
                                stops[:1], 5) == 0          # a failing read is short too
    finally:
        os.close(fd)


def test_take_serves_a_range_of_rows_without_a_copy(packed):
    folder, x, y = packed
    src = open_packed(folder)
    part = src.take(900, 1000)                                  # validation_split=0.1
    assert len(part) == 100 and len(src) == 1000
    xs, ys = part.fetch(Request(0, 0, np.array([99, 0, 5])))
    assert np.array_equal(xs, x[[999, 900, 905]].astype(np.float32)) and np.array_equal(ys, y[[999, 900, 905]])
    assert part.describe()["range"] == [900, 1000] and "range" not in src.describe()
    head = src.take(0, 900).take(100, 300)                      # rows 100..299
    assert np.array_equal(head.fetch(Request(0, 0, np.arange(200)))[0], x[100:300].astype(np.float32))
    part.bind(Conversion("float32", num_classes=1, labels=True))   # every label > 0 is bad
    j = int(np.flatnonzero(y[900:] > 0)[0])                          # errors name the file row
    with pytest.raises(DatasetError, match=rf"data row {900 + j} \(shard-00006.npy, row "
                                           rf"{900 + j - 780}\): label {y[900 + j]}"):
        part.fetch(Request(0, 0, np.array([j])))
    block = open_packed(folder, order="block", block_rows=50, chunk_rows=10).take(95, 395)
    order = block.epoch_order(np.random.default_rng(0))
    assert np.array_equal(np.sort(order), np.arange(300))
    with pytest.raises(ValueError, match=r"take: hi must be an integer in \[6, 1000\], got 5"):
        src.take(5, 5)


# ---------------------------------------------------------------------------- block shuffle
def test_the_block_shuffle_is_a_permutation_read_through_a_bounded_window():
    sizes = [100] * 20
    order = block_order(sizes, 300, np.random.default_rng(0), chunk_rows=25)
    assert np.array_equal(np.sort(order), np.arange(2000))
    # a block of 300 rows reads at most 300/25 + 1 runs of consecutive rows; a full
    # permutation's block reads ~300 separate places
    assert block_runs(order, 300) <= 13
    assert block_runs(np.random.default_rng(0).permutation(2000), 300) > 250
    # chunks come from every shard: a block is a sample of the whole data, not of a few shards
    shard_of_row = np.repeat(np.arange(20), 100)
    assert min(len(np.unique(shard_of_row[order[lo:lo + 300]])) for lo in range(0, 2000, 300)) >= 5
    # whole shards as chunks (Mosaic's py1b): a block touches at most 4 shards
    py1b = block_order(sizes, 300, np.random.default_rng(0))
    assert max(len(np.unique(shard_of_row[py1b[lo:lo + 300]])) for lo in range(0, 2000, 300)) <= 4
    again = block_order(sizes, 300, np.random.default_rng(0), chunk_rows=25)
    assert np.array_equal(order, again)                      # the same generator state, the same order
    assert not np.array_equal(order, block_order(sizes, 300, np.random.default_rng(1), chunk_rows=25))
    with pytest.raises(ValueError, match="block_rows must be an integer >= 1, got 0"):
        block_order(sizes, 0, np.random.default_rng(0))


def test_every_block_samples_the_whole_file_evenly():
    p = stratified_permutation(103, 10, np.random.default_rng(0))
    assert np.array_equal(np.sort(p), np.arange(103))
    slice_of = np.searchsorted(np.linspace(0, 103, 11).astype(int), np.arange(103), side="right") - 1
    for lo in range(0, 90, 10):                    # every full run: one item of each slice
        assert sorted(slice_of[p[lo:lo + 10]]) == list(range(10))
    # MNIST-like data sorted by label: each block of a tenth of the data holds every label
    # equally often (the py1b draw of whole shards: a few labels per block)
    labels = np.repeat(np.arange(10), 600)
    order = block_order([100] * 60, 600, np.random.default_rng(1), chunk_rows=10)
    for lo in range(0, 6000, 600):
        assert (np.bincount(labels[order[lo:lo + 600]], minlength=10) == 60).all()
    py1b = block_order([100] * 60, 600, np.random.default_rng(1))
    assert max(np.count_nonzero(np.bincount(labels[py1b[lo:lo + 600]], minlength=10))
               for lo in range(0, 6000, 600)) <= 6


def test_chunks_never_span_two_shards():
    starts, lengths = chunks([5, 0, 17, 3], 4)
    # shard 0: rows 0-4, shard 1: none, shard 2: rows 5-21, shard 3: rows 22-24
    assert starts.tolist() == [0, 4, 5, 9, 13, 17, 21, 22]
    assert lengths.tolist() == [4, 1, 4, 4, 4, 4, 1, 3]
    uneven = block_order([5, 0, 17, 3], 4, np.random.default_rng(2), chunk_rows=4)
    assert np.array_equal(np.sort(uneven), np.arange(25))


def test_a_packed_source_offers_both_orders(packed):
    folder, _, _ = packed
    full = open_packed(folder)
    assert np.array_equal(full.epoch_order(np.random.default_rng(4)),
                          np.random.default_rng(4).permutation(1000))
    block = open_packed(folder, order="block", block_rows=260)
    assert block.chunk_rows == 65536 // 31                   # 64 KiB of 31-byte rows
    block = open_packed(folder, order="block", block_rows=260, chunk_rows=20)
    order = block.epoch_order(np.random.default_rng(4))
    assert np.array_equal(order, block_order(block.shard_rows, 260, np.random.default_rng(4), 20))
    assert np.array_equal(block.epoch_order(np.random.default_rng(4), shuffle=False), np.arange(1000))
    assert block.describe()["order"] == "block" and block.describe()["block_rows"] == 260
    assert block.describe()["chunk_rows"] == 20
    assert block.describe()["index_sha256"] == full.describe()["index_sha256"]
    with pytest.raises(ValueError, match="order must be one of 'full', 'block', got 'random'"):
        open_packed(folder, order="random")
    with pytest.raises(ValueError, match="block_rows must be an integer >= 1, got 0"):
        open_packed(folder, order="block", block_rows=0)
