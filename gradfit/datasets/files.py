"""Loaders for the user's own data: ``.npz`` and ``.csv`` files.

Both return ``(x, y)``: ``x`` float32 of shape ``(n, ...)``; ``y`` int64 class labels when
every target is a non-negative whole number, else float32 regression targets (see
``base.as_labels_or_targets``).  Values are not rescaled: pixel data in 0..255 stay so.
Every error names the file and, for CSV, the line and column (1-based).
"""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from .base import DatasetError, as_labels_or_targets, check_finite


def _existing(path) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"data file {str(p)!r} does not exist (working directory: "
                                f"{Path.cwd()}); give the path of a .npz or .csv file")
    return p


def _features(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{what} must be numeric, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise DatasetError(f"{what} holds no examples (shape {x.shape})")
    x = x.astype(np.float32)
    check_finite(x, what)
    return x


def load_npz(path, x_key: str = "x", y_key: str | None = "y"):
    """``(x, y)`` from the arrays ``x_key`` and ``y_key`` of a ``.npz`` file (``np.savez``).

    ``y_key=None`` loads features only and returns ``(x, None)``.  A missing key raises an
    error listing the keys the file holds.  Pickled (object) arrays are refused.
    """
    p = _existing(path)
    try:
        with np.load(p, allow_pickle=False) as f:
            keys = list(f.keys())
            for k in (x_key, y_key):
                if k is not None and k not in keys:
                    raise DatasetError(f"{p}: no array {k!r}; the file holds {keys}",
                                       "name the features and the targets with {x_key} and "
                                       "{y_key}")
            x = f[x_key]
            y = f[y_key] if y_key is not None else None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{p}: cannot read as .npz ({exc}); save it with numpy.savez") from exc
    x = _features(x, f"{p}[{x_key!r}]")
    if y is None:
        return x, None
    if y.shape[:1] != x.shape[:1]:
        raise DatasetError(f"{p}: {x_key!r} has {x.shape[0]} examples but {y_key!r} has shape "
                           f"{y.shape}; they must have the same first dimension")
    return x, as_labels_or_targets(y, f"{p}[{y_key!r}]")[0]


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_csv(path, label_column: int | str | None = -1, header="auto", delimiter: str = ","):
    """``(x, y)`` from a CSV file of numbers, one example per line.

    * ``label_column``: the target's column: an index (negative counts from the end,
      default the last), a header name, or ``None`` (no target; returns ``(x, None)``).
    * ``header``: ``True``, ``False`` or ``"auto"``: the first line is a header when any of
      its fields is not a number.  Blank lines are skipped.

    Errors: rows of unequal length, a non-numeric field, NaN or inf (line and column
    named), an unknown label column (the available ones listed), no data lines.
    """
    if header not in (True, False, "auto"):
        raise ValueError(f"header must be True, False or 'auto', got {header!r}")
    p = _existing(path)
    numbered = []  # (line number, stripped fields) of every non-blank line
    try:
        with open(p, newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                if row and any(field.strip() for field in row):
                    numbered.append((reader.line_num, [field.strip() for field in row]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{p}: not a readable text CSV file ({exc})") from exc
    if not numbered:
        raise DatasetError(f"{p}: no data lines")
    names = None
    if header is True or (header == "auto" and not all(map(_is_number, numbered[0][1]))):
        names = numbered.pop(0)[1]
    if not numbered:
        raise DatasetError(f"{p}: only a header line ({names}), no data lines")
    width = len(names) if names is not None else len(numbered[0][1])
    for line, row in numbered:
        if len(row) != width:
            raise DatasetError(f"{p}, line {line}: {len(row)} fields, expected {width} "
                               f"(as the {'header' if names else 'first line'}); every row must "
                               f"have the same number of columns")
    try:
        data = np.array([row for _, row in numbered], dtype=np.float64)
    except ValueError:
        for line, row in numbered:
            for col, field in enumerate(row, 1):
                if not _is_number(field):
                    raise DatasetError(f"{p}, line {line}, column {col}: {field!r} is not a "
                                       f"number; every field must be numeric",
                                       "set {header} to True if line 1 is a header"
                                       if line == numbered[0][0] else None) from None
        raise
    bad = ~np.isfinite(data)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DatasetError(f"{p}, line {numbered[r][0]}, column {c + 1}: {numbered[r][1][c]!r} "
                           f"is NaN or infinite; remove or impute such values")
    if label_column is None:
        return data.astype(np.float32), None
    col = _column_index(label_column, names, width, p)
    y = data[:, col]
    x = np.delete(data, col, axis=1).astype(np.float32)
    return x, as_labels_or_targets(y, f"{p} label column")[0]


def _column_index(label_column, names, width: int, p: Path) -> int:
    if isinstance(label_column, str):
        if names is None or label_column not in names:
            raise DatasetError(f"{p}: no column named {label_column!r}; "
                               + (f"the header has {names}" if names else "the file has no header"),
                               "give {label_column} as a name or an index")
        return names.index(label_column)
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
        raise TypeError(f"label_column must be an int, a column name or None, got {label_column!r}")
    if not -width <= label_column < width:
        raise DatasetError(f"{p}: label column {label_column} is out of range for {width} "
                           f"columns", f"give {{label_column}} in -{width}..{width - 1}")
    if width < 2:
        raise DatasetError(f"{p}: a single column cannot hold both features and a label",
                           "add the label column to the file")
    return int(label_column) % width
