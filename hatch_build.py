"""Hatch build hook: compile the optional C reader of the table build (``_cbuild.c``).

The extension only makes ``NodeTable.from_nodes`` faster; the package is complete without it
(``nodeselect.table._build`` falls back to its pure-Python reader). So this hook never fails an
install: without a C compiler, or when compiling fails, it prints one warning line and the
build goes on as a pure-Python package.

* editable install: the extension is written next to its source, in
  ``src/nodeselect/table/`` (gitignored), where the editable package imports it from;
* wheel: it is compiled into a temporary directory and force-included as
  ``nodeselect/table/_cbuild<EXT_SUFFIX>``, and the wheel is tagged for this interpreter and
  platform (``pure_python = False``, ``infer_tag = True``).

The compiler is ``$CC`` if set, else the one the running interpreter was built with
(``sysconfig``), called with ``-O2 -fPIC -shared`` and the interpreter's include directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src") / "nodeselect" / "table" / "_cbuild.c"
TARGET = "nodeselect/table/_cbuild"
COMPILE_TIMEOUT_S = 120


def _warn(message: str) -> None:
    print(f"nodeselect: {message}; installing the pure-Python table builder", file=sys.stderr)


def compile_extension(source: Path, out_dir: Path) -> Path | None:
    """``source`` compiled into ``out_dir`` as this interpreter's extension module, or ``None``
    (after one warning line) when there is no compiler or compiling fails."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        _warn(f"no C compiler ({' '.join(cc) or 'none configured'}) to build the C reader")
        return None
    out = out_dir / f"_cbuild{suffix}"
    # an extension left by an earlier build must not outlive a failed compile (the package
    # would then run the old C code with the new Python)
    out.unlink(missing_ok=True)
    cmd = [
        *cc,
        "-O2",
        "-fPIC",
        "-shared",
        "-I",
        sysconfig.get_paths()["include"],
        str(source),
        "-o",
        str(out),
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as e:
        _warn(f"compiling the C reader failed ({e})")
        return None
    if done.returncode != 0 or not out.is_file():
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        _warn(f"compiling the C reader failed (exit {done.returncode}: {last})")
        return None
    return out


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc]  # hatchling: untyped
    """Compile ``_cbuild.c`` for the wheel (standard or editable); never fail the build."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        try:
            source = Path(self.root) / SOURCE
            if version == "editable":
                compile_extension(source, source.parent)
                return
            self._tmp = tempfile.mkdtemp(prefix="nodeselect-cbuild-")
            built = compile_extension(source, Path(self._tmp))
            if built is None:
                return
            build_data["force_include"][str(built)] = f"{TARGET}{built.name[len('_cbuild'):]}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
        except Exception as e:  # an optional speed-up must never fail an install
            _warn(f"the C reader's build hook failed ({type(e).__name__}: {e})")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
