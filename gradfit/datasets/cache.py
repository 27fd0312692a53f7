"""Where dataset files live, how they are downloaded, and how they are verified.

Folder: ``$GRADFIT_DATA`` if set, else ``$XDG_CACHE_HOME/gradfit``, else ``~/.cache/gradfit``;
each dataset has a subfolder (``mnist/``, ``fashion-mnist/``) holding the original ``.gz``
files under their official names.

Every file, downloaded now or found in the folder, is checked against its published
SHA-256 before it is read.  A download goes to a temporary file in the same folder, is
hashed while it is written, and is renamed into place only when the hash matches, so the
folder never holds a partial or wrong file under the official name (and several processes,
e.g. MPI ranks, may download at once: the last rename wins with identical bytes).
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.request import Request, urlopen

from .base import DatasetError

ENV_VAR = "GRADFIT_DATA"
TIMEOUT_S = 30


@dataclass(frozen=True)
class Remote:
    """A dataset's subfolder, its mirrors (tried in order) and ``{filename: sha256}``."""

    subdir: str
    mirrors: tuple[str, ...]
    sha256: dict


_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# SHA-256 of the official files (match torchvision's md5 list too; see shared/data/SOURCES.md).
REMOTES = {
    "mnist": Remote(
        "mnist",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
         "http://yann.lecun.com/exdb/mnist/"),
        dict(zip(_IDX_FILES, (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")))),
    "fashion-mnist": Remote(
        "fashion-mnist",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        dict(zip(_IDX_FILES, (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")))),
}


def data_home(data_dir=None) -> Path:
    """The cache folder: ``data_dir`` if given, else ``$GRADFIT_DATA``, else the user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "gradfit"


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _help(folder: Path, remote: Remote) -> str:
    return (f"place the official files {', '.join(sorted(remote.sha256))} in {folder}, "
            f"or set {ENV_VAR} to a folder holding {remote.subdir}/<those files>, "
            f"or use the offline dataset 'digits'")


def fetch(dataset: str, filename: str, data_dir=None, download: bool = True) -> Path:
    """Path of a verified copy of ``filename`` of ``dataset`` (a key of ``REMOTES``).

    Uses the cached file when present (after checking its SHA-256), else downloads it
    from each mirror in turn.  Raises ``DatasetError`` naming the file, the folder and
    what to do on a checksum mismatch, when ``download`` is False and the file is
    missing, or when no mirror can be reached.
    """
    remote = REMOTES[dataset]
    expected = remote.sha256[filename]
    folder = data_home(data_dir) / remote.subdir
    path = folder / filename
    if path.exists():
        got = sha256_of(path)
        if got != expected:
            raise DatasetError(
                f"{path}: SHA-256 {got} does not match the published {expected}; the file in "
                f"{folder} is corrupt or not the official one: delete it to download it again, "
                f"or replace it with the official file")
        return path
    if not download:
        raise DatasetError(f"{filename} of {dataset} is not in {folder} and download=False: "
                           + _help(folder, remote))
    errors = []
    for mirror in remote.mirrors:
        try:
            _download(mirror + filename, path, expected)
            return path
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts are OSErrors
            errors.append(f"{mirror + filename}: {exc}")
    raise DatasetError(f"could not download {filename} of {dataset} into {folder} "
                       f"(no network, or every mirror failed):\n  " + "\n  ".join(errors)
                       + "\nTo fix: " + _help(folder, remote))


def _download(url: str, path: Path, expected_sha256: str) -> None:
    """Stream ``url`` into a temp file beside ``path``, check its hash, rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"gradfit: downloading {url} -> {path}", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urlopen(Request(url, headers={"User-Agent": "gradfit"}),
                                                 timeout=TIMEOUT_S) as resp:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != expected_sha256:
            raise ValueError(f"downloaded SHA-256 {h.hexdigest()} != published {expected_sha256}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
