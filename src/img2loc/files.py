"""Atomic file writes: readers see the old file or the new one, never half of one.

Every output img2loc writes (manifests, shards, indexes, features, reports, cell
sets, downloads) goes through :func:`atomic_path`: the data is written to a
temporary file beside the destination, flushed to disk, given the permissions an
ordinary file would get (``0o666`` minus the umask: ``mkstemp`` alone would leave
it ``0600``), then renamed over the destination. A crash or ``kill -9`` leaves at
most a hidden ``.NAME.*.tmp`` file, which :func:`remove_stale_temps` clears on the
next run of the same command. :func:`owned_folder` holds an output folder for one run.

The lowest layer of the package (standard library and :mod:`img2loc.errors` only), so
every layer can use it. It works on Windows: the folder lock is ``fcntl.flock`` on POSIX
and ``msvcrt.locking`` on Windows, and ``fcntl`` is imported only where it exists.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from img2loc.errors import Img2locError

if sys.platform == "win32":
    import msvcrt

    def _try_lock(f: IO[str]) -> bool:
        """Lock ``f`` for this process without waiting; False when another holds it."""
        try:
            # Locks one byte at offset 0 (the file is empty: Windows allows locking past EOF).
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(f: IO[str]) -> bool:
        """Lock ``f`` for this process without waiting; False when another holds it."""
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


#: Every temp file made here has a name ending in one of these (``.x.tmp``, ``.x.tmp.png``).
TEMP_MARK = ".tmp"


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:  # Linux >= 4.7: no window in which another thread sees umask 0
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new ordinary file (``0o644`` under the usual umask 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Permissions of a new ordinary folder (``0o755`` under the usual umask 022)."""
    return 0o777 & ~current_umask()


def _fsync(path: str) -> None:
    # Windows flushes only through a handle opened for writing.
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = TEMP_MARK) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    ``suffix`` must end the temp name when a writer picks its format from the
    extension (``".tmp.png"`` for matplotlib, ``".tmp.npz"`` for ``np.savez``).
    The parent folder is created when missing.
    """
    if TEMP_MARK not in suffix:  # remove_stale_temps finds leftovers by it
        raise ValueError(f"atomic_path suffix {suffix!r} must contain {TEMP_MARK!r}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=p.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(folder: str | os.PathLike[str], name: str = "*") -> list[Path]:
    """Delete temp files a killed run left in ``folder`` (for outputs matching ``name``).

    Only call this where one run owns the folder (e.g. under the shard writer's lock):
    another live writer's temp file would be removed under it.
    """
    removed = []
    for stale in Path(folder).glob(f".{name}.*{TEMP_MARK}*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


class FolderBusyError(Img2locError, ValueError):
    """Another run is writing to the same output folder."""


@contextmanager
def owned_folder(folder: str | os.PathLike[str], command: str) -> Iterator[Path]:
    """Create ``folder`` and hold it for this run: an exclusive lock, then stale temps cleared.

    A second run of ``command`` on the same folder fails at once with
    :class:`FolderBusyError` instead of interleaving its writes; the lock dies with
    the process, so a ``kill -9`` never leaves the folder locked.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        if not _try_lock(lock):
            raise FolderBusyError(
                f"another `{command}` run is writing to {out}; wait for it or choose another folder"
            )
        remove_stale_temps(out)
        yield out
