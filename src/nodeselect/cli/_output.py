"""``--out FILE``: write a file the safe way.

* The target is checked **before** the fetch and again just before the rename: a directory,
  a device, a FIFO, a socket or a symbolic link is refused (:class:`OutTargetError`, exit 2)
  unless ``--force``; with ``--force`` a symlink or special file is *replaced* by the new
  file (the rename replaces the directory entry; nothing is ever written through a link).
* The data is written to a unique temporary file in the target's own folder (created by
  :func:`tempfile.mkstemp` / :func:`tempfile.mkdtemp`, ``O_EXCL``, mode 0600), flushed and
  fsynced, then renamed over the target: readers see the old file or the new one, never half
  of one, and two concurrent writers cannot collide (the last rename wins, whole).
* The file ends with mode 0600 (snapshots hold e-mails and IP addresses), also when it
  replaces a file that was readable by others.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from nodeselect.errors import InputError, NodeSelectError

__all__ = ["OutTargetError", "OutWriteError", "check_out_target", "write_atomically"]

#: The mode of every file ``--out`` writes.
OUT_MODE: Final = 0o600


class OutTargetError(InputError):
    """The ``--out`` target is not a regular file (or its folder does not exist); exit 2."""


class OutWriteError(NodeSelectError, OSError):
    """The ``--out`` file could not be written (disk full, permission denied, ...); exit 5."""


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or ``None`` for a regular file."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_out_target(path: str, *, force: bool = False) -> Path:
    """Refuse a target that is not a regular file (unless ``force``) or whose folder is missing.

    Never follows a symlink at ``path`` itself (``lstat``). Returns the target as a Path.

    Raises:
        OutTargetError: the message names the path, what it is, and ``--force``.
    """
    target = Path(path)
    if not path or path.endswith(os.sep):
        raise OutTargetError(f"--out {path!r}: give a file name, not a folder")
    folder = target.parent
    if not folder.is_dir():
        raise OutTargetError(f"--out {path}: the folder {folder} does not exist")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutTargetError(f"--out {path}: cannot check the target: {exc.strerror}") from None
    kind = _kind(st.st_mode)
    if kind is None:
        return target
    if kind == "a directory":
        raise OutTargetError(f"--out {path}: is a directory; give a file name inside it")
    if not force:
        raise OutTargetError(
            f"--out {path}: is {kind}, not a regular file; nodeselect writes only regular "
            "files (add --force to replace it with a new regular file)"
        )
    return target


def write_atomically(path: str, write: Callable[[Path], None], *, force: bool = False) -> None:
    """Have ``write`` fill a fresh private file, then rename it over ``path`` (mode 0600).

    ``write`` gets the path of a new, empty file (in a private folder inside the target's
    folder, so the rename stays on one file system) and may replace that file by its own
    rename. Errors: :class:`OutTargetError` (the target, as :func:`check_out_target`) and
    :class:`OutWriteError` (what the OS said, e.g. "No space left on device").
    """
    target = check_out_target(path, force=force)
    folder = target.parent
    try:
        private = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder))
    except OSError as exc:
        raise OutWriteError(f"--out {path}: cannot write in {folder}: {exc.strerror}") from None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix="out.", dir=private)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        os.chmod(tmp, OUT_MODE)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        check_out_target(path, force=force)  # again: it may have changed during the fetch
        os.replace(tmp, target)  # replaces the directory entry; never writes through a link
    except OSError as exc:
        raise OutWriteError(f"--out {path}: cannot write the file: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(private)
