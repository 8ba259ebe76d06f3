"""Atomic file writes and guarded reads shared by every reader and writer.

A write goes to a temporary file in the target's folder and is renamed over the target
only once complete, so an interrupted write never leaves a half-written file and never
destroys the previous version.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from htpose.errors import DataError, HtposeError


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


# Text files (JSON, YAML, CSV) are parsed into Python objects of many times their size.
TEXT_EXPANSION = 40
MAX_NESTING = 64


def regular_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it names a regular file (after symlinks); a one-line error otherwise.

    Devices (``/dev/zero``), FIFOs, folders and symlink loops are refused before any read.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise DataError(f"{what} not found: {path}") from exc
    except (OSError, RuntimeError) as exc:  # symlink loops, permissions, names too long
        raise DataError(f"{what} {path} cannot be opened: {_reason(exc)}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{what} {path} is not a regular file (a device, pipe or socket?)")
    return path


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of a regular file, refusing files too large for the memory budget."""
    from htpose import budget

    path = regular_file(path, what)
    cap = budget.limit() // TEXT_EXPANSION
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise DataError(f"{what} {path} cannot be read: {_reason(exc)}") from exc
    if len(data) > cap:
        budget.check(path.stat().st_size * TEXT_EXPANSION or float("inf"), f"reading {path}")
    try:
        # utf-8-sig: Windows tools often start UTF-8 files with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path} is not UTF-8 text (a binary file?)") from exc


def nesting_depth(text: str, most: int = MAX_NESTING) -> int:
    """Deepest bracket nesting of JSON text (strings skipped), stopping past ``most``."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > most:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, where: str) -> Any:
    """Parse JSON text; nesting deeper than :data:`MAX_NESTING` is refused before parsing."""
    if nesting_depth(text) > MAX_NESTING:
        raise DataError(f"{where} nests deeper than {MAX_NESTING} levels; refusing it")
    try:
        return json.loads(text)
    # ValueError, not only JSONDecodeError: integers past Python's digit limit raise it.
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{where} is not valid JSON (truncated or foreign?): {exc}") from exc


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read a JSON file, turning every failure into a one-line :class:`DataError`."""
    return parse_json(read_text(path, what), f"{what} {path}")


def open_npz(path: str | Path, allow_pickle: bool = False) -> np.lib.npyio.NpzFile:
    """Open an ``.npz`` archive or raise a one-line :class:`DataError`."""
    path = regular_file(path)
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
    from htpose import budget

    budget.check(
        float(np.prod(shape, dtype=np.float64)) * dtype.itemsize,
        f"{source}: array {key!r} of declared shape {shape}",
    )
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        sa, sb = a.stat(), b.stat()
    except (OSError, RuntimeError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)  # hard links


def check_outputs(outputs: list[str | Path], inputs: list[str | Path]) -> list[Path]:
    """Refuse outputs that would replace an input (same resolved path or inode) or each other."""
    outs = [Path(p) for p in outputs]
    for i, out in enumerate(outs):
        for src in inputs:
            if _same_file(out, Path(src)):
                raise HtposeError(f"output {out} would overwrite the input {src}; choose another")
        for other in outs[:i]:
            if _same_file(out, other) or out.resolve() == other.resolve():
                raise HtposeError(f"two outputs are the same file: {out}")
        if out.is_dir():
            raise HtposeError(f"output {out} is a folder")
    return outs


class OutputSet:
    """Several output files written all or none.

    Each writer writes to :meth:`stage` (a temporary file beside its target, keeping the
    target's suffix so writers that pick a format by name still work); :meth:`commit` renames
    every staged file onto its target only once all were written. Used as a context manager,
    a failure anywhere removes every staged file and leaves existing files as they were.
    """

    def __init__(self, targets: list[str | Path], inputs: list[str | Path] = ()) -> None:
        self.targets = check_outputs(list(targets), list(inputs))
        self.staged: dict[Path, Path] = {}

    def stage(self, target: str | Path) -> Path:
        target = Path(target)
        if target not in self.targets:
            raise ValueError(f"{target} is not one of this set's outputs")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent
            )
        except OSError as exc:
            raise HtposeError(f"cannot write to {target.parent}: {_reason(exc)}") from exc
        os.close(fd)
        self.staged[target] = Path(tmp)
        return Path(tmp)

    def commit(self) -> list[Path]:
        try:
            for target, tmp in self.staged.items():
                os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, target)
        except OSError as exc:
            self.abort()
            raise HtposeError(f"cannot write outputs: {_reason(exc)}") from exc
        done = list(self.staged)
        self.staged = {}
        return done

    def abort(self) -> None:
        for tmp in self.staged.values():
            tmp.unlink(missing_ok=True)
        self.staged = {}

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
