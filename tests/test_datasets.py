"""gradfit.datasets: IDX parsing, checksums, downloads (faked), digits, npz/csv, splits."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import gradfit.datasets as D
from gradfit.datasets import cache
from gradfit.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx, read_idx_gz, write_idx

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# ---------------------------------------------------------------- synthetic IDX files

def fake_idx_files(n_train=6, n_test=4, size=28, seed=0):
    """{filename: gz bytes} of a tiny MNIST-like dataset, plus the raw arrays."""
    rng = np.random.default_rng(seed)
    raw = {"train": (rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
                     rng.integers(0, 10, n_train).astype(np.uint8)),
           "t10k": (rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
                    rng.integers(0, 10, n_test).astype(np.uint8))}
    blobs = {}
    for split, (x, y) in raw.items():
        blobs[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(write_idx(x))
        blobs[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(write_idx(y))
    return blobs, raw


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Synthetic files in tmp_path/mnist, registered with their hashes and two fake mirrors."""
    blobs, raw = fake_idx_files()
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, b in blobs.items():
        (folder / name).write_bytes(b)
    remote = cache.Remote("mnist", ("https://mirror-a.test/", "http://mirror-b.test/"),
                          {k: sha(v) for k, v in blobs.items()})
    monkeypatch.setitem(cache.REMOTES, "mnist", remote)
    return tmp_path, folder, blobs, raw


class FakeWeb:
    """Stands in for urlopen: serves ``pages[url]``; URLs absent raise URLError."""

    def __init__(self, pages, fail_midway=False):
        self.pages, self.fail_midway, self.calls = pages, fail_midway, []

    def __call__(self, request, timeout=None):
        url = request.full_url
        self.calls.append(url)
        if url not in self.pages:
            raise urllib.error.URLError(f"[Errno -2] Name or service not known ({url})")
        body = io.BytesIO(self.pages[url])
        if self.fail_midway:
            def read(n=-1, _read=body.read):
                if body.tell() > 0:
                    raise ConnectionResetError("connection reset by peer")
                return _read(8)
            body.read = read
        return body


# ---------------------------------------------------------------- IDX format

@pytest.mark.parametrize("dtype,shape", [(np.uint8, (3, 4, 5)), (np.uint8, (7,)),
                                         (np.int16, (2, 3)), (np.int32, (4,)),
                                         (np.float32, (2, 2)), (np.float64, (3,))])
def test_idx_round_trip_big_endian(dtype, shape):
    a = (np.arange(np.prod(shape)) - 3).astype(dtype).reshape(shape)
    if dtype == np.uint8:
        a = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    b = write_idx(a)
    assert b[:2] == b"\0\0" and b[3] == len(shape)
    assert int.from_bytes(b[4:8], "big") == shape[0]
    got = parse_idx(b)
    assert got.dtype == np.dtype(dtype) and got.shape == shape
    np.testing.assert_array_equal(got, a)


def test_idx_magic_numbers_match_mnist_spec():
    assert int.from_bytes(write_idx(np.zeros((2, 28, 28), np.uint8))[:4], "big") == IMAGES_MAGIC == 2051
    assert int.from_bytes(write_idx(np.zeros(2, np.uint8))[:4], "big") == LABELS_MAGIC == 2049


