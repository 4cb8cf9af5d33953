"""A synthetic, entirely fictitious Bourgogne-Franche-Comté region for demos and tests.

``generate_region()`` builds it as FHIR R4 resources; ``load_demo(store)`` writes it into an
empty database. See :mod:`parcours.demo.generator` for what is inside and where the codes
come from, including the deliberate near-duplicate patients.
"""

from .circles import DEMO_USERS, DemoUser
from .generator import NearDuplicate, Region, build_region, generate_region, ins_key
from .loader import DemoDatabaseNotEmpty, DemoSummary, load_demo

__all__ = [
    "DEMO_USERS",
    "DemoDatabaseNotEmpty",
    "DemoSummary",
    "DemoUser",
    "NearDuplicate",
    "Region",
    "build_region",
    "generate_region",
    "ins_key",
    "load_demo",
]
