"""``--out FILE``: the target checked before a fetch is spent on it.

The writing itself is :func:`nodeselect.fetch.save_snapshot`'s: a unique temporary file in
the target's folder (created exclusively, mode 0600, never following a planted link), flushed
to disk, renamed over the target; it checks the target again just before writing and refuses
anything but a regular file (a symbolic link only with ``replace_symlink=True``, which the
CLI's ``--force`` passes). This module only refuses early, with the CLI's words: a
directory, device, FIFO or socket always (:class:`OutTargetError`, exit 2), a symbolic link
unless ``--force`` (then the link itself is replaced; nothing is written through it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nodeselect.errors import InputError, NodeSelectError

__all__ = ["OutTargetError", "OutWriteError", "check_out_target"]


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
    """Refuse a target that is not a regular file (a symlink is let through with ``force``)
    or whose folder is missing.

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
    if kind != "a symbolic link":
        raise OutTargetError(
            f"--out {path}: is {kind}, not a regular file; nodeselect writes only regular "
            "files (give another file name)"
        )
    if not force:
        raise OutTargetError(
            f"--out {path}: is {kind}, not a regular file; nodeselect writes only regular "
            "files (add --force to replace the link itself with a new regular file)"
        )
    return target