@pytest.mark.parametrize("mutate,match", [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0", "truncated or corrupt"),
    (lambda b: b"\1" + b[1:], "invalid IDX header"),
    (lambda b: b[:2] + b"\x07" + b[3:], "invalid IDX header"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b[:2], "too short"),
])
def test_idx_rejects_corrupt_bytes(mutate, match):
    good = write_idx(np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(D.DatasetError, match=match) as e:
        parse_idx(mutate(good), "somefile.idx")
    assert "somefile.idx" in str(e.value)


def test_idx_wrong_magic_and_bad_gzip(tmp_path):
    labels = tmp_path / "labels.gz"
    labels.write_bytes(gzip.compress(write_idx(np.zeros(3, np.uint8))))
    with pytest.raises(D.DatasetError, match="magic number 2049.*expected 2051"):
        read_idx_gz(labels, IMAGES_MAGIC)
    assert read_idx_gz(labels, LABELS_MAGIC).shape == (3,)
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(D.DatasetError, match="not a valid gzip file") as e:
        read_idx_gz(junk)
    assert str(junk) in str(e.value)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(labels.read_bytes()[:-10])
    with pytest.raises(D.DatasetError, match="cut.gz"):
        read_idx_gz(cut)


# ---------------------------------------------------------------- cache folder, checksums

def test_data_home_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADFIT_DATA", str(tmp_path / "d"))
    assert cache.data_home() == tmp_path / "d"
    assert cache.data_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("GRADFIT_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.data_home() == tmp_path / "xdg" / "gradfit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.data_home() == tmp_path / "home" / ".cache" / "gradfit"


def test_published_checksums_are_complete():
    for name, remote in cache.REMOTES.items():
        assert sorted(remote.sha256) == sorted(FILES), name
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in remote.sha256.values())
        assert remote.mirrors and all(m.endswith("/") for m in remote.mirrors)
    assert cache.REMOTES["mnist"].mirrors[0].startswith("https://ossci-datasets.s3.amazonaws.com")


def test_mnist_from_cached_synthetic_files(fake_mnist, monkeypatch):
    root, _, _, raw = fake_mnist
    ds = D.mnist(data_dir=root, download=False)
    (x_train, y_train), (x_test, y_test) = ds  # Keras-style unpacking
    assert x_train.shape == (6, 784) and x_test.shape == (4, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(x_train, raw["train"][0].reshape(6, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(y_test, raw["t10k"][1])
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert ds.num_classes == 10 and ds.name == "mnist" and ds.x_test is x_test
    raw_ds = D.mnist(data_dir=root, download=False, flatten=False, normalize=False)
    assert raw_ds.x_train.shape == (6, 28, 28) and raw_ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(raw_ds.x_train, raw["train"][0])
    monkeypatch.setenv("GRADFIT_DATA", str(root))  # the same files found through the env var
    np.testing.assert_array_equal(D.mnist(download=False).y_train, raw["train"][1])


def test_cached_file_with_wrong_checksum_is_refused(fake_mnist):
    root, folder, blobs, _ = fake_mnist
    name = "t10k-labels-idx1-ubyte.gz"
    (folder / name).write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\1\7"))
    with pytest.raises(D.DatasetError) as e:
        D.mnist(data_dir=root, download=False)
    msg = str(e.value)
    assert name in msg and str(folder) in msg and "does not match" in msg and "delete it" in msg
    assert (folder / name).exists()  # user data is never deleted behind their back


def test_missing_file_without_download(fake_mnist):
    root, folder, _, _ = fake_mnist
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(D.DatasetError) as e:
        D.mnist(data_dir=root, download=False)
    msg = str(e.value)
    assert "train-labels-idx1-ubyte.gz" in msg and str(folder) in msg and "GRADFIT_DATA" in msg


def test_offline_download_error_names_file_folder_and_fix(fake_mnist, monkeypatch, tmp_path):
    web = FakeWeb({})
    monkeypatch.setattr(cache, "urlopen", web)
    empty = tmp_path / "empty"
    with pytest.raises(D.DatasetError) as e:
        D.mnist(data_dir=empty)
    msg = str(e.value)
    assert "could not download train-images-idx3-ubyte.gz" in msg and str(empty / "mnist") in msg
    assert "GRADFIT_DATA" in msg and "digits" in msg
    assert web.calls == ["https://mirror-a.test/train-images-idx3-ubyte.gz",
                         "http://mirror-b.test/train-images-idx3-ubyte.gz"]
    assert list((empty / "mnist").iterdir()) == []  # no partial or temp file left


def test_download_falls_back_to_second_mirror_and_caches(fake_mnist, monkeypatch, tmp_path):
    _, _, blobs, raw = fake_mnist
    web = FakeWeb({"http://mirror-b.test/" + k: v for k, v in blobs.items()})
    monkeypatch.setattr(cache, "urlopen", web)
    dest = tmp_path / "cachedir"
    ds = D.mnist(data_dir=dest)
    np.testing.assert_array_equal(ds.y_train, raw["train"][1])
    assert sorted(p.name for p in (dest / "mnist").iterdir()) == sorted(FILES)
    for k, v in blobs.items():
        assert (dest / "mnist" / k).read_bytes() == v
    assert len(web.calls) == 8  # each of 4 files: mirror a fails, mirror b serves
    D.mnist(data_dir=dest)
    assert len(web.calls) == 8  # second load: all from the cache, no network


def test_download_with_wrong_bytes_leaves_nothing(fake_mnist, monkeypatch, tmp_path):
    _, _, blobs, _ = fake_mnist
    pages = {m + k: v for k, v in blobs.items() for m in ("https://mirror-a.test/", "http://mirror-b.test/")}
    pages["https://mirror-a.test/train-images-idx3-ubyte.gz"] = b"tampered"
    pages["http://mirror-b.test/train-images-idx3-ubyte.gz"] = b"tampered too"
    monkeypatch.setattr(cache, "urlopen", FakeWeb(pages))
    with pytest.raises(D.DatasetError, match="published") as e:
        D.mnist(data_dir=tmp_path / "c")
    assert "train-images-idx3-ubyte.gz" in str(e.value)
    assert list((tmp_path / "c" / "mnist").iterdir()) == []


def test_interrupted_download_is_atomic(fake_mnist, monkeypatch, tmp_path):
    _, _, blobs, _ = fake_mnist
    pages = {m + k: v for k, v in blobs.items() for m in ("https://mirror-a.test/", "http://mirror-b.test/")}
    monkeypatch.setattr(cache, "urlopen", FakeWeb(pages, fail_midway=True))
    with pytest.raises(D.DatasetError, match="connection reset"):
        D.mnist(data_dir=tmp_path / "c")
    assert list((tmp_path / "c" / "mnist").iterdir()) == []


@pytest.mark.parametrize("n_train_labels,size,match", [(5, 28, "are not n 28x28"),
                                                       (6, 27, "are not n 28x28")])
def test_idx_dataset_shape_checks(tmp_path, monkeypatch, n_train_labels, size, match):
    blobs, _ = fake_idx_files(size=size)
    if n_train_labels != 6:
        blobs["train-labels-idx1-ubyte.gz"] = gzip.compress(write_idx(np.zeros(n_train_labels, np.uint8)))
    (tmp_path / "mnist").mkdir()
    for k, v in blobs.items():
        (tmp_path / "mnist" / k).write_bytes(v)
    monkeypatch.setitem(cache.REMOTES, "mnist", cache.Remote("mnist", (), {k: sha(v) for k, v in blobs.items()}))
    with pytest.raises(D.DatasetError, match=match):
        D.mnist(data_dir=tmp_path, download=False)


# ---------------------------------------------------------------- digits

def test_digits_shapes_range_and_split():
    from sklearn.datasets import load_digits
    ds = D.digits()
    (x_train, y_train), (x_test, y_test) = ds
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert set(np.unique(y_train)) == set(range(10)) and ds.num_classes == 10
    ref = load_digits()
    both = np.concatenate([x_train, x_test]) * 16
    # train + test is exactly scikit-learn's data, each image once
    assert sorted(map(bytes, both.astype(np.uint8))) == sorted(map(bytes, ref.data.astype(np.uint8)))
    np.testing.assert_array_equal(np.bincount(np.concatenate([y_train, y_test])), np.bincount(ref.target))
    # stratified: each class has ~20% of its images in the test set
    frac = np.bincount(y_test) / np.bincount(ref.target)
    assert np.all(np.abs(frac - 0.2) < 0.02)
    again = D.digits()
    np.testing.assert_array_equal(again.x_test, x_test)
    assert not np.array_equal(D.digits(seed=1).y_test, y_test)
    assert D.digits(flatten=False).x_train.shape == (1438, 8, 8)


# ---------------------------------------------------------------- npz / csv

def test_load_npz_and_errors(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 3))
    y = np.arange(10) % 3
    p = tmp_path / "d.npz"
    np.savez(p, x=x, y=y, feats=x, targets=x[:, 0])
    gx, gy = D.load_npz(p)
    assert gx.dtype == np.float32 and gy.dtype == np.int64
    np.testing.assert_allclose(gx, x, rtol=1e-6)
    np.testing.assert_array_equal(gy, y)
    rx, ry = D.load_npz(p, "feats", "targets")
    assert ry.dtype == np.float32 and ry.shape == (10,)  # real-valued: regression targets
    with pytest.raises(D.DatasetError, match=r"no array 'X'.*\['x', 'y', 'feats', 'targets'\]"):
        D.load_npz(p, x_key="X")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x, y=y[:9])
    with pytest.raises(D.DatasetError, match="10 examples.*shape \\(9,\\)"):
        D.load_npz(bad)
    x_nan = x.copy()
    x_nan[4, 1] = np.nan
    np.savez(bad, x=x_nan, y=y)
    with pytest.raises(D.DatasetError, match=r"\[4, 1\].*NaN"):
        D.load_npz(bad)
    np.savez(bad, x=np.array([{"a": 1}] * 3, dtype=object), y=y[:3])
    with pytest.raises(D.DatasetError, match="cannot read"):
        D.load_npz(bad)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        D.load_npz(tmp_path / "nope.npz")


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_csv_header_auto_labels_last(tmp_path):
    p = write(tmp_path, "a,b,label\n0.5,1,2\n\n1.5,-2,0\n3e-1, 4 ,1\n")
    x, y = D.load_csv(p)
    np.testing.assert_allclose(x, [[0.5, 1], [1.5, -2], [0.3, 4]], rtol=1e-6)
    np.testing.assert_array_equal(y, [2, 0, 1])
    assert x.dtype == np.float32 and y.dtype == np.int64
    x2, y2 = D.load_csv(p, label_column="a")
    np.testing.assert_allclose(y2, [0.5, 1.5, 0.3], rtol=1e-6)  # not whole numbers: float targets
    assert y2.dtype == np.float32 and x2.shape == (3, 2)
    p2 = write(tmp_path, "1,2,3\n4,5,6\n", "nohead.csv")
    x3, y3 = D.load_csv(p2, label_column=0)
    np.testing.assert_array_equal(y3, [1, 4])
    np.testing.assert_array_equal(x3, [[2, 3], [5, 6]])
    assert D.load_csv(p2, label_column=None)[0].shape == (2, 3)


@pytest.mark.parametrize("text,kwargs,match", [
    ("1,2,3\n4,5\n", {}, "line 2: 2 fields, expected 3"),
    ("a,b\n1,2\n3,x\n", {}, "line 3, column 2: 'x' is not a number"),
    ("1,2\n3,x\n", {"header": False}, "line 2, column 2: 'x'"),
    ("1,2\n\n3,nan\n", {}, "line 3, column 2: 'nan' is NaN or infinite"),
    ("1,inf\n", {}, "line 1, column 2"),
    ("a,b\n1,2\n", {"label_column": "c"}, r"no column named 'c'.*\['a', 'b'\]"),
    ("1,2\n", {"label_column": 5}, "label column 5 is out of range for 2 columns; give label_column in -2..1"),
    ("a,b\n", {}, "only a header"),
    ("\n\n", {}, "no data lines"),
])
def test_load_csv_errors(tmp_path, text, kwargs, match):
    p = write(tmp_path, text)
    with pytest.raises(D.DatasetError, match=match) as e:
        D.load_csv(p, **kwargs)
    assert str(p) in str(e.value)


# ---------------------------------------------------------------- splits and labels

@pytest.mark.parametrize("n,val,test,stratify,shuffle", [
    (10, 0.2, 0.1, False, True), (101, 0.15, 0.25, False, True), (1797, 0.1, 0.2, True, True),
    (50, 0.3, 0.0, True, True), (37, 0.2, 0.2, False, False), (5, 0.0, 0.0, False, True)])
def test_split_indices_disjoint_and_covering(n, val, test, stratify, shuffle):
    labels = np.random.default_rng(1).integers(0, 4, n) if stratify else None
    tr, va, te = D.split_indices(n, val, test, seed=3, shuffle=shuffle, stratify=labels)
    sets = [set(tr.tolist()), set(va.tolist()), set(te.tolist())]
    assert len(sets[0]) == len(tr) and len(sets[1]) == len(va) and len(sets[2]) == len(te)
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sets[0] | sets[1] | sets[2] == set(range(n))
    assert (len(va), len(te)) == (round(val * n), round(test * n))
    if stratify:
        for part in (va, te):
            want = np.bincount(labels, minlength=4) * len(part) / n
            assert np.all(np.abs(np.bincount(labels[part], minlength=4) - want) <= 1.0)
    if not shuffle:  # ordered: the last examples are the test set, as Keras validation_split
        np.testing.assert_array_equal(np.concatenate([tr, va, te]), np.arange(n))


def test_train_val_test_split_pairs_rows_and_is_seeded():
    x = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    (xt, yt), (xv, yv), (xs, ys) = D.train_val_test_split(x, y, 0.25, 0.25, seed=7)
    for xx, yy in ((xt, yt), (xv, yv), (xs, ys)):
        np.testing.assert_array_equal(xx[:, 0], 2 * yy)  # rows stay with their labels
    assert (len(yt), len(yv), len(ys)) == (10, 5, 5)
    again = D.train_val_test_split(x, y, 0.25, 0.25, seed=7)
    np.testing.assert_array_equal(again[2][1], ys)
    assert not np.array_equal(D.train_val_test_split(x, y, 0.25, 0.25, seed=8)[2][1], ys)
    with pytest.raises(ValueError, match="same number of examples, got 20 and 19"):
        D.train_val_test_split(x, y[:19], 0.2)


@pytest.mark.parametrize("kwargs,match", [
    ({"val_fraction": 1.0}, r"val_fraction must be a number in \[0, 1\), got 1.0"),
    ({"test_fraction": -0.1}, "test_fraction must be"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "leaves no training example"),
    ({"val_fraction": 0.01}, "selects no example"),
    ({"val_fraction": 0.2, "shuffle": False, "stratify": np.zeros(20)}, "stratify needs shuffle"),
])
def test_split_rejects_bad_fractions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        D.split_indices(20, **kwargs)


def test_one_hot_and_check_labels():
    np.testing.assert_array_equal(D.one_hot([2, 0, 1], 4), [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert D.one_hot(np.array([1, 3])).shape == (2, 4)
    assert D.one_hot([0], 2).dtype == np.float32
    assert D.check_labels(np.array([1.0, 2.0])).dtype == np.int64
    with pytest.raises(ValueError, match=r"y\[1\] = 5 is out of range for num_classes=3"):
        D.check_labels([0, 5, 1], 3)
    with pytest.raises(ValueError, match="negative"):
        D.check_labels([0, -1])
    with pytest.raises(ValueError, match="not a whole number"):
        D.check_labels([0.5])
    with pytest.raises(ValueError, match="1-D"):
        D.check_labels(np.zeros((2, 2)))


# ---------------------------------------------------------------- the dispatcher

def test_load_dispatcher(tmp_path, fake_mnist):
    assert D.load("digits").name == "digits"
    with pytest.raises(ValueError, match="unknown dataset 'cifar10': choose one of digits, mnist, fashion-mnist"):
        D.load("cifar10")
    root = fake_mnist[0]
    assert D.load("mnist", data_dir=root, download=False).x_train.shape == (6, 784)
    x = np.random.default_rng(0).random((30, 2, 2))
    y = np.arange(30) % 3
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    ds = D.load(tmp_path / "mine.npz", test_fraction=0.2)
    assert ds.x_train.shape == (24, 4) and ds.x_test.shape == (6, 4) and ds.name == "mine"
    assert ds.num_classes == 3 and np.array_equal(np.bincount(ds.y_test), [2, 2, 2])  # stratified
    np.savez(tmp_path / "keras.npz", x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y[20:])
    kd = D.load(tmp_path / "keras.npz")
    np.testing.assert_array_equal(kd.y_test, y[20:])
    csv_path = write(tmp_path, "f1,f2,t\n" + "".join(f"{i},{i * i},{i % 2}\n" for i in range(10)))
    cd = D.load(csv_path, test_fraction=0.3)
    assert cd.x_train.shape == (7, 2) and cd.num_classes == 2


# ---------------------------------------------------------------- the real files, when present

def _real_root():
    for root in (os.environ.get("GRADFIT_DATA"), "/work/shared/data"):
        if root and all((Path(root) / "mnist" / f).is_file() for f in FILES):
            return Path(root)
    pytest.skip("real MNIST files not available (set GRADFIT_DATA)")


def test_real_mnist_shapes_and_label_histogram():
    ds = D.mnist(data_dir=_real_root(), download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() == 0 and ds.x_train.max() == 1
    np.testing.assert_array_equal(np.bincount(ds.y_train),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    np.testing.assert_array_equal(np.bincount(ds.y_test),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    np.testing.assert_array_equal(ds.y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])


def test_keras_load_data_and_the_canonical_keras_mnist_script(fake_mnist, monkeypatch):
    # keras.datasets.mnist.load_data() -> raw uint8 (n, 28, 28); then the TensorFlow
    # beginner's script, with 'import gradfit as keras' in place of 'import keras'
    import gradfit as keras
    root, _, _, raw = fake_mnist
    monkeypatch.setenv("GRADFIT_DATA", str(root))
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    assert x_train.shape == (6, 28, 28) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, raw["train"][0])
    np.testing.assert_array_equal(y_test, raw["t10k"][1])
    x_train, x_test = x_train / 255.0, x_test / 255.0
    model = keras.models.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
                                     keras.layers.Dense(128, activation="relu"),
                                     keras.layers.Dropout(0.2),
                                     keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=2, batch_size=3, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    with pytest.raises(ValueError, match="without path"):
        keras.datasets.mnist.load_data(path="mnist.npz")
