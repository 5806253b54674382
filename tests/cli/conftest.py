"""Every `plan --json` and `place --json` document a CLI test prints is validated against the
shipped schema (`nodeselect schema plan|place`), so the schemas hold for every output the
tests see."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

import nodeselect.cli.place
import nodeselect.cli.plan
from nodeselect.cli._render import jsonable
from nodeselect.schemas import schema

_BY_VALUE = {schema(n)["properties"]["schema"]["const"]: n for n in ("plan", "place")}
_VALIDATORS = {n: jsonschema.Draft202012Validator(schema(n)) for n in _BY_VALUE.values()}


@pytest.fixture(autouse=True)
def _validate_json_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (nodeselect.cli.plan, nodeselect.cli.place):
        original = getattr(module, "write_json", None)
        if original is None:
            continue

        def checked(document: Any, *args: Any, _original: Any = original, **kw: Any) -> None:
            doc = json.loads(json.dumps(jsonable(document)))
            name = _BY_VALUE.get(doc.get("schema")) if isinstance(doc, dict) else None
            if name is not None:
                _VALIDATORS[name].validate(doc)
            _original(document, *args, **kw)

        monkeypatch.setattr(module, "write_json", checked)
