"""Atomic file writes and guarded reads shared by every reader and writer.

A write goes to a temporary file in the target's folder and is renamed over the target
only once complete, so an interrupted write never leaves a half-written file and never
destroys the previous version.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from htpose.errors import DataError, HtposeError

# Refuse arrays declared larger than this before reading them (guards against headers
# that claim absurd sizes). 8 GiB is far beyond any pose data set.
MAX_ARRAY_BYTES = 8 << 30


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    ``keep_suffix`` ends the temporary name with ``path``'s suffix too, for writers that
    choose the format by the file name (Pillow, ffmpeg).
    """
    path = Path(path)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise HtposeError(f"cannot write to {path.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise HtposeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write a file atomically through ``write(fh)``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read a JSON file, turning every failure into a one-line :class:`DataError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{what} not found: {path}") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{what} {path} is a folder, not a file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path} is not valid JSON (truncated or foreign?): {exc}") from exc


def open_npz(path: str | Path, allow_pickle: bool = False) -> np.lib.npyio.NpzFile:
    """Open an ``.npz`` archive or raise a one-line :class:`DataError`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an .npz file")
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except Exception as exc:  # numpy raises many types for foreign or truncated files
        raise DataError(f"{path} is not a readable .npz archive: {exc}") from exc


def read_npz_array(archive: np.lib.npyio.NpzFile, key: str, source: str | Path) -> np.ndarray:
    """Read one array of an archive, refusing object arrays and absurd declared sizes."""
    try:
        with archive.zip.open(f"{key}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception as exc:
        raise DataError(f"{source}: array {key!r} has a corrupt header: {exc}") from exc
    if dtype.hasobject:
        raise DataError(f"{source}: array {key!r} holds pickled objects; refusing to load it")
    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > MAX_ARRAY_BYTES:
        raise DataError(f"{source}: array {key!r} declares an implausible size {shape}")
    try:
        return archive[key]
    except Exception as exc:
        raise DataError(f"{source}: array {key!r} is truncated or corrupt: {exc}") from exc


def numeric_array(value: Any, where: str) -> np.ndarray:
    """``value`` as a float64 array, or a :class:`DataError` naming ``where``.

    Refuses ragged nests, objects, strings and complex numbers (numpy would raise or
    silently drop the imaginary part).
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged or exotic nests raise several types
        raise DataError(f"{where} is not a numeric array: {exc}") from exc
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{where} holds {arr.dtype} values, not numbers")
    return arr.astype(np.float64)
