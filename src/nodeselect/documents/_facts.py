"""Facts about a node that only a server-side filter can prove.

The node document does not carry its status, compliance tags or geography; the API can only
*filter* on them. When a query with ``filter[status]=AVAILABLE`` returns a node, that node is
proved AVAILABLE (at the time of the request). The fetcher records such facts per node in a
:class:`ProvedFacts`; the node table turns them into columns; the engine treats a fact that was
never proved as *unknown*, which fails any hard constraint that needs it.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["COMPLIANCE_TAGS", "CONTINENTS", "STATUSES", "ProvedFacts"]

#: Every value of ``filter[status]`` in the reference.
STATUSES: Final = (
    "AVAILABLE",
    "ASSIGNED",
    "PREPARING",
    "WORKING",
    "STOPPING",
    "OFFLINE",
    "DELETED",
    "RESOURCE_BUSY",
    "OUTDATED_CLIENT",
)
#: Every value of ``filter[continent_code]`` in the reference.
CONTINENTS: Final = ("AF", "AN", "AS", "EU", "NA", "OC", "SA")
#: Every value of ``filter[compliance_tags]`` in the reference.
COMPLIANCE_TAGS: Final = ("GDPR", "EEA")


@attrs.frozen
class ProvedFacts:
    """What the queries that returned a node proved about it.

    Attributes:
        status: the status a ``filter[status]`` query proved, or ``None`` if never filtered.
        compliance_tags: tags proved present (each by a ``filter[compliance_tags]`` query).
            A tag not listed is *unknown*, not absent.
        continent: ISO continent code proved by ``filter[continent_code]``, or ``None``.
        country: ISO 3166-1 alpha-2 code proved by ``filter[country_iso_code]``, or ``None``.
        subdivision: ISO 3166-2 code proved by ``filter[subdivision_iso_code]``, or ``None``.
    """

    status: str | None = None
    compliance_tags: frozenset[str] = frozenset()
    continent: str | None = None
    country: str | None = None
    subdivision: str | None = None

    def merge(self, other: ProvedFacts) -> ProvedFacts:
        """Combine facts proved by two queries that both returned the node.

        Compliance tags are unioned; for single-valued facts a proved value wins over ``None``
        (two different proved values cannot happen for one node at one time; the first is kept).
        """
        return ProvedFacts(
            status=self.status if self.status is not None else other.status,
            compliance_tags=self.compliance_tags | other.compliance_tags,
            continent=self.continent if self.continent is not None else other.continent,
            country=self.country if self.country is not None else other.country,
            subdivision=self.subdivision if self.subdivision is not None else other.subdivision,
        )

    def to_json(self) -> dict[str, object]:
        """The facts as a JSON-ready dict (tags sorted), as stored in snapshots."""
        return {
            "status": self.status,
            "compliance_tags": sorted(self.compliance_tags),
            "continent": self.continent,
            "country": self.country,
            "subdivision": self.subdivision,
        }
