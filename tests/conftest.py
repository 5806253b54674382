"""Test-suite set-up: the shared strategies and helpers (this folder) and the plain-Python
references (``oracles/``) import by name from every test folder, which mirror the packages."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (_HERE, _HERE / "oracles"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
