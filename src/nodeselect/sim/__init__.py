"""A deterministic simulated GPU fleet and a faithful local ``GET /v1/nodes`` server.

```python
from nodeselect.sim import FaultConfig, SimServer, generate_fleet

fleet = generate_fleet(10_000, seed=1)
with SimServer(fleet, faults=FaultConfig(rate_503=0.1, seed=3)) as server:
    ...  # fetch from server.url + "/v1/nodes"
```

``generate_fleet(..., dialect=DIALECTS["us-offset"])`` serves one reading of what the API
reference leaves open (timestamp precision and suffix, strict ranges, telemetry units, numeric
strings, bulk registration). See docs/simulator.md for the realism model, the query semantics,
the fault kinds and the dialect matrix.
"""

from __future__ import annotations

from nodeselect.sim._dialect import DIALECTS, BulkRegistration, Dialect
from nodeselect.sim._faults import FAULT_KINDS, FaultConfig, ServerStats
from nodeselect.sim._fleet import Fleet, HiddenFacts, StoredTimes, generate_fleet
from nodeselect.sim._query import SimQueryError
from nodeselect.sim._server import SimServer, demo_server

__all__ = [
    "DIALECTS",
    "FAULT_KINDS",
    "BulkRegistration",
    "Dialect",
    "FaultConfig",
    "Fleet",
    "HiddenFacts",
    "ServerStats",
    "SimQueryError",
    "SimServer",
    "StoredTimes",
    "demo_server",
    "generate_fleet",
]
