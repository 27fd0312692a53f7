"""`gradfit data pack` / `gradfit data info`: progress, the index printed, verification and
clear errors (exit status 2)."""
import json

import numpy as np

from gradfit.cli import main
from gradfit.commands.data import parse_size
from gradfit.datasets import pack, read_index


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 6, 5), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def test_sizes_take_decimal_and_binary_units():
    assert parse_size("64MB") == 64_000_000 and parse_size("64MiB") == 64 << 20
    assert parse_size("4096") == 4096 and parse_size("1.5kB") == 1500


def test_gradfit_data_pack_and_info(tmp_path, capsys):
    x, y = _images(500)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = tmp_path / "packed"
    assert main(["data", "pack", str(tmp_path / "d.npz"), str(out), "--shard-size", "3kB"]) == 0
    printed = capsys.readouterr().out
    assert "packing 500/500 rows [" in printed and "verified 6 shards (sizes, headers, SHA-256)" in printed
    assert f"{out}: 500 rows in 6 shards" in printed and "x: 6x5 uint8   y: scalar uint8, 10 classes" in printed
    assert read_index(out)["shards"][0]["rows"] == 3000 // 31
    assert main(["data", "info", str(out), "--verify", "--all"]) == 0
    printed = capsys.readouterr().out
    assert "shard-00005.npy" in printed and "verified: every shard matches" in printed
    assert main(["data", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 500
    assert main(["data", "pack", str(tmp_path / "d.npz"), str(out)]) == 2
    assert "already exists; replace it with --overwrite" in capsys.readouterr().err
    assert main(["data", "pack", str(tmp_path / "d.npz"), str(out), "--overwrite", "--shard-rows", "250"]) == 0
    assert len(read_index(out)["shards"]) == 2
    assert main(["data", "pack", str(tmp_path / "d.npz"), str(tmp_path / "o2"), "--shard-size", "lots"]) == 2
    assert "--shard-size must be a size like 64MB, 256MiB or 1GB, got 'lots'" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "is not a packed data directory" in capsys.readouterr().err


def test_info_verify_names_a_corrupted_shard(tmp_path, capsys):
    x, y = _images(400)
    pack(x, y, tmp_path / "p", shard_rows=100)
    path = tmp_path / "p" / "shard-00002.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert main(["data", "info", str(tmp_path / "p")]) == 0        # the index alone reads fine
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "p"), "--verify"]) == 2
    assert "shard-00002.npy: SHA-256" in capsys.readouterr().err
