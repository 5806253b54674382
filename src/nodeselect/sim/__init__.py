"""A deterministic simulated GPU fleet and a faithful local ``GET /v1/nodes`` server.

```python
from nodeselect.sim import FaultConfig, SimServer, generate_fleet

fleet = generate_fleet(10_000, seed=1)
with SimServer(fleet, faults=FaultConfig(rate_503=0.1, seed=3)) as server:
    ...  # fetch from server.url + "/v1/nodes"
```

See docs/simulator.md for the realism model, the query semantics and the fault kinds.
"""

from __future__ import annotations

from nodeselect.sim._faults import FAULT_KINDS, FaultConfig, ServerStats
from nodeselect.sim._fleet import Fleet, HiddenFacts, generate_fleet
from nodeselect.sim._query import SimQueryError
from nodeselect.sim._server import SimServer, demo_server

__all__ = [
    "FAULT_KINDS",
    "FaultConfig",
    "Fleet",
    "HiddenFacts",
    "ServerStats",
    "SimQueryError",
    "SimServer",
    "demo_server",
    "generate_fleet",
]
